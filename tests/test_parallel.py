"""``backfill --workers N`` (indexer/parallel.py): the same tables as one process, interrupts resume.

Real CLI runs on the embedded store: worker processes decode, the parent writes. Merges are stopped
in every store (count() = uniqExact(key) then proves nothing is stored twice).
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clitools import LogReader, cli, cli_env, dump_tables, duplicates, log_lines, popen, prepare_store
from indexer.parallel import part_stream, split
from lakebuild import fixture_lake

SIM_BLOCKS = 120
HOUR_RETRIES = {"INDEXER_RETRY_BASE_DELAY": "3600", "INDEXER_RETRY_MAX_DELAY": "3600", "INDEXER_LOG_LEVEL": "debug"}


def test_split_is_contiguous_and_covers_the_range() -> None:
    assert split(10, 19, 3) == [(10, 12), (13, 15), (16, 19)]
    assert split(5, 6, 4) == [(5, 5), (6, 6)]  # no more parts than heights
    for n in range(1, 9):
        parts = split(100, 137, n)
        assert parts[0][0] == 100 and parts[-1][1] == 137
        assert all(b[0] == a[1] + 1 for a, b in zip(parts, parts[1:]))
    assert part_stream(1, None, 2, 3) == "backfill:1-head/2of3"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A simulated lake (intents.near settlements, workshop verify -> solve flows across blocks)
    and the backfill arguments that index it."""
    out = tmp_path_factory.mktemp("sim") / "lake"
    proc = subprocess.run([sys.executable, "-m", "indexer", "simulate", "--out", str(out), "--blocks",
                           str(SIM_BLOCKS), "--noise-bytes-per-block", "1000"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    command = next(line for line in proc.stdout.splitlines() if line.startswith("intents-indexer backfill"))
    return out, shlex.split(command)[2:]


def _backfill(store: Path, args: list[str], *extra: str) -> None:
    prepare_store(store)
    cli("backfill", *args, "--store", f"chdb://{store}", "--no-progress", *extra, timeout=600)


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_backfill_writes_exactly_what_one_process_writes(tmp_path: Path, sim: tuple[Path, list[str]],
                                                                  workers: int) -> None:
    _, args = sim
    one, many = tmp_path / "one", tmp_path / "many"
    _backfill(one, args)
    _backfill(many, args, "--workers", str(workers))
    want, got = dump_tables(one), dump_tables(many)
    assert want["receipts"] and want["intent_updates"] and want["solver_executions"]
    assert {t: len(r) for t, r in got.items()} == {t: len(r) for t, r in want.items()}
    assert got == want
    assert duplicates(many) == {t: 0 for t in duplicates(many)}


def test_parts_resolve_transactions_across_their_boundaries(tmp_path: Path) -> None:
    """The fixture transaction's receipts span several blocks: with a part per two heights some of
    them land in a part that starts after the transaction, and still get its tx_hash."""
    heights = fixture_lake(tmp_path / "lake", copies=2)
    args = ["--source", f"files:{tmp_path / 'lake'}", "--from", str(heights[0]), "--to", str(heights[-1]),
            "--contract", "intents.near:verifier", "--resolve-all-tx"]
    one, many = tmp_path / "one", tmp_path / "many"
    _backfill(one, args)
    _backfill(many, args, "--workers", "4")
    want, got = dump_tables(one), dump_tables(many)
    assert got == want and want["receipts"]
    assert duplicates(many) == {t: 0 for t in duplicates(many)}


def test_an_interrupted_parallel_backfill_exits_3_and_resumes_each_part(tmp_path: Path) -> None:
    heights = fixture_lake(tmp_path / "lake", copies=4)  # 16 heights: parts of 8
    lake = tmp_path / "lake"
    # A shard of the second part's third block is not uploaded yet: that part waits an hour for it.
    shard = sorted((lake / f"{heights[10]:012d}").glob("shard_*.json"))[0]
    data = shard.read_bytes()
    shard.unlink()
    store = tmp_path / "store"
    prepare_store(store)
    args = ["backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--store", f"chdb://{store}",
            "--no-progress", "--workers", "2"]  # no --to: the end of the first launch is kept
    proc = popen(*args, env=cli_env(**HOUR_RETRIES))
    logs = LogReader(proc)
    stored: set[int] = set()

    def both_parts_stored(e: dict) -> bool:  # type: ignore[type-arg]
        if e.get("event") == "batch stored":
            stored.add(e["height"])
        return {heights[7], heights[9]} <= stored  # the first part whole, the second up to the gap

    logs.wait_for(both_parts_stored)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 3
    stopped = logs.wait_for(lambda e: "resume" in e)
    assert shlex.split(stopped["resume"])[1:] == args
    assert [int(r[0]) for r in dump_tables(store)["blocks"]] == heights[:10]

    # A block appended after the first launch is beyond the stored end: the resume leaves it.
    shutil.copytree(lake / f"{heights[-1]:012d}", lake / f"{heights[-1] + 1:012d}")
    shard.write_bytes(data)
    done = cli(*shlex.split(stopped["resume"])[1:], timeout=300)
    events = log_lines(done.stderr)
    assert any(e.get("event") == "resuming backfill from its checkpoint" for e in events)
    assert [int(r[0]) for r in dump_tables(store)["blocks"]] == heights
    assert duplicates(store) == {t: 0 for t in duplicates(store)}

    clean = tmp_path / "clean"
    _backfill(clean, ["--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1])])
    assert dump_tables(store) == dump_tables(clean)


def test_workers_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    import os
    import time

    heights = fixture_lake(tmp_path / "lake", copies=4)
    lake = tmp_path / "lake"
    for h in (heights[2], heights[10]):  # both parts wait an hour for a shard
        sorted((lake / f"{h:012d}").glob("shard_*.json"))[0].unlink()
    store = tmp_path / "store"
    proc = popen("backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1]),
                 "--store", f"chdb://{store}", "--no-progress", "--workers", "2", env=cli_env(**HOUR_RETRIES))
    logs = LogReader(proc)
    logs.wait_for(lambda e: e.get("event") == "replaying blocks to rebuild decoder state"
                  and str(e.get("stream", "")).endswith("2of2"))
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) >= 2, children
    proc.kill()
    proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [c for c in alive if os.path.exists(f"/proc/{c}") and "Z" not in
                 open(f"/proc/{c}/stat").read().split(")")[-1].split()[0]]
    assert alive == [], "worker processes outlived their killed parent"
