"""The shape of analysis/, pinned: wings that import only downwards (the shared modules at the top, tables/, the
two analyses loss/ and emergence/ that never import each other, report/, the command), nothing of sweep, no
module over 400 lines, no function over 60, a one-line docstring opening every module, and the verdict words
spelled only where they are decided. Import circles: tests/test_import_circles.py."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "analysis"
MODULES = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p
           for p in ROOT.rglob("*.py")}
VERDICT_WORDS = ("emergent", "smooth", "flat", "beyond-range", "non-monotone", "insufficient-data", "metric-induced",
                 "genuine", "inconclusive")


def imports(path: Path) -> set[str]:
    """Every analysis module `path` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("analysis"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("analysis"))
    return {m for m in out if m in MODULES}


SHARED = {"analysis.interval", "analysis.options", "analysis.plots"}  # what every wing may use
# Each wing and what it may import besides itself and SHARED: the flow tables -> loss | emergence -> report -> cli.
WINGS = {"analysis.tables": set(), "analysis.loss": {"analysis.tables"}, "analysis.emergence": {"analysis.tables"},
         "analysis.report": {"analysis.tables", "analysis.loss", "analysis.emergence"},
         "analysis.cli": {"analysis.tables", "analysis.loss", "analysis.emergence", "analysis.report"},
         "analysis.__main__": {"analysis.cli"}}


def wing(name: str) -> str | None:
    return next((w for w in WINGS if name == w or name.startswith(w + ".")), None)


def test_every_module_is_in_a_wing_or_shared():
    assert [name for name in MODULES if name != "analysis" and name not in SHARED and wing(name) is None] == []


def test_wings_import_only_downwards():
    wrong = []
    for name, path in MODULES.items():
        own = wing(name)
        allowed = SHARED | ({own} | WINGS[own] if own else set())
        wrong += [f"{name} -> {m}" for m in imports(path) if m != "analysis" and m not in SHARED
                  and wing(m) not in allowed]
    assert wrong == []


def test_shared_modules_import_no_wing():
    assert {name: imports(MODULES[name]) for name in SHARED} == {name: set() for name in SHARED}


def test_analysis_imports_nothing_of_sweep():
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            named = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{name}: {m}" for m in named if m == "sweep" or m.startswith("sweep.")]
    assert found == []


def test_every_module_opens_with_a_one_line_docstring_and_has_at_most_400_lines():
    for name, path in MODULES.items():
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text))
        assert doc and doc.splitlines()[0].strip(), f"{name} opens with no docstring"
        assert len(text.splitlines()) <= 400, f"{name}: {len(text.splitlines())} lines"


def test_loss_and_emergence_never_import_each_other():
    for name, path in MODULES.items():
        for package, other in (("analysis.loss", "analysis.emergence"), ("analysis.emergence", "analysis.loss")):
            if name.startswith(package):
                assert not [m for m in imports(path) if m.startswith(other)], name


def test_no_function_over_60_lines():
    long = [f"{path.relative_to(ROOT.parent)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in MODULES.values() for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60]
    assert long == []


def test_verdict_words_are_spelled_only_where_they_are_decided():
    """Other modules ask the Verdict (has_threshold, colour, draws_sigmoid) instead of comparing strings."""
    owners = {"analysis.emergence.rule", "analysis.emergence.artifact"}
    words = "|".join(map(re.escape, VERDICT_WORDS))
    pattern = re.compile(rf"""["']({words})["']""")
    found = [f"{name}: {m.group(0)}" for name, path in MODULES.items() if name not in owners
             for m in pattern.finditer(path.read_text())]
    assert found == []
