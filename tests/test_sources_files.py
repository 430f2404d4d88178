"""The files source: Lake layout on disk, skipped heights, files still being written, following."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from indexer import metrics
from indexer.config import load_settings
from indexer.decode.block import BlockDecoder, DecoderConfig
from indexer.sources.base import SourceError
from indexer.sources.files import FilesSource, shard_ids
from lakebuild import MAINNET, MAINNET_HEIGHTS


def _settings(root: Path, **kw):  # type: ignore[no-untyped-def]
    kw = {"retry_base_delay": 0.05, "shard_retry_limit": 6, "poll_interval": 0.05, **kw}
    return load_settings(source=f"files:{root}", **kw)


def _copy(root: Path, height: int) -> Path:
    dest = root / f"{height:012d}"
    shutil.copytree(MAINNET / f"{height:012d}", dest)
    return dest


def _retries(reason: str) -> float:
    return metrics.SOURCE_RETRIES.labels(source="files", reason=reason)._value.get()


async def test_blocks_in_order_with_gaps_and_identical_bytes(tmp_path: Path) -> None:
    for h in MAINNET_HEIGHTS:
        _copy(tmp_path, h)
    source = FilesSource(tmp_path, _settings(tmp_path))
    got = [b async for b in source.blocks(MAINNET_HEIGHTS[0], MAINNET_HEIGHTS[-1])]
    assert [b.height for b in got] == MAINNET_HEIGHTS
    for b in got:
        folder = MAINNET / f"{b.height:012d}"
        assert b.block == (folder / "block.json").read_bytes()
        assert b.shards == [(folder / f"shard_{sid}.json").read_bytes() for sid in shard_ids(b.block)]
    assert await source.final_head() == MAINNET_HEIGHTS[-1]


async def test_a_block_still_being_written_is_waited_for(tmp_path: Path) -> None:
    h = MAINNET_HEIGHTS[0]
    folder = _copy(tmp_path, h)
    full = (folder / "block.json").read_bytes()
    (folder / "block.json").write_bytes(full[: len(full) // 2])  # a mirror mid-write
    before = _retries("incomplete_block")

    async def finish() -> None:
        await asyncio.sleep(0.2)
        (folder / "block.json").write_bytes(full)

    writer = asyncio.create_task(finish())
    (block,) = [b async for b in FilesSource(tmp_path, _settings(tmp_path)).blocks(h, h)]
    await writer
    assert block.block == full
    assert _retries("incomplete_block") > before


async def test_an_old_malformed_block_is_delivered_and_dead_lettered(tmp_path: Path) -> None:
    h = MAINNET_HEIGHTS[0]
    folder = _copy(tmp_path, h)
    (folder / "block.json").write_bytes(b'{"header": {"height": ')
    os.utime(folder / "block.json", (1, 1))  # written long ago: not a mirror mid-write
    (block,) = [b async for b in FilesSource(tmp_path, _settings(tmp_path)).blocks(h, h)]
    decoded = BlockDecoder(DecoderConfig(contracts=[])).decode(block)
    dead = decoded.rows.tables["dead_letters"]
    assert len(dead) == 1 and dead[0][4] == "block" and dead[0][6] == '{"header": {"height": '


async def test_a_shard_that_never_appears_is_a_clear_error(tmp_path: Path) -> None:
    h = MAINNET_HEIGHTS[0]
    folder = _copy(tmp_path, h)
    (folder / "shard_2.json").unlink()
    with pytest.raises(SourceError, match="shard_2.json"):
        [b async for b in FilesSource(tmp_path, _settings(tmp_path, shard_retry_limit=2)).blocks(h, h)]


async def test_following_picks_up_new_folders(tmp_path: Path) -> None:
    _copy(tmp_path, MAINNET_HEIGHTS[0])
    source = FilesSource(tmp_path, _settings(tmp_path))
    seen: list[int] = []

    async def follow() -> None:
        async for b in source.blocks(MAINNET_HEIGHTS[0]):
            seen.append(b.height)
            if len(seen) == 3:
                return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    for h in MAINNET_HEIGHTS[1:3]:
        _copy(tmp_path, h)
    await asyncio.wait_for(task, timeout=10)
    assert seen == MAINNET_HEIGHTS[:3]


def test_not_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a folder"):
        FilesSource(tmp_path / "nope", _settings(tmp_path))
