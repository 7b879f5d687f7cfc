"""No import circle among the project's modules (sweep/ and analysis/), counting imports inside functions too:
a circle is what makes a package's wings impossible to read one after another."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
           for package in ("sweep", "analysis") for p in (REPO / package).rglob("*.py")}


def project_imports(path: Path) -> set[str]:
    """The project's modules `path` imports (`from a import b` counts a.b when b is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out & MODULES.keys()


def test_no_import_circle():
    graph = {name: project_imports(path) for name, path in MODULES.items()}
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


def test_the_circle_check_finds_a_circle(monkeypatch):
    """The check above can fail: two modules that import each other are reported."""
    import pytest

    graph = {"a": {"b"}, "b": {"a"}}
    monkeypatch.setattr(f"{__name__}.MODULES", {k: Path(k) for k in graph})
    monkeypatch.setattr(f"{__name__}.project_imports", lambda path: graph[str(path)])
    with pytest.raises(AssertionError, match="a -> b -> a|b -> a -> b"):
        test_no_import_circle()
