"""Shared fixtures.

chDB runs one data path per process, so in-process store tests share ``chdb_store_path`` and
isolate themselves by database name; CLI tests run the daemon in subprocesses with their own paths.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

_SESSION_CHDB = Path(tempfile.mkdtemp(prefix="indexer-chdb-"))


@pytest.fixture(scope="session")
def chdb_store_path() -> Path:
    return _SESSION_CHDB


@pytest.fixture
def store(chdb_store_path: Path):
    """A migrated store in a fresh database of the session's chDB path."""
    from indexer.store import migrations
    from indexer.store.client import Store

    s = Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    migrations.migrate(s)
    yield s


@pytest.fixture
def fixture_lake(tmp_path: Path) -> tuple[Path, list[int]]:
    """Two rounds of the mainnet fixture blocks re-chained, with the real execute_intents tx inside."""
    from lakebuild import fixture_lake as build

    root = tmp_path / "lake"
    heights = build(root, copies=2, skip_every=3)
    return root, heights


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must not pick up a developer's own settings or AWS profile.
    for key in list(os.environ):
        if key.startswith("INDEXER_"):
            monkeypatch.delenv(key, raising=False)
