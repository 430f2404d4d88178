"""The sources package imports in one direction: each source depends on base alone, the factory on them."""

from __future__ import annotations

import ast
from pathlib import Path

import indexer.sources

PACKAGE = Path(indexer.sources.__file__).parent
SOURCES = ("files", "lake", "neardata")


def _imports(path: Path) -> set[str]:
    """Modules of indexer.sources that ``path`` imports, TYPE_CHECKING blocks and function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "indexer.sources":
                found.update(a.name for a in node.names)
            elif node.module.startswith("indexer.sources."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("indexer.sources."))
    return found - {path.stem}


def test_every_source_depends_on_base_alone() -> None:
    for name in SOURCES:
        assert _imports(PACKAGE / f"{name}.py") == {"base"}, name


def test_base_imports_no_source_and_the_factory_sits_above_them() -> None:
    assert _imports(PACKAGE / "base.py") == set()
    assert _imports(PACKAGE / "factory.py") == {"base", *SOURCES}


def test_public_names_stay_where_callers_import_them() -> None:
    from indexer.sources import BlockSource, RawBlock, SourceError, open_source
    from indexer.sources.base import RawBlock as BaseRawBlock
    from indexer.sources.files import shard_ids

    assert RawBlock is BaseRawBlock and issubclass(SourceError, Exception) and callable(open_source)
    assert BlockSource.__module__ == "indexer.sources.base" and shard_ids.__module__ == "indexer.sources.base"
