"""The layering in README's Layout section, read from the imports (function-level ones included).

Services form a strict order: a package's modules import only packages below it. Pages (modules that define a
Flask blueprint, and the web helpers in ``app/views``) may import any package, but no other feature's pages. Imports
inside functions across packages are for the factory, the CLI and the job bootstrap only. No module-level circle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Low to high; a package may import only those before it (and itself).
ORDER = ("config", "db", "security", "observability", "services", "tenancy", "jobs", "mail", "audit", "users", "connectwise",
         "billing", "tenants", "branding", "invoices", "review", "sending", "onboarding", "support", "auth", "views")
# Modules that wire everything, so they may import anything, also inside functions.
WIRING = {"app", "app.cli", "app.models", "app.dbadmin", "app.dbcheck", "app.jobs.runtime"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "app").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_page(module: str) -> bool:
    return _package(module) == "views" or "Blueprint(" in MODULES[module].read_text()


def _is_wiring(module: str) -> bool:
    return module in WIRING or module.endswith(".cli")


def _resolve(name: str) -> str | None:
    """The app module an import names (``from app.x import y`` may name module ``app.x.y`` or a name in ``app.x``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, bool]]:
    """(imported app module, inside a function) for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [f"{child.module}.{a.name}" for a in child.names]
            for name in names:
                if name == "app" or name.startswith("app."):
                    target = _resolve(name)
                    if target and target != module:
                        found.append((target, inner))
            visit(child, inner)

    visit(tree, False)
    return found


def test_every_package_is_placed_in_the_order():
    packages = {_package(m) for m in MODULES} - {""}
    wiring_only = {_package(m) for m in MODULES if _is_wiring(m)}
    assert packages - wiring_only <= set(ORDER) | {"cli", "models", "dbadmin", "dbcheck"}, packages - set(ORDER)


def test_services_import_only_packages_below_them():
    wrong = []
    for module in MODULES:
        if _is_wiring(module) or _is_page(module) or _package(module) not in ORDER:
            continue
        rank = ORDER.index(_package(module))
        for target, _inner in _imports(module):
            package = _package(target)
            if package in ORDER and ORDER.index(package) > rank:
                wrong.append(f"{module} -> {target}")
            if package not in ORDER:  # the factory, CLI or model registry: wiring, never below a service
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_pages_use_no_other_features_pages():
    wrong = []
    for module in MODULES:
        if not _is_page(module) or _is_wiring(module):
            continue
        for target, _inner in _imports(module):
            if _is_page(target) and _package(target) not in (_package(module), "views"):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_imports_inside_functions_cross_packages_only_in_the_factory_cli_and_job_bootstrap():
    wrong = [f"{module} -> {target}" for module in MODULES if not _is_wiring(module)
             for target, inner in _imports(module) if inner and _package(target) != _package(module)]
    assert wrong == []


def test_no_module_level_import_circle():
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, inner in _imports(module):
            if not inner:
                graph[module].add(target)
    seen: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def walk(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in seen:
                walk(nxt)
        stack.pop()
        seen[node] = 2

    for module in sorted(MODULES):
        if module not in seen:
            walk(module)
    assert circles == []
