"""The shape of the package: no import cycles, nothing imports the package's own
``__init__``, and the layers of pyproject.toml hold (CI runs ``lint-imports`` too)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lifecycle_cli"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("lifecycle_cli", exclude_type_checking_imports=True)


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    """No cycle of imports between modules (Tarjan's strongly connected components)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert cycles == []


def test_nothing_inside_the_package_imports_its_own_init() -> None:
    """``lifecycle_cli/__init__.py`` is the library's face for users; the package's own
    modules import what they use from the module that defines it."""
    root = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir()
                                                     if (p / "__init__.py").exists()}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        depth = len(path.relative_to(PACKAGE).parts) - 1  # folders below the package
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            to_root = (node.module == "lifecycle_cli" and node.level == 0) or (
                node.level == depth + 1 and node.module is None)
            if to_root and any(alias.name not in root for alias in node.names):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


def test_the_layers_hold() -> None:
    """The contracts in pyproject.toml, as `lint-imports` checks them."""
    from importlinter.api import read_configuration
    from importlinter.application.use_cases import lint_imports

    config = str(PACKAGE.parent / "pyproject.toml")
    assert read_configuration(config)["contracts_options"], "no import-linter contracts"
    assert lint_imports(config_filename=config, cache_dir=None, no_logo=True) is True
