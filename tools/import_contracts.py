"""import-linter contracts of our own (registered in pyproject.toml, run by ``lint-imports``).

``private_names``: no module uses a private name (``_name``) of another module, whether it
imports it (``from .cli import _Parser``) or reaches it through an imported module
(``cli._Parser``). A name that starts with one underscore belongs to its module; anything
another module needs is public, documented and kept.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
from importlinter import Contract, ContractCheck, fields, output


class PrivateNamesContract(Contract):
    """Configuration: ``root_packages``, the packages whose modules are checked."""

    type_name = "private_names"

    root_packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        roots = list(self.root_packages)  # type: ignore[call-overload]
        found: list[str] = []
        for module in sorted(graph.modules):
            if module.split(".")[0] in roots:
                found += _violations(module, _source(module), roots)
        return ContractCheck(kept=not found, metadata={"violations": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["violations"]:
            output.print_error(line, bold=False)
        output.new_line()


def _source(module: str) -> Path:
    root = module.split(".")[0]
    spec = importlib.util.find_spec(root)
    assert spec is not None and spec.submodule_search_locations, root
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*module.split(".")[1:])
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _violations(module: str, path: Path, roots: list[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    modules: dict[str, str] = {}  # local name -> module of ours it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base.split(".")[0] not in roots:
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if _private(alias.name) or any(_private(p) for p in base.split(".")):
                    found.append(f"{module}:{node.lineno} imports {target}")
                elif importlib.util.find_spec(base) is not None and _is_module(target):
                    modules[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in roots and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in modules and _private(node.attr) \
                and modules[node.value.id] != module:
            found.append(f"{module}:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    return found


def _absolute(node: ast.ImportFrom, package: list[str]) -> str:
    if not node.level:
        return node.module or ""
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
