"""The files source: Lake layout on disk, skipped heights, files still being written, following."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
import structlog

from fakeclock import FakeClock, waiting_lines
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
    clock = FakeClock()
    clock.on_sleep(2, lambda: (folder / "block.json").write_bytes(full))  # the mirror finishes
    source = clock.drive(FilesSource(tmp_path, _settings(tmp_path)))
    (block,) = [b async for b in source.blocks(h, h)]
    assert block.block == full
    assert _retries("incomplete_block") - before == 2
    assert clock.slept == [0.05, 0.1]


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
    clock = FakeClock()
    with pytest.raises(SourceError, match="shard_2.json"):
        [b async for b in clock.drive(FilesSource(tmp_path, _settings(tmp_path, shard_retry_limit=2))).blocks(h, h)]
    assert clock.slept == [0.05, 0.1]  # backed off, then gave up


async def test_waiting_for_a_shard_is_logged_on_the_first_retry_then_every_interval(tmp_path: Path) -> None:
    h = MAINNET_HEIGHTS[0]
    folder = _copy(tmp_path, h)
    shard = folder / "shard_2.json"
    saved = shard.read_bytes()
    shard.unlink()
    clock = FakeClock()
    clock.on_sleep(6, lambda: shard.write_bytes(saved))
    settings = _settings(tmp_path, shard_retry_limit=8, retry_base_delay=1, retry_max_delay=4, wait_log_interval=5)
    with structlog.testing.capture_logs() as captured:
        source = clock.drive(FilesSource(tmp_path, settings))
        (block,) = [b async for b in source.blocks(h, h)]
    assert block.shards[2] == saved
    # retries at t=0, 1, 3, 7, 11, 15 (delays 1, 2, 4, 4 ...): lines at 0, then >= 5 s apart
    lines = waiting_lines(captured)
    assert [(e["attempt"], e["next_try_s"]) for e in lines] == [(1, 1.0), (4, 4.0), (6, 4.0)]
    for e in lines:
        assert e["source"] == "files" and e["awaited"] == f"block {h} shard 2"
        assert e["block_height"] == h and e["shard_id"] == 2 and e["tries"] == 9 and e["reason"] == "missing_shard"
    assert lines[0]["event"] == (f"waiting for block {h} shard 2 from the files source: try 1 of 9 failed "
                                 "(missing_shard), next try in 1 s")


async def test_a_wait_is_logged_once_within_the_interval(tmp_path: Path) -> None:
    h = MAINNET_HEIGHTS[0]
    folder = _copy(tmp_path, h)
    (folder / "block.json").unlink()
    clock = FakeClock()
    with structlog.testing.capture_logs() as captured:
        source = clock.drive(FilesSource(tmp_path, _settings(tmp_path, shard_retry_limit=4)))
        with pytest.raises(SourceError):
            await source._read(h)
    (line,) = waiting_lines(captured)
    assert line["awaited"] == f"block {h}" and line["reason"] == "incomplete_block" and "shard_id" not in line
    assert (line["attempt"], line["tries"], line["next_try_s"]) == (1, 5, 0.05)


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
    await asyncio.wait_for(task, timeout=60)
    assert seen == MAINNET_HEIGHTS[:3]


def test_not_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a folder"):
        FilesSource(tmp_path / "nope", _settings(tmp_path))
