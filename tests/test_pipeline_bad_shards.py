"""A shard file that is not a shard of its block (a proxy's HTML page, JSON cut off before any
tracked account's name) is a dead letter, through the files and the lake source alike; the
block's other shards are indexed, and a genuine shard that names no tracked account is skipped.

The pipeline runs in this process (so its metrics can be read) on the session's chDB path.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from indexer import metrics
from indexer.config import load_settings
from indexer.pipeline import Pipeline, plan_backfill
from indexer.sources.base import BlockSource
from indexer.sources.files import FilesSource
from indexer.sources.lake import LakeSource
from indexer.store.client import Store
from lakebuild import fixture_lake
from s3server import CREDENTIALS, block_files, create_bucket, moto_thread, s3_client, upload_block

pytestmark = pytest.mark.timeout(300)

CONTRACTS = ["intents.near:verifier", "token.sweat"]
HTML = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center>" \
       b"<hr><center>nginx</center></body>\r\n</html>\r\n"
# In the first fixture block shard 0 names intents.near (the execute_intents transaction) and
# token.sweat first at byte 2358, shard 3 holds token.sweat receipts, shards 1 and 2 name neither.
CUT, PAGE, KEPT, QUIET = 0, 1, 3, 2
OLD = time.time() - 3600  # older than the files source's "still being written" window


def dead_letter_count() -> float:
    return metrics.REGISTRY.get_sample_value("near_intents_dead_letters_total", {"kind": "shard"}) or 0.0


def _damage(lake: Path, height: int) -> dict[int, bytes]:
    """Cut shard CUT before any tracked name and replace shard PAGE by an error page; returns the new bytes."""
    folder = lake / f"{height:012d}"
    cut = (folder / f"shard_{CUT}.json").read_bytes()
    cut = cut[:2000]
    assert b"intents.near" not in cut and b"token.sweat" not in cut
    damaged = {CUT: cut, PAGE: HTML}
    for sid, data in damaged.items():
        path = folder / f"shard_{sid}.json"
        path.write_bytes(data)
        os.utime(path, (OLD, OLD))
    return damaged


@asynccontextmanager
async def files_source(lake: Path, heights: list[int]) -> AsyncIterator[BlockSource]:
    async with FilesSource(lake, load_settings(source=f"files:{lake}", contracts=CONTRACTS)) as source:
        yield source


@asynccontextmanager
async def lake_source(lake: Path, heights: list[int]) -> AsyncIterator[BlockSource]:
    bucket = f"mirror-{uuid.uuid4().hex[:12]}"  # moto keeps buckets across the servers of one process
    with moto_thread() as endpoint:
        client = s3_client(endpoint)
        create_bucket(client, bucket)
        for h in heights:
            upload_block(client, bucket, h, block_files(lake / f"{h:012d}"))
        os.environ.update(AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
                          AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"])
        try:
            settings = load_settings(source="lake", lake_endpoint=endpoint, lake_bucket=bucket, contracts=CONTRACTS)
            async with LakeSource(settings) as source:
                yield source
        finally:
            os.environ.pop("AWS_ACCESS_KEY_ID")
            os.environ.pop("AWS_SECRET_ACCESS_KEY")


async def backfill(store: Store, source: FilesSource | LakeSource, height: int) -> None:
    settings = source.settings
    plan = await plan_backfill(store, settings, source, height, height)
    assert plan is not None
    await Pipeline(settings, store, source, plan).run(asyncio.Event())


def receipts(store: Store) -> list[tuple[Any, ...]]:
    _, rows = store.query(f"SELECT shard_id, receipt_id, receiver_id FROM {store.table('receipts')} "
                          "ORDER BY receipt_id")
    return rows


def shard_dead_letters(store: Store) -> dict[int, tuple[Any, ...]]:
    _, rows = store.query(f"SELECT shard_id, block_height, reason, payload FROM {store.table('dead_letters')} "
                          "WHERE kind = 'shard'")
    return {int(r[0]): r[1:] for r in rows}


@pytest.fixture
def other_store(chdb_store_path: Path):  # type: ignore[no-untyped-def]
    from indexer.store import migrations

    s = Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    migrations.migrate(s)
    yield s


@pytest.mark.parametrize("open_source", [files_source, lake_source], ids=["files", "lake"])
async def test_shards_that_are_not_shards_become_dead_letters_and_the_rest_is_indexed(
        tmp_path: Path, store: Store, other_store: Store, open_source: Callable[..., Any]) -> None:
    clean_lake, lake = tmp_path / "clean", tmp_path / "lake"
    (height,) = fixture_lake(clean_lake, copies=1)[:1]
    fixture_lake(lake, copies=1)
    async with open_source(clean_lake, [height]) as source:
        await backfill(other_store, source, height)
    clean = receipts(other_store)
    assert {r[0] for r in clean} == {CUT, KEPT}  # both damaged shards held tracked receipts or names
    damaged = _damage(lake, height)
    before = dead_letter_count()
    async with open_source(lake, [height]) as source:
        await backfill(store, source, height)

    dead = shard_dead_letters(store)
    assert sorted(dead) == [CUT, PAGE]  # QUIET, a real shard naming no tracked account, is no dead letter
    assert dead_letter_count() - before == 2
    for sid, (at, reason, payload) in dead.items():
        assert at == height and payload == damaged[sid].decode()
        assert f"shard_{sid}.json of block {height} is not a complete shard file" in reason
    assert "does not end like a JSON object" in dead[CUT][1]
    assert "does not start like a JSON object" in dead[PAGE][1]
    assert receipts(store) == [r for r in clean if r[0] != CUT]  # the block's other shards are indexed
    assert receipts(store)


async def test_a_genuine_shard_naming_no_tracked_account_is_skipped_without_a_dead_letter(
        tmp_path: Path, store: Store) -> None:
    lake = tmp_path / "lake"
    (height,) = fixture_lake(lake, copies=1)[:1]
    quiet = (lake / f"{height:012d}" / f"shard_{QUIET}.json").read_bytes()
    assert not any(c.split(":")[0].encode() in quiet for c in CONTRACTS)
    skipped = metrics.REGISTRY.get_sample_value("near_intents_shards_skipped_total") or 0.0
    before = dead_letter_count()
    async with files_source(lake, [height]) as source:
        await backfill(store, source, height)
    assert shard_dead_letters(store) == {}
    assert dead_letter_count() == before
    # shards 1 and 2 name no tracked account: both skipped, neither decoded
    assert (metrics.REGISTRY.get_sample_value("near_intents_shards_skipped_total") or 0.0) - skipped == 2
    assert {r[0] for r in receipts(store)} == {CUT, KEPT}
