"""The shape issue 12 asked of analysis/, pinned: two packages that never import each other, no import
circle, no function over 60 lines, and the verdict words spelled only where they are decided."""

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


def test_loss_and_emergence_never_import_each_other():
    for name, path in MODULES.items():
        for package, other in (("analysis.loss", "analysis.emergence"), ("analysis.emergence", "analysis.loss")):
            if name.startswith(package):
                assert not [m for m in imports(path) if m.startswith(other)], name


def test_no_import_circle():
    graph = {name: imports(path) for name, path in MODULES.items()}
    done, active = set(), []

    def visit(name):
        assert name not in active, " -> ".join(active[active.index(name):] + [name])
        if name in done:
            return
        active.append(name)
        for dep in graph[name]:
            if dep != name and not name.startswith(dep + "."):  # a package's own __init__ is not a circle
                visit(dep)
        active.pop()
        done.add(name)

    for name in graph:
        visit(name)


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
