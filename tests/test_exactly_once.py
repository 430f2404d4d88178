"""Re-runs, SIGTERM and kill -9 at several points leave every table as one clean run would."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clitools import BUSY_CONTRACTS, cli, cli_env, dump_tables, duplicates, log_lines, popen, prepare_store
from lakebuild import copy_blocks, fixture_lake

pytestmark = pytest.mark.timeout(600)


def _contract_args() -> list[str]:
    out: list[str] = []
    for c in BUSY_CONTRACTS:
        out += ["--contract", c]
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    root = tmp_path_factory.mktemp("lake")
    heights = fixture_lake(root, copies=12, skip_every=5)  # 48 blocks, skipped heights, the real tx inside
    return root, heights


@pytest.fixture(scope="module")
def clean(lake: tuple[Path, list[int]], tmp_path_factory: pytest.TempPathFactory) -> dict:
    root, heights = lake
    store = tmp_path_factory.mktemp("clean")
    cli("backfill", "--source", f"files:{root}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", f"chdb://{store}", *_contract_args())
    tables = dump_tables(store)
    # The comparison only means something if every table has rows.
    for table in ("blocks", "receipts", "events", "intent_updates", "solver_executions", "intents"):
        assert tables[table], f"clean run wrote no {table}"
    return tables


def _backfill_args(root: Path, heights: list[int], store: Path) -> list[str]:
    return ["backfill", "--source", f"files:{root}", "--from", str(heights[0]), "--to", str(heights[-1]),
            "--store", f"chdb://{store}", *_contract_args()]


# A run over a lake with a shard held back waits for it (retrying) after storing the batches
# before it: a signal sent after some batches always finds it still running.
WAITING = {"INDEXER_SHARD_RETRY_LIMIT": "10000"}


def _held_back(root: Path, view: Path, height: int) -> Path:
    """``view``: the lake ``root`` (as symlinks) with one shard file of block ``height`` missing."""
    view.mkdir()
    for folder in root.iterdir():
        if not folder.name.isdigit():
            continue
        if int(folder.name) != height:
            (view / folder.name).symlink_to(folder)
            continue
        (view / folder.name).mkdir()
        files = sorted(folder.glob("*.json"))
        held = [f for f in files if f.name.startswith("shard_")][-1]
        for f in files:
            if f != held:
                (view / folder.name / f.name).symlink_to(f)
    return view


def _sigterm_after_first_batch(proc: subprocess.Popen[str]) -> str:
    """SIGTERM a backfill once it stored a batch; it must exit 3 (stopped early, resumable). Returns stderr."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if '"batch stored"' in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err[-2000:]
    return err


def test_rerun_of_a_finished_range_is_identical(lake, clean, tmp_path: Path) -> None:
    root, heights = lake
    store = tmp_path / "store"
    cli(*_backfill_args(root, heights, store))
    cli(*_backfill_args(root, heights, store))
    assert dump_tables(store) == clean


def test_overlapping_ranges_do_not_double_count(lake, clean, tmp_path: Path) -> None:
    root, heights = lake
    store = tmp_path / "store"
    mid = heights[len(heights) // 2]
    base = ["--source", f"files:{root}", "--store", f"chdb://{store}", *_contract_args()]
    cli("backfill", "--from", str(heights[0]), "--to", str(mid), *base)
    cli("backfill", "--from", str(heights[0]), "--to", str(heights[-1]), *base)
    assert dump_tables(store) == clean


@pytest.mark.parametrize("window", [0, 1000], ids=["plain", "dedup-window"])
@pytest.mark.parametrize("kill_after_batches,delay", [(1, 0.0), (3, 0.01), (6, 0.03), (9, 0.0)])
def test_kill_9_mid_backfill_then_resume(lake, clean, tmp_path: Path, kill_after_batches: int, delay: float,
                                         window: int) -> None:
    root, heights = lake
    store = tmp_path / "store"
    prepare_store(store, dedup_window=window)
    env = cli_env(INDEXER_BATCH_BLOCKS="4", INDEXER_LOG_LEVEL="debug", **WAITING)
    proc = popen(*_backfill_args(_held_back(root, tmp_path / "view", heights[-1]), heights, store), env=env)
    stored = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        if '"batch stored"' in line:
            stored += 1
            if stored >= kill_after_batches:
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    cli(*_backfill_args(root, heights, store), env=cli_env(INDEXER_BATCH_BLOCKS="4"))  # the whole lake
    extra = duplicates(store)
    assert extra == dict.fromkeys(extra, 0)
    assert dump_tables(store) == clean


def test_sigterm_finishes_the_batch_and_exits_3_to_resume(lake, clean, tmp_path: Path) -> None:
    root, heights = lake
    store = tmp_path / "store"
    env = cli_env(INDEXER_BATCH_BLOCKS="2", INDEXER_LOG_LEVEL="debug", **WAITING)
    view = _held_back(root, tmp_path / "view", heights[-1])
    err = _sigterm_after_first_batch(popen(*_backfill_args(view, heights, store), env=env))  # stopped before --to
    partial = dump_tables(store)
    assert 0 < len(partial["blocks"]) < len(clean["blocks"])
    cli(*_backfill_args(root, heights, store))
    assert dump_tables(store) == clean


def test_status_reports_the_checkpoint(lake, clean, tmp_path: Path) -> None:
    root, heights = lake
    store = tmp_path / "store"
    cli(*_backfill_args(root, heights, store))
    out = cli("status", "--store", f"chdb://{store}", "--source", "none", "--format", "json").stdout
    report = json.loads(out)
    (cp,) = report["checkpoints"]
    assert cp["height"] == heights[-1]
    assert cp["stream"] == f"backfill:{heights[0]}-{heights[-1]}"
    assert report["tables"]["blocks"] == len(heights)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    """Simulated intents traffic: receipt chains and workshop flows span blocks, so a resumed
    run must rebuild tx links and verification times exactly as a clean run had them."""
    from indexer.simulate import SimConfig, generate

    root = tmp_path_factory.mktemp("sim")
    generate(SimConfig(out=root, blocks=160, seed=21, noise_bytes_per_block=5000, intents_per_block=4.0,
                       workshop_intents_per_block=1.5, max_latency_blocks=10, malformed_rate=0.03))
    truth = json.loads((root / "truth.json").read_text())
    args = ["backfill", "--source", f"files:{root}", "--from", str(truth["blocks"]["first_height"]),
            "--to", str(truth["blocks"]["last_height"]), "--tx-lookback-blocks", "40"]
    for c in truth["contracts"]:
        args += ["--contract", c]
    for a in truth["solver_accounts"]:
        args += ["--solver-account", a]
    store = tmp_path_factory.mktemp("sim-clean")
    cli(*args, "--store", f"chdb://{store}")
    clean_tables = dump_tables(store)
    assert any(r[-1] not in ("None", "") for r in clean_tables["solver_executions"]), "no latency to check"
    return root, args, clean_tables


@pytest.mark.parametrize("window", [0, 1000], ids=["plain", "dedup-window"])
@pytest.mark.parametrize("kill_after_batches", [2, 5, 11])
def test_kill_9_on_simulated_traffic_then_resume(sim, tmp_path: Path, kill_after_batches: int, window: int) -> None:
    root, args, clean_tables = sim
    store = tmp_path / "store"
    prepare_store(store, dedup_window=window)
    last = int(args[args.index("--to") + 1])
    view = _held_back(root, tmp_path / "view", last)
    held = [f"files:{view}" if a == f"files:{root}" else a for a in args]
    proc = popen(*held, "--store", f"chdb://{store}",
                 env=cli_env(INDEXER_BATCH_BLOCKS="7", INDEXER_LOG_LEVEL="debug", **WAITING))
    assert proc.stderr is not None
    stored = 0
    for line in proc.stderr:
        if '"batch stored"' in line:
            stored += 1
            if stored >= kill_after_batches:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    cli(*args, "--store", f"chdb://{store}", env=cli_env(INDEXER_BATCH_BLOCKS="7"))
    extra = duplicates(store)
    assert extra == dict.fromkeys(extra, 0)
    assert dump_tables(store) == clean_tables


def test_live_stream_never_deletes_rows_ahead_of_itself(tmp_path: Path) -> None:
    """run, stop, backfill heights above run's checkpoint, restart run: the backfill's rows stay
    until run reaches them, then run replaces them; the end result equals one clean run."""
    from clitools import LogReader

    full = tmp_path / "full"
    heights = fixture_lake(full, copies=2)  # 8 blocks, the real tx in the first ones
    live = tmp_path / "live"
    copy_blocks(full, live, heights[:4])
    store = tmp_path / "store"
    env = cli_env(INDEXER_LOG_LEVEL="debug", INDEXER_POLL_INTERVAL="0.05")
    run = ["run", "--source", f"files:{live}", "--store", f"chdb://{store}", "--start-block", str(heights[0]),
           *_contract_args()]

    def run_until(predicate) -> None:  # type: ignore[no-untyped-def]
        proc = popen(*run, env=env)
        LogReader(proc).wait_for(predicate)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 0

    run_until(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[3])
    cli("backfill", "--source", f"files:{full}", "--from", str(heights[5]), "--to", str(heights[7]),
        "--store", f"chdb://{store}", *_contract_args())
    # run resumes at heights[4]; no new block appears in its folder while it runs
    run_until(lambda e: e.get("event") == "indexing")
    assert [int(r[0]) for r in dump_tables(store)["blocks"]] == heights[:4] + heights[5:]

    copy_blocks(full, live, heights[4:])
    run_until(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
    clean = tmp_path / "clean"
    cli("backfill", "--source", f"files:{full}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", f"chdb://{clean}", *_contract_args())
    assert dump_tables(store) == dump_tables(clean)


def test_backfill_without_to_resumes_up_to_the_head_of_its_first_launch(tmp_path: Path) -> None:
    full = tmp_path / "full"
    heights = fixture_lake(full, copies=4)  # 16 blocks
    lake = tmp_path / "lake"
    copy_blocks(full, lake, heights[:10])  # the head at first launch is heights[9]
    held = sorted((lake / f"{heights[9]:012d}").glob("shard_*.json"))[-1]
    saved = held.read_bytes()
    held.unlink()  # the first launch waits there, so the stop always comes before its end
    store = tmp_path / "store"
    args = ["backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--store", f"chdb://{store}",
            *_contract_args()]
    err = _sigterm_after_first_batch(popen(*args, env=cli_env(INDEXER_BATCH_BLOCKS="2", INDEXER_LOG_LEVEL="debug",
                                                              **WAITING)))
    assert "--to" not in log_lines(err)[-1]["resume"]  # the same command resumes it
    held.write_bytes(saved)
    copy_blocks(full, lake, heights[10:])  # the chain moved on meanwhile
    out = cli(*args)
    assert "resuming backfill" in out.stderr
    assert [int(r[0]) for r in dump_tables(store)["blocks"]] == heights[:10]
    clean = tmp_path / "clean"
    cli("backfill", "--source", f"files:{full}", "--from", str(heights[0]), "--to", str(heights[9]),
        "--store", f"chdb://{clean}", *_contract_args())
    assert dump_tables(store) == dump_tables(clean)
