"""The decoding package imports in one direction: role decoders sit below the block decoder."""

from __future__ import annotations

import ast
from pathlib import Path

import indexer.decode

PACKAGE = Path(indexer.decode.__file__).parent


def _imports(path: Path) -> set[str]:
    """Modules of indexer.decode that ``path`` imports, TYPE_CHECKING blocks and function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "indexer.decode":
                found.update(a.name for a in node.names)
            elif node.module.startswith("indexer.decode."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("indexer.decode."))
    return found - {path.stem}


GRAPH = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def test_no_import_cycles() -> None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, "import cycle: " + " -> ".join(path[path.index(module):] + [module])
        if module in done:
            return
        for dep in sorted(GRAPH.get(module, ())):
            visit(dep, path + [module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def test_role_decoders_do_not_import_the_block_decoder() -> None:
    for module in ("dip4", "workshop", "emit", "receipt", "intent_hash", "roles"):
        assert "block" not in GRAPH[module], module
    assert {"dip4", "workshop", "emit"} <= GRAPH["block"]


def test_no_imports_hidden_from_the_runtime() -> None:
    for path in PACKAGE.glob("*.py"):
        assert "TYPE_CHECKING" not in path.read_text(), path.name
