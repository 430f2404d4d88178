"""Simulated NEAR Lake traffic for NEAR Intents, with the exact expected answers (``truth.json``).

``intents-indexer simulate --out DIR --blocks N`` (see :mod:`indexer.simulate.command`) writes a
folder in NEAR Lake layout that near-lake-framework and the indexer's ``files:`` source read like
mainnet data, and ``DIR/truth.json`` (format in :mod:`indexer.simulate.truth` and ``TRUTH.md``),
computed while generating. Modules: ``options`` (settings, incidents), ``ids`` (hashes),
``chain`` (heights, skips, headers), ``actors`` (solvers, users, tokens), ``engine`` (receipts
across blocks and shards), ``verifier`` (intents.near), ``workshop`` (workshop contracts),
``noise`` (unrelated traffic), ``lake_writer`` (files), ``truth``, ``generator`` (the loop).
"""

from indexer.simulate.generator import Stats, generate
from indexer.simulate.options import SimConfig, SimulateError

__all__ = ["SimConfig", "SimulateError", "Stats", "generate"]
