"""The ingest loop and the exactly-once protocol at the edges: odd input, source errors, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clitools import LogReader, cli, cli_env, dump_tables, popen
from indexer.decode.rows import COLUMNS
from lakebuild import copy_blocks, fixture_lake

pytestmark = pytest.mark.timeout(300)

OLD = time.time() - 3600  # files older than the source's "still being written" window


def _garbage(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, (OLD, OLD))


def _checkpoint(store: Path) -> dict:
    out = cli("status", "--store", f"chdb://{store}", "--source", "none", "--format", "json").stdout
    (cp,) = json.loads(out)["checkpoints"]
    return cp


def test_chain_break_dead_letter_does_not_collide_with_the_blocks_other_dead_letters(tmp_path: Path) -> None:
    """dead_letters is a ReplacingMergeTree ordered by (block_height, seq): two dead letters of one
    block with the same seq collapse into one, so the chain break must take the next seq."""
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    folder = lake / f"{heights[2]:012d}"
    block = json.loads((folder / "block.json").read_text())
    block["header"]["prev_hash"] = "11111111111111111111111111111111"
    (folder / "block.json").write_text(json.dumps(block))
    sid = block["chunks"][0]["shard_id"]
    _garbage(folder / f"shard_{sid}.json", '{"mentions": "intents.near", broken')
    store = tmp_path / "store"
    cli("backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", f"chdb://{store}")
    dead = dump_tables(store)["dead_letters"]
    kinds = sorted(d[4] for d in dead if int(d[0]) == heights[2])
    assert kinds == ["chain_break", "shard"], dead
    seq = COLUMNS["dead_letters"].index("seq")  # later migrations add columns after it
    assert sorted(int(d[seq]) for d in dead) == [0, 1]


def test_sigterm_during_warm_up_replay_exits_promptly(tmp_path: Path) -> None:
    """A stop requested while the resume replay waits on the source must not wait for its retries."""
    lake_all = tmp_path / "all"
    heights = fixture_lake(lake_all, copies=2)
    lake = tmp_path / "lake"
    copy_blocks(lake_all, lake, heights[:4])
    store = tmp_path / "store"
    args = ["run", "--source", f"files:{lake}", "--store", f"chdb://{store}", "--start-block", str(heights[0])]
    env = cli_env(INDEXER_LOG_LEVEL="debug", INDEXER_POLL_INTERVAL="0.05")
    proc = popen(*args, env=env)
    LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[3])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    # A block of the warm-up window loses a shard file: the replay retries on it, for 5000 s.
    missing = sorted((lake / f"{heights[1]:012d}").glob("shard_*.json"))[0]
    sid = int(missing.stem.removeprefix("shard_"))
    saved = missing.read_bytes()
    missing.unlink()
    copy_blocks(lake_all, lake, heights[4:])
    proc = popen(*args, env=cli_env(INDEXER_LOG_LEVEL="debug", INDEXER_POLL_INTERVAL="0.05",
                                    INDEXER_SHARD_RETRY_LIMIT="1000", INDEXER_RETRY_BASE_DELAY="5",
                                    INDEXER_RETRY_MAX_DELAY="5"))
    logs = LogReader(proc)
    logs.wait_for(lambda e: e.get("event") == "replaying blocks to rebuild decoder state")
    # The source says so when the replay starts waiting on the missing shard.
    waiting = logs.wait_for(lambda e: str(e.get("event", "")).startswith("waiting for")
                            and e.get("block_height") == heights[1] and e.get("shard_id") == sid)
    assert waiting["source"] == "files" and waiting["tries"] == 1001
    proc.send_signal(signal.SIGTERM)
    # Only a stop that reaches the waiting replay ends this run in time: its retries alone take 5000 s.
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, "".join(logs.raw[-10:])
    assert _checkpoint(store)["height"] == heights[3]
    assert not any(e.get("event") == "batch stored" for e in logs.seen)
    # With the file back, the resumed run ends as one clean run would.
    missing.write_bytes(saved)
    proc = popen(*args, env=env)
    LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    clean = tmp_path / "clean"
    cli("backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", f"chdb://{clean}")
    assert dump_tables(store) == dump_tables(clean)


def test_missing_shard_mid_range_stores_good_rows_then_converges(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=3, skip_every=4)
    clean = tmp_path / "clean"
    base = ["backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1])]
    cli(*base, "--store", f"chdb://{clean}")
    bad = heights[7]
    folder = lake / f"{bad:012d}"
    missing = sorted(folder.glob("shard_*.json"))[-1]
    saved = missing.read_bytes()
    missing.unlink()
    store = tmp_path / "store"
    env = cli_env(INDEXER_SHARD_RETRY_LIMIT="2", INDEXER_RETRY_BASE_DELAY="0.05", INDEXER_BATCH_BLOCKS="3")
    proc = cli(*base, "--store", f"chdb://{store}", env=env, check=False)
    assert proc.returncode == 1 and missing.name in proc.stderr
    partial = dump_tables(store)
    assert [int(r[0]) for r in partial["blocks"]] == heights[:7]
    assert _checkpoint(store)["height"] == heights[6]
    missing.write_bytes(saved)
    cli(*base, "--store", f"chdb://{store}", env=cli_env(INDEXER_BATCH_BLOCKS="3"))
    assert dump_tables(store) == dump_tables(clean)


def test_undecodable_last_block_of_a_batch_then_resume_matches_a_clean_run(tmp_path: Path) -> None:
    lake_all = tmp_path / "all"
    heights = fixture_lake(lake_all, copies=2)
    k = 4
    _garbage(lake_all / f"{heights[k]:012d}" / "block.json", '{"header": {"height": oops')
    clean = tmp_path / "clean"
    cli("backfill", "--source", f"files:{lake_all}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", f"chdb://{clean}")
    lake = tmp_path / "lake"
    copy_blocks(lake_all, lake, heights[:k + 1])
    store = tmp_path / "store"
    env = cli_env(INDEXER_LOG_LEVEL="debug", INDEXER_POLL_INTERVAL="0.05")
    args = ["run", "--source", f"files:{lake}", "--store", f"chdb://{store}", "--start-block", str(heights[0])]
    proc = popen(*args, env=env)
    LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[k])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    copy_blocks(lake_all, lake, heights[k + 1:])
    proc = popen(*args, env=env)
    LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    assert dump_tables(store) == dump_tables(clean)


def test_backfill_to_beyond_the_last_block_then_more_blocks(tmp_path: Path) -> None:
    lake_all = tmp_path / "all"
    heights = fixture_lake(lake_all, copies=2)
    lake = tmp_path / "lake"
    copy_blocks(lake_all, lake, heights[:5])
    store = tmp_path / "store"
    base = ["backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1]),
            "--store", f"chdb://{store}"]
    cli(*base, timeout=60)
    assert _checkpoint(store)["height"] == heights[4]
    copy_blocks(lake_all, lake, heights[5:])
    cli(*base, timeout=60)
    clean = tmp_path / "clean"
    cli(*base[:-2], "--store", f"chdb://{clean}")
    assert dump_tables(store) == dump_tables(clean)


def _arrive_at_once(src: Path, lake: Path, heights: list[int]) -> None:
    """New blocks that the files source can only see all together.

    Each folder moves in whole but without block.json (the source waits on the first one), then
    the block.json files appear, the first height's last: once the source sees that block it
    reads all the others in the same step, so the run meets a backlog, not a trickle."""
    stage = lake.parent / "stage"
    copy_blocks(src, stage, heights)
    for h in heights:
        (stage / f"{h:012d}" / "block.json").rename(stage / f"{h:012d}.block.json")
        (stage / f"{h:012d}").rename(lake / f"{h:012d}")
    for h in reversed(heights):
        (stage / f"{h:012d}.block.json").rename(lake / f"{h:012d}" / "block.json")


def test_run_says_caught_up_at_the_head_and_again_after_falling_behind(tmp_path: Path) -> None:
    lake_all = tmp_path / "all"
    heights = fixture_lake(lake_all, copies=2)
    lake = tmp_path / "lake"
    copy_blocks(lake_all, lake, heights[:4])
    store = tmp_path / "store"
    # Batches of 2 blocks: the first 4 blocks end exactly on a batch, the 4 that come later
    # fill one while the run is at the head.
    env = cli_env(INDEXER_POLL_INTERVAL="0.05", INDEXER_BATCH_BLOCKS="2")
    proc = popen("run", "--source", f"files:{lake}", "--store", f"chdb://{store}", "--start-block", str(heights[0]),
                 env=env)
    logs = LogReader(proc)

    def said(e: dict) -> bool:
        return str(e.get("event", "")).startswith(("caught up", "fell behind"))

    first = logs.wait_for(said)
    assert first["event"] == f"caught up at {heights[3]}, following the head" and first["height"] == heights[3]
    _arrive_at_once(lake_all, lake, heights[4:])
    behind = logs.wait_for(said)
    assert behind["event"] == "fell behind the head; catching up"
    again = logs.wait_for(said)
    assert again["event"] == f"caught up at {heights[-1]}, following the head" and again["height"] == heights[-1]
    proc.send_signal(signal.SIGTERM)
    logs.wait_for(lambda e: e.get("event") == "stopped")  # every line before it has been seen
    proc.wait(timeout=60)
    assert proc.returncode == 0
    assert [e["event"] for e in logs.seen if said(e)] == [first["event"], behind["event"], again["event"]]
