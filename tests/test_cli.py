"""The CLI as users run it: help, migrate, query, status, and the run daemon's lifecycle."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from clitools import LogReader, cli, cli_env, dump_tables, log_lines, popen
from lakebuild import MAINNET, copy_blocks, fixture_lake

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("command", ["run", "backfill", "migrate", "status", "query"])
def test_every_command_explains_itself(command: str) -> None:
    out = cli(command, "--help").stdout
    assert "--store" in out
    if command in ("run", "backfill"):
        for flag in ("--source", "--contract", "--solver-account", "--strict-chain", "--lake-endpoint",
                     "--neardata-url", "--resolve-all-tx"):
            assert flag in out, f"{command} --help lacks {flag}"
    if command == "run":
        assert "--start-block" in out
    if command == "backfill":
        assert "--from" in out and "--to" in out


def test_bad_contract_role_is_a_usage_error() -> None:
    proc = cli("backfill", "--from", "1", "--contract", "x.near:bogus", check=False)
    assert proc.returncode == 2
    assert "unknown role 'bogus'" in proc.stderr and "workshop-verifier" in proc.stderr


def test_migrate_twice_and_refuse_an_edited_migration(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(Path(__file__).resolve().parents[1] / "migrations", migrations)
    env = cli_env(INDEXER_MIGRATIONS_DIR=str(migrations))
    store = f"chdb://{tmp_path / 'store'}"
    files = len(list(migrations.glob("[0-9][0-9][0-9][0-9]_*.sql")))
    assert f"applied {files} migration" in cli("migrate", "--store", store, env=env).stdout
    assert "up to date" in cli("migrate", "--store", store, env=env).stdout
    first = migrations / "0001_initial.sql"
    first.write_text(first.read_text() + "\n-- edited\n")
    proc = cli("migrate", "--store", store, env=env, check=False)
    assert proc.returncode == 1
    assert "0001_initial.sql" in proc.stderr and "new migration file" in proc.stderr


def test_query_formats_and_read_only(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    store = f"chdb://{tmp_path / 'store'}"
    cli("backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", store)
    sql = "SELECT receipt_id, tx_hash FROM near_intents.receipts WHERE method_name = 'execute_intents'"
    rows = json.loads(cli("query", sql, "--store", store, "--format", "json").stdout)
    assert rows == [{"receipt_id": "z6RxSWKZD7cgpU2sArqTVUQQRLe2mv8z2sJrMHti1uA",
                     "tx_hash": "HoWytDmLdYF4MnmayBSArwxef6Tj6pDYjnuNCVdSEnXe"}]
    gas = json.loads(cli("query", "SELECT intent_id, gas_burnt FROM near_intents.intents ORDER BY intent_id",
                         "--store", store, "--format", "json").stdout)
    # both signed payloads settled in the real execute_intents receipt, which burnt 10.04 Tgas
    assert gas == [{"intent_id": "B6NsFf8v8T8dCc671uxYWaeHcMdRf8DBn2ZXn2Y18aZz", "gas_burnt": 10038341571544},
                   {"intent_id": "DaqjLUF4BMwGPWpYgJbrymGzpb8H82spkTjuapdL8JGX", "gas_burnt": 10038341571544}]
    csv_out = cli("query", "SELECT count() AS n FROM near_intents.blocks", "--store", store, "--format", "csv").stdout
    assert csv_out.splitlines() == ["n", str(len(heights))]
    table = cli("query", "SELECT count() AS n FROM near_intents.blocks", "--store", store).stdout
    assert "(1 row)" in table
    proc = cli("query", "DROP TABLE near_intents.blocks", "--store", store, check=False)
    assert proc.returncode == 1 and "query failed" in proc.stderr
    assert len(dump_tables(tmp_path / "store")["blocks"]) == len(heights)


def test_run_follows_new_blocks_then_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    lake_all = tmp_path / "all"
    heights = fixture_lake(lake_all, copies=2)
    lake = tmp_path / "lake"
    copy_blocks(lake_all, lake, heights[:4])
    store = tmp_path / "store"
    env = cli_env(INDEXER_LOG_LEVEL="debug", INDEXER_POLL_INTERVAL="0.05")
    args = ["run", "--source", f"files:{lake}", "--store", f"chdb://{store}", "--start-block", str(heights[0])]
    proc = popen(*args, env=env)
    logs = LogReader(proc)
    logs.wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[3])
    copy_blocks(lake_all, lake, heights[4:])  # new blocks appear while the daemon follows the head
    logs.wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    tables = dump_tables(store)
    assert [int(r[0]) for r in tables["blocks"]] == heights
    # A restart resumes from the checkpoint (not --start-block) and writes nothing twice.
    proc = popen(*args, env=env)
    event = LogReader(proc).wait_for(lambda e: e.get("event") == "indexing")
    assert event["from_height"] == heights[-1] + 1
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    assert dump_tables(store) == tables


def test_run_without_network_names_the_source_and_keeps_retrying(tmp_path: Path) -> None:
    # Hour-long delays: the daemon is certainly waiting when it is stopped, and the stop can only
    # finish within the timeout if it does not wait for the retry.
    env = cli_env(INDEXER_RETRY_BASE_DELAY="3600", INDEXER_RETRY_MAX_DELAY="3600", INDEXER_SHARD_RETRY_LIMIT="0")
    proc = popen("run", "--source", "neardata", "--neardata-url", "http://127.0.0.1:9", "--store",
                 f"chdb://{tmp_path / 'store'}", env=env)
    logs = LogReader(proc)
    error = logs.wait_for(lambda e: e.get("event") == "source unavailable; retrying")
    assert proc.poll() is None, "the daemon exited instead of retrying"
    assert "127.0.0.1:9" in error["error"] and error["retry_in_s"] == 3600
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)  # far less than the hour the retry would take
    assert proc.returncode == 0


def test_strict_chain_stops_on_a_break(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    # Replace the middle block by a copy whose prev_hash points elsewhere.
    block_file = lake / f"{heights[2]:012d}" / "block.json"
    block = json.loads(block_file.read_text())
    block["header"]["prev_hash"] = "11111111111111111111111111111111"
    block_file.write_text(json.dumps(block))
    base = ["backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1])]
    proc = cli(*base, "--store", f"chdb://{tmp_path / 's1'}", "--strict-chain", check=False)
    assert proc.returncode == 1 and "prev_hash" in proc.stderr
    cli(*base, "--store", f"chdb://{tmp_path / 's2'}")
    dead = dump_tables(tmp_path / "s2")["dead_letters"]
    assert [(int(d[0]), d[4]) for d in dead] == [(heights[2], "chain_break")]
    assert MAINNET.is_dir()


def test_run_serves_prometheus_metrics(tmp_path: Path) -> None:
    import socket
    import urllib.request

    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = cli_env(INDEXER_LOG_LEVEL="debug", INDEXER_POLL_INTERVAL="0.05")
    proc = popen("run", "--source", f"files:{lake}", "--store", f"chdb://{tmp_path / 'store'}", "--start-block",
                 str(heights[0]), "--metrics-port", str(port), env=env)
    try:
        LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in body.splitlines()
              if line and not line.startswith("#")}
    assert values["near_intents_blocks_indexed_total"] == len(heights)
    assert values["near_intents_indexed_height"] == heights[-1]
    # intents.near appears only in the first block's first shard: every other shard is skipped
    assert values["near_intents_shards_skipped_total"] > 0
    assert values['near_intents_rows_written_total{table="receipts"}'] >= 1
    assert proc.returncode == 0


def test_run_waits_for_a_clickhouse_server_that_is_down(tmp_path: Path) -> None:
    env = cli_env(INDEXER_RETRY_BASE_DELAY="0.05")
    proc = popen("run", "--source", f"files:{tmp_path}", "--store", "http://default:secret@127.0.0.1:9/near_intents",
                 env=env)
    logs = LogReader(proc)
    first = logs.wait_for(lambda e: e.get("event") == "store unavailable; retrying")
    second = logs.wait_for(lambda e: e.get("event") == "store unavailable; retrying")
    assert proc.poll() is None, "the daemon exited instead of waiting for its store"
    assert first["store"] == "http://default:***@127.0.0.1:9/near_intents"  # the password is not logged
    assert "secret" not in "".join(logs.raw)
    assert second["retry_in_s"] >= first["retry_in_s"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0


def test_run_on_an_embedded_store_that_cannot_open_exits_with_the_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    proc = cli("run", "--source", f"files:{tmp_path}", "--store", f"chdb://{blocker}", check=False)
    assert proc.returncode == 1 and "cannot open store" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["backfill", "--from", "-3"], "-3 is not in the range x>=0"),
    (["backfill", "--from", "0", "--to", "-1"], "-1 is not in the range x>=0"),
    (["run", "--start-block", "-1"], "-1 is not in the range x>=0"),
    (["backfill", "--from", "10", "--to", "5"], "--to 5 is below --from 10"),
    (["backfill", "--from", "1", "--source", "files:"], "needs a folder: files:PATH"),
    (["run", "--source", "ipfs"], "unknown source; use lake, neardata, files:PATH or auto"),
    (["status", "--source", "ipfs"], "unknown source"),
    (["backfill", "--from", "1", "--store", "mysql://root:hunter2@db/x"], "is not a store DSN"),
    (["run", "--contract", "Intents..near:verifier"], "is not a NEAR account id"),
    (["run", "--solver-account", "-solver.near"], "is not a NEAR account id"),
    (["run", "--prefetch", "0"], "prefetch (--prefetch / INDEXER_PREFETCH): must be greater than or equal to 1"),
])
def test_bad_usage_and_settings_exit_2_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    proc = cli(*args, "--store", f"chdb://{tmp_path / 'store'}", check=False) if "--store" not in args else \
        cli(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "pydantic" not in proc.stderr and "Traceback" not in proc.stderr and "hunter2" not in proc.stderr
    assert not (tmp_path / "store").exists()


def test_a_range_without_blocks_warns(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    proc = cli("backfill", "--source", f"files:{lake}", "--from", str(heights[0] - 10), "--to",
               str(heights[0] - 1), "--store", f"chdb://{tmp_path / 'store'}")
    warnings = [e for e in log_lines(proc.stderr) if e.get("level") == "warning"]
    assert [e["event"] for e in warnings] == ["the source has no blocks in this range; nothing was indexed"]
    assert warnings[0]["from_height"] == heights[0] - 10


@pytest.mark.parametrize("command", [["status", "--source", "none"], ["query", "SELECT 1"]])
def test_reading_commands_never_create_a_store(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "dtaa"
    proc = cli(*command, "--store", f"chdb://{typo}", check=False)
    assert proc.returncode == 2
    assert f"no store at {typo}" in proc.stderr and "check the path" in proc.stderr
    assert not typo.exists()


def _lake_with_a_missing_shard(root: Path) -> tuple[list[int], Path, bytes]:
    """The fixture lake with one shard file of its third block taken away (a shard not uploaded yet)."""
    heights = fixture_lake(root, copies=1)
    shard = sorted((root / f"{heights[2]:012d}").glob("shard_*.json"))[0]
    data = shard.read_bytes()
    shard.unlink()
    return heights, shard, data


HOUR_RETRIES = {"INDEXER_RETRY_BASE_DELAY": "3600", "INDEXER_RETRY_MAX_DELAY": "3600", "INDEXER_LOG_LEVEL": "debug"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_backfill_exits_3_with_the_resume_command(tmp_path: Path, sig: signal.Signals) -> None:
    import shlex

    heights, shard, data = _lake_with_a_missing_shard(tmp_path / "lake")
    store = tmp_path / "store"
    # No --to: the resume command must name the --to this run chose, or it would start another range.
    proc = popen("backfill", "--source", f"files:{tmp_path / 'lake'}", "--from", str(heights[0]), "--store",
                 f"chdb://{store}", "--no-progress", env=cli_env(**HOUR_RETRIES))
    logs = LogReader(proc)
    # The block before the missing shard is stored; the next one waits an hour for its shard.
    logs.wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[1])
    proc.send_signal(sig)
    proc.wait(timeout=120)
    assert proc.returncode == 3
    stopped = logs.wait_for(lambda e: "resume" in e)
    resume = stopped["resume"]
    assert f"resume with: {resume}" in stopped["event"]
    assert shlex.split(resume)[0] == "intents-indexer"
    assert shlex.split(resume)[1:] == ["backfill", "--source", f"files:{tmp_path / 'lake'}", "--from",
                                       str(heights[0]), "--store", f"chdb://{store}", "--no-progress"]
    assert [e["event"] for e in logs.seen].count("stopping after the current batch") == 1
    shard.write_bytes(data)
    done = cli(*shlex.split(resume)[1:])
    assert any(e.get("event") == "resuming backfill from its checkpoint" for e in log_lines(done.stderr))
    assert [int(r[0]) for r in dump_tables(store)["blocks"]] == heights


def test_make_run_passes_ctrl_c_to_the_daemon(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    venv = Path(sys.executable).parent.parent
    repo = Path(__file__).resolve().parents[1]
    # -o: the install stamp counts as up to date, so make runs the daemon and installs nothing.
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-o", f"{venv}/.stamp-install", "run", f"VENV={venv}",
         f"STORE=chdb://{tmp_path / 'store'}", f"ARGS=--source files:{lake} --start-block {heights[0]}"],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(INDEXER_LOG_LEVEL="debug"), start_new_session=True)
    logs = LogReader(proc)
    logs.wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the terminal signals the whole foreground group
    proc.wait(timeout=120)
    logs.wait_for(lambda e: e.get("event") == "stopped")
    events = [e["event"] for e in logs.seen]
    assert events.count("stopping after the current batch") == 1
    # The daemon exited 0 (make reports a failed recipe as "*** [...] Error N"); GNU make itself then
    # re-raises the SIGINT it got from the terminal.
    assert "***" not in "".join(logs.raw)
    assert proc.returncode in (0, -signal.SIGINT)


def test_make_run_passes_sigterm_to_the_daemon(tmp_path: Path) -> None:
    import subprocess
    import sys

    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    venv = Path(sys.executable).parent.parent
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-o", f"{venv}/.stamp-install", "run", f"VENV={venv}",
         f"STORE=chdb://{tmp_path / 'store'}", f"ARGS=--source files:{lake} --start-block {heights[0]}"],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(INDEXER_LOG_LEVEL="debug"), start_new_session=True)
    logs = LogReader(proc)
    logs.wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
    proc.send_signal(signal.SIGTERM)  # to make only, as a supervisor would: make forwards it to its recipe
    proc.wait(timeout=120)
    # The daemon itself got the signal (not a shell between make and it) and stopped cleanly.
    stopping = logs.wait_for(lambda e: e.get("event") == "stopping after the current batch")
    assert stopping["signal"] == "SIGTERM"
    logs.wait_for(lambda e: e.get("event") == "stopped")
    assert "***" not in "".join(logs.raw)


def test_exit_codes_are_in_every_help() -> None:
    for command in ([], ["run"], ["backfill"], ["migrate"], ["status"], ["query"]):
        out = " ".join(cli(*command, "--help").stdout.split())
        assert "Exit codes: 0 done; 1 runtime failure" in out and "2 bad usage or settings" in out
        assert "3 stopped before the end" in out


def test_a_repeated_stop_signal_is_logged_once() -> None:
    import asyncio
    import os

    import structlog

    from indexer import cli as cli_module

    async def signal_twice() -> list[dict]:
        stop = asyncio.Event()
        with structlog.testing.capture_logs() as captured:
            cli_module._install_signal_handlers(stop)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C to the group, then a supervisor's SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(stop.wait(), timeout=60)
            for _ in range(6000):  # until both signals are handled, at most a minute
                if len(captured) >= 2:
                    break
                await asyncio.sleep(0.01)
        return captured

    captured = asyncio.run(signal_twice())
    assert [(e["event"], e["log_level"]) for e in captured] == [
        ("stopping after the current batch", "info"), ("already stopping", "debug")]


def test_query_in_the_configured_database_with_its_own_format(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    store = f"chdb://{tmp_path / 'store'}"
    cli("backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1]), "--store", store)
    assert cli("query", "SELECT count() AS n FROM blocks", "--store", store, "--format", "csv").stdout.split() == \
        ["n", str(len(heights))]
    out = json.loads(cli("query", "SELECT count() AS n FROM receipts FORMAT JSON", "--store", store).stdout)
    assert out["rows"] == 1 and int(out["data"][0]["n"]) > 0
    for empty in ("", "  ;  "):
        proc = cli("query", empty, "--store", store, check=False)
        assert proc.returncode == 2 and "the query is empty" in proc.stderr


LIBRARY_LOGS = """
import logging, sys
import near_lake_framework  # noqa: F401  (it calls logging.basicConfig(INFO) at import)
from indexer import logs
logs.configure(sys.argv[1], "info")
import structlog
logging.getLogger("urllib3.connectionpool").warning("Connection pool is full, discarding connection: %s", "s3")
logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("aiohttp.client").exception("request failed")
structlog.get_logger("indexer").info("own line", height=1)
"""


def test_library_log_records_are_json_lines_like_the_daemons_own() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", LIBRARY_LOGS, "json"], capture_output=True, text=True, timeout=120,
                          env=cli_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert [e["event"] for e in events] == [
        "Connection pool is full, discarding connection: s3", "request failed", "own line"]
    pool, failed, own = events
    assert pool["level"] == "warning" and pool["logger"] == "urllib3.connectionpool" and "timestamp" in pool
    assert failed["level"] == "error" and "ZeroDivisionError" in failed["exception"]
    assert own["height"] == 1
    console = subprocess.run([sys.executable, "-c", LIBRARY_LOGS, "console"], capture_output=True, text=True,
                             timeout=120, env=cli_env())
    assert "Connection pool is full" in console.stderr and "WARNING urllib3" not in console.stderr


def test_config_shows_each_settings_origin_and_hides_secrets(tmp_path: Path) -> None:
    toml = tmp_path / "indexer.toml"
    toml.write_text('store = "http://indexer:filesecret@clickhouse:8123/near_intents"\nprefetch = 3\n'
                    'network = "testnet"\nlake_endpoint = "https://key:endpointsecret@s3.internal"\n')
    env = cli_env(INDEXER_PREFETCH="5", INDEXER_CONFIG=str(toml), AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
                  AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY", AWS_SESSION_TOKEN="sessiontoken123")
    proc = cli("config", "--format", "json", "--batch-rows", "7", "--contract", "a.near:verifier",
               "--contract", "b.near", env=env)
    out = json.loads(proc.stdout)
    settings = out["settings"]
    assert settings["batch_rows"] == {"value": 7, "source": "flag --batch-rows"}
    assert settings["contracts"] == {"value": ["a.near:verifier", "b.near"], "source": "flag --contract"}
    assert settings["prefetch"] == {"value": 5, "source": "env INDEXER_PREFETCH"}
    assert settings["network"] == {"value": "testnet", "source": f"file {toml}"}
    assert settings["database"] == {"value": "near_intents", "source": "default"}
    assert settings["store"]["value"] == "http://indexer:***@clickhouse:8123/near_intents"
    assert settings["lake_endpoint"]["value"] == "https://key:***@s3.internal"
    assert out["environment"]["AWS_SECRET_ACCESS_KEY"] == "***" and out["environment"]["AWS_SESSION_TOKEN"] == "***"
    assert out["environment"]["AWS_ACCESS_KEY_ID"] == "AKIA***"
    table = cli("config", env=env).stdout
    for text in (proc.stdout, table):
        for secret in ("filesecret", "endpointsecret", "wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY", "sessiontoken123",
                       "IOSFODNN7"):
            assert secret not in text
    line = next(row for row in table.splitlines() if row.startswith("prefetch "))
    assert line.split() == ["prefetch", "5", "env", "INDEXER_PREFETCH"]
    assert cli("config", "--prefetch", "0", env=env, check=False).returncode == 2


def test_dead_letters_lists_and_filters(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=2)
    for h in (heights[2], heights[5]):  # two chain breaks: blocks whose prev_hash points elsewhere
        block_file = lake / f"{h:012d}" / "block.json"
        block = json.loads(block_file.read_text())
        block["header"]["prev_hash"] = "11111111111111111111111111111111"
        block_file.write_text(json.dumps(block))
    store = f"chdb://{tmp_path / 'store'}"
    cli("backfill", "--source", f"files:{lake}", "--from", str(heights[0]), "--to", str(heights[-1]), "--store", store)

    def listed(*args: str) -> list[dict]:
        return json.loads(cli("dead-letters", "--store", store, "--format", "json", *args).stdout)

    everything = listed()
    assert [(d["block_height"], d["kind"]) for d in everything] == [(heights[5], "chain_break"),
                                                                   (heights[2], "chain_break")]
    assert "11111111111111111111111111111111" in everything[0]["reason"]
    assert json.loads(everything[0]["payload"])["prev_hash"] == "11111111111111111111111111111111"
    assert [d["block_height"] for d in listed("--since", str(heights[3]))] == [heights[5]]
    assert [d["block_height"] for d in listed("--limit", "1")] == [heights[5]]
    assert listed("--kind", "args") == []
    assert len(listed("--kind", "chain_break")) == 2
    table = cli("dead-letters", "--store", store).stdout.splitlines()
    assert table[0].split() == ["block_height", "shard_id", "receipt_id", "contract_id", "kind", "reason", "payload"]
    assert table[-1] == "(2 rows)"
    csv_lines = cli("dead-letters", "--store", store, "--format", "csv", "--kind", "chain_break").stdout.splitlines()
    assert csv_lines[0].startswith("block_height,shard_id") and len(csv_lines) == 3
    proc = cli("dead-letters", "--store", store, "--limit", "0", check=False)
    assert proc.returncode == 2


def _all_commands() -> list[tuple[str, "object"]]:
    from indexer.cli import main

    return [(name, cmd) for name, cmd in main.commands.items()]


@pytest.mark.parametrize("name", [name for name, _ in _all_commands()])
def test_every_command_and_option_has_help(name: str) -> None:
    import click

    from indexer.cli import main

    cmd = main.commands[name]
    assert (cmd.help or "").strip(), f"{name} has no help"
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{name} {'/'.join(param.opts)} has no help"
        else:  # click arguments carry no help of their own: the command's text must name them
            assert param.human_readable_name.upper() in cmd.help.upper(), f"{name}: {param.human_readable_name}"
    # and the rendered --help shows every option
    out = cli(name, "--help").stdout
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.opts[0] in out


def test_command_list_is_not_cut() -> None:
    from indexer.cli import main

    out = cli("--help", env=cli_env(COLUMNS="80")).stdout
    listing = " ".join(out.split("Commands:", 1)[1].split())
    assert "..." not in listing
    for name, cmd in _all_commands():
        first_sentence = " ".join(cmd.help.split("\n\n")[0].split()).split(". ")[0].rstrip(".")
        assert first_sentence in listing, name
    assert "Run read-only SQL against the store, in its database (--database)" in listing
    assert "Follow the chain forever from the checkpoint, --start-block, or the latest final block" in listing
    assert all(name in listing for name in main.commands)


def test_contract_help_names_role_none() -> None:
    out = " ".join(cli("run", "--help").stdout.split())
    text = out.split("--contract TEXT", 1)[1].split("--solver-account", 1)[0]
    assert "none (receipts and NEP-297 events only" in text
