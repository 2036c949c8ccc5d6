"""The package's imports: no module imports itself back, through any chain of
imports, those deferred into a function included (a deferred import that
closes a cycle is a cycle all the same: the two modules cannot be read or
moved apart); psycopg only for a PostgreSQL store."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import python_output

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tmapi_crawler"


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package: its __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Every import of a module, those in its functions (run later) too; not
    those under ``if TYPE_CHECKING`` (never run)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            found += imports(node.orelse)
            continue
        found += [
            child
            for child in ast.walk(node)
            if isinstance(child, ast.Import | ast.ImportFrom)
        ]
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules *name* imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in imports(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            parent = package.rsplit(".", node.level - 1)[0]
            base = f"{parent}.{base}" if base else parent
        for alias in node.names:
            # from a.b import c: the module a.b.c if it is one, else a.b
            targets.add(full if (full := f"{base}.{alias.name}") in known else base)
    return targets & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one
    importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def test_the_checker_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"], ["e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_holds_what_the_modules_import():
    graph = import_graph()
    store = "tmapi_crawler.store."
    assert store + "base" in graph[store + "sqlite"]  # at the top
    assert store + "postgresql" in graph[store + "db"]  # in a function
    source = (
        "import a\n"
        "if TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
        "def f():\n    from d import e\n"
    )
    found = imports(ast.parse(source).body)
    assert [getattr(n, "module", None) or n.names[0].name for n in found] == [
        "a", "c", "d",
    ]  # fmt: skip


def test_no_module_of_the_package_imports_itself_back():
    assert cycles(import_graph()) == []


def test_the_stores_side_by_side_import_neither_each_other_nor_the_opener():
    graph = import_graph()
    store = "tmapi_crawler.store."
    assert graph[store + "sqlite"] & {store + "postgresql", store + "db"} == set()
    assert graph[store + "postgresql"] & {store + "sqlite", store + "db"} == set()
    assert store + "db" not in graph[store + "base"]


def test_a_sqlite_store_opens_without_psycopg(tmp_path):
    # psycopg costs ~0.1 s to import: only a PostgreSQL store pays it
    script = (
        "import sys\n"
        "from tmapi_crawler.store.db import open_store\n"
        f"open_store('sqlite:///{tmp_path}/c.sqlite').close()\n"
        "import tmapi_crawler.store.extension\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'psycopg'))\n"
    )
    assert python_output(script).strip() == "[]"
