"""Block sources: where raw NEAR Lake JSON comes from.

Every source yields :class:`~indexer.sources.base.RawBlock` objects strictly in height order,
skipping heights that have no block. ``open_source`` picks one from the settings.
"""

from indexer.sources.base import BlockSource, RawBlock, SourceError
from indexer.sources.factory import open_source

__all__ = ["BlockSource", "RawBlock", "SourceError", "open_source"]
