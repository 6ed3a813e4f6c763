"""Dependencies run one way: views -> services -> models, seats, gate, mail and activity
primitives. Read from the source (every import, also those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("webapp", "workers")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the project modules it imports (a name imported from a module counts as
    that module; from a package, as the package or its submodule)."""
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}"
                             in files else node.module for alias in node.names)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def is_web(module: str) -> bool:
    """The HTTP layer: pages, htmx fragments, forms, the JSON API, error pages."""
    last = module.rsplit(".", 1)[-1]
    return (last in ("views", "forms", "htmx", "http_errors", "openapi", "guard")
            or module.startswith("webapp.api"))


def is_blueprint(module: str) -> bool:
    """A package __init__ that only registers its views (Flask's blueprint pattern)."""
    return module.count(".") == 1 and module.startswith("webapp.")


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "base"


def test_the_layers_below_the_web_never_import_it():
    wrong = [f"{m} -> {d}" for m, deps in imports().items() if not is_web(m)
             and not is_blueprint(m) and m not in ("webapp", "webapp.cli", "webapp.devstack")
             for d in deps if is_web(d)]
    assert not wrong, "a service, model or primitive imports the web layer:\n" + "\n".join(wrong)


def test_domain_errors_know_nothing_of_http():
    tree = ast.parse((ROOT / "webapp" / "errors.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
             for a in n.names} | {n.module for n in ast.walk(tree)
                                 if isinstance(n, ast.ImportFrom) and n.module}
    assert not {"flask", "werkzeug", "werkzeug.exceptions"} & names
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)} | {e.id for n in ast.walk(tree)
                                              if isinstance(n, ast.Assign) for t in n.targets
                                              if isinstance(t, ast.Tuple) for e in t.elts}
    assert "status" not in assigned, "a domain error carries an HTTP status"


def test_packages_below_the_web_depend_on_each_other_one_way():
    """Between packages (registrations, events, organizer, auth, mail, reports), below the
    web layer: no cycle, e.g. events <-> registrations or mail -> registrations."""
    edges: dict[str, set[str]] = {}
    for module, deps in imports().items():
        if is_web(module) or is_blueprint(module) or not module.startswith("webapp."):
            continue
        for dep in deps:
            if not is_web(dep) and not is_blueprint(dep) and package(dep) != package(module):
                edges.setdefault(package(module), set()).add(package(dep))
    cycles = [f"{a} <-> {b}" for a in edges for b in edges[a] if a in edges.get(b, ())]
    assert not cycles, f"packages import each other: {cycles} (edges: {edges})"


def test_no_module_imports_in_a_cycle():
    graph = {m: {d for d in deps if not is_blueprint(d)} for m, deps in imports().items()
             if not is_blueprint(m) and m != "webapp"}
    seen: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module):], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in seen:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, [*path, module])
        seen.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_tests_share_code_through_tests_support_only():
    """conftest.py files hold fixtures (and pytest hooks); a test imports helpers from
    tests.support, never from another test module or a conftest."""
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "loadtests").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module.endswith("conftest") or ".test_" in f".{node.module}"):
                wrong.append(f"{path.relative_to(ROOT)} imports {node.module}")
        if path.name == "conftest.py":
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("pytest_") \
                        and not any("fixture" in ast.unparse(d) for d in node.decorator_list):
                    wrong.append(f"{path.relative_to(ROOT)} defines {node.name}(), not a fixture")
                elif isinstance(node, ast.ClassDef):
                    wrong.append(f"{path.relative_to(ROOT)} defines class {node.name}")
    assert not wrong, "\n".join(wrong)
