"""Run the real CLI in subprocesses, and read a store's tables back for comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BUSY_CONTRACTS = [
    "intents.near:verifier",
    "token.sweat",
    "earn.kaiching",
    "users.kaiching",
    "game.hot.tg",
]

DUMP = """
import json, sys
from indexer.store.client import Store
from indexer.decode.rows import COLUMNS
s = Store(sys.argv[1], sys.argv[2])
out = {}
for t in [*COLUMNS, "intents"]:
    cols, rows = s.query(f"SELECT * FROM {s.table(t)} ORDER BY ALL")
    out[t] = [[str(v) for v in r] for r in rows]
print(json.dumps(out))
"""


PREPARE = """
import sys
from indexer.store import migrations
from indexer.store.client import Store
from indexer.decode.rows import COLUMNS
s = Store(sys.argv[1], sys.argv[2])
migrations.migrate(s)
window = int(sys.argv[3])
for t in COLUMNS:  # no merges: a ReplacingMergeTree merge would hide a duplicate
    s.command(f"ALTER TABLE {s.table(t)} MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1, "
              "max_bytes_to_merge_at_min_space_in_pool = 1")
for t in [*COLUMNS, "streams", "commits"]:
    s.command(f"ALTER TABLE {s.table(t)} MODIFY SETTING non_replicated_deduplication_window = {window}")
"""

DUPLICATES = """
import json, sys
from indexer.store.client import Store
s = Store(sys.argv[1], sys.argv[2])
keys = json.loads(sys.argv[3])
out = {}
for t, key in keys.items():
    n, uniq = s.query(f"SELECT count(), uniqExact({key}) FROM {s.table(t)}")[1][0]
    out[t] = int(n) - int(uniq)
print(json.dumps(out))
"""


def prepare_store(store_path: Path, dedup_window: int = 0, database: str = "near_intents") -> None:
    """Migrate a store, stop its merges and give every table a deduplication window, as replicated
    tables have (0: none)."""
    proc = subprocess.run([sys.executable, "-c", PREPARE, f"chdb://{store_path}", database, str(dedup_window)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def duplicates(store_path: Path, database: str = "near_intents") -> dict[str, int]:
    """Rows beyond the first per table key: all 0 when nothing is stored twice."""
    from storedriver import KEYS

    proc = subprocess.run([sys.executable, "-c", DUPLICATES, f"chdb://{store_path}", database, json.dumps(KEYS)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    env.update({"INDEXER_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True,
                          env=env or cli_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"intents-indexer {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "indexer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or cli_env())


def dump_tables(store_path: Path, database: str = "near_intents") -> dict[str, list[list[Any]]]:
    proc = subprocess.run([sys.executable, "-c", DUMP, f"chdb://{store_path}", database], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def log_lines(stderr: str) -> list[dict[str, Any]]:
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


class LogReader:
    """Reads a daemon's JSON log lines in a thread, so that waits have a deadline."""

    def __init__(self, proc: subprocess.Popen[str]):
        import queue
        import threading

        self.proc = proc
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            for event in log_lines(line):
                self.lines.put(event)

    def wait_for(self, predicate, timeout: float = 120.0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        import queue
        import time

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching log line in {timeout}s; last lines: {''.join(self.raw[-5:])}")
            try:
                event = self.lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(f"daemon exited {self.proc.returncode}: {''.join(self.raw[-10:])}") from None
                continue
            self.seen.append(event)
            if predicate(event):
                return event


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 10) -> tuple[int, Any]:
    """(status, JSON body) of a GET, for 2xx and error statuses alike."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for_http(url: str, predicate, timeout: float = 120.0) -> tuple[int, Any]:  # type: ignore[no-untyped-def]
    """Poll ``url`` until ``predicate(status, body)`` holds; fail after ``timeout`` seconds."""
    import time
    import urllib.error

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = http_get(url)
        except (urllib.error.URLError, ConnectionError, ValueError) as exc:  # not listening yet
            last = exc
        else:
            if predicate(*last):
                return last
        time.sleep(0.1)
    raise AssertionError(f"{url}: condition not met in {timeout}s; last answer {last!r}")
