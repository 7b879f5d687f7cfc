"""The shape of sweep/, pinned: wings that import one way (cli -> config -> plan -> driver -> store/train), torch
code free of Ray and Hydra, a store free of models, no module over 400 lines, no function over 60 unless its
docstring says why, and a one-line docstring on every module. Import circles: tests/test_import_circles.py."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SWEEP = REPO / "sweep"
MODULES = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
           for p in SWEEP.rglob("*.py")}

# What each wing may import of the project: only wings upstream in the flow. Two exceptions, both pure: the
# plan uses train's accounting (FLOPs, shapes, schedule lengths) to size runs, and train takes the RunSpec it
# trains from plan.spec and nothing else of the plan. `messages` is the one shared leaf (how an error reads in a
# one-line problem), `tasks` the registry of what a run is evaluated on.
MAY_IMPORT = {
    "sweep.config": {"sweep.config", "sweep.messages", "sweep.tasks"},
    "sweep.plan": {"sweep.plan", "sweep.config", "sweep.messages", "sweep.tasks", "sweep.train"},
    "sweep.driver": {"sweep.driver", "sweep.plan", "sweep.config", "sweep.messages", "sweep.tasks", "sweep.train",
                     "sweep.store"},
    "sweep.store": {"sweep.store", "sweep.config", "sweep.messages"},
    "sweep.train": {"sweep.train", "sweep.messages", "sweep.plan.spec", "sweep.tasks"},
    "sweep.tasks": {"sweep.tasks", "sweep.messages"},
    "sweep.messages": set(),
}
THIRD_PARTY_BANNED = {"sweep.train": ("ray", "hydra", "omegaconf"), "sweep.store": ("torch",),
                      "sweep.plan": ("ray",), "sweep.config": ("ray",)}


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (`from a import b` counts a.b when b is a
    module of the project)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def wing(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def allowed(target: str, rules: set[str]) -> bool:
    return any(target == r or target.startswith(r + ".") for r in rules)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_wing_imports_only_downstream(name):
    rules = MAY_IMPORT.get(wing(name))
    if rules is None:  # sweep (the package), sweep.cli, sweep.__main__: the top may import any wing
        return
    project = {m for m in imported(MODULES[name]) if m.split(".")[0] in ("sweep", "analysis")}
    assert [m for m in project if not allowed(m, rules)] == [], name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_torch_code_has_no_ray_or_hydra_and_the_store_no_torch(name):
    banned = THIRD_PARTY_BANNED.get(wing(name), ())
    assert [m for m in imported(MODULES[name]) if m.split(".")[0] in banned] == [], name


def test_no_module_over_400_lines():
    long = {name: n for name, path in MODULES.items() if (n := path.read_text().count("\n")) > 400}
    assert long == {}


def test_no_function_over_60_lines_without_a_reason():
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                if "Long because" not in (ast.get_docstring(node) or ""):
                    long.append(f"{path.relative_to(REPO)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def test_every_module_opens_with_a_one_line_docstring():
    missing = [name for name, path in MODULES.items() if name != "sweep.__main__"
               and not (ast.get_docstring(ast.parse(path.read_text())) or "").strip()]
    assert missing == []
