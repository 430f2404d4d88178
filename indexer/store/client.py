"""The connection to ClickHouse: embedded chDB (``chdb://PATH``) or a server (``http(s)://...``).

Statements that write go through one connection, one at a time. Reads (``query``, ``scalar``)
take a connection of their own from a small pool, so the API's lookups from several threads run
at once (chDB runs queries of several connections in parallel) instead of queueing behind each
other and behind the writer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog

from indexer.store.cluster import INSERT_SETTINGS, ClusterLayout, embedded_cluster_message

log = structlog.get_logger(__name__)


class StoreError(Exception):
    """The store cannot be opened or used; the message says what to check."""


def parse_dsn(dsn: str) -> tuple[str, str | None]:
    """(connect DSN, database named in the DSN or None). Relative chDB paths become absolute."""
    if dsn.startswith("chdb://"):
        path = Path(dsn.removeprefix("chdb://")).expanduser()
        return f"chdb://{path.resolve()}", None
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https", "clickhouse", "clickhouses"):
        raise StoreError(f"--store {dsn!r}: use chdb://PATH (embedded) or http(s)://user:pass@host:8123/database")
    database = parts.path.strip("/") or None
    return parts._replace(path="").geturl(), database


def redact(dsn: str) -> str:
    """The DSN with its password replaced, for logs and messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


READERS = 4  # read connections at most: the API's lookups in parallel, on a 2-4 core host

# The embedded engine's background scheduling. A lightweight DELETE (a batch replaced, a rewind, a
# rollup bucket recomputed) is a mutation that ClickHouse applies part by part, and by default
# its scheduler pauses between parts (0.1 s, plus up to 1 s at random once it found nothing to
# do): a DELETE on a table of 20 parts took 2.3-2.7 s; with these, 0.08-0.14 s. Idle, the
# scheduler's extra wake-ups cost about 5 ms of CPU a second (40 tables). A ClickHouse server
# takes the same keys in its config.xml (README "Pointing it at a ClickHouse server").
CHDB_OPTIONS = {
    "background_processing_pool_thread_sleep_seconds_if_nothing_to_do": "0.001",
    "background_processing_pool_thread_sleep_seconds_random_part": "0",
    "background_processing_pool_task_sleep_seconds_when_no_work_min": "0.001",
    "background_processing_pool_task_sleep_seconds_when_no_work_random_part": "0",
}


class Store:
    """Thin, thread-safe wrapper: fully-qualified table names, JSON column inserts."""

    def __init__(self, dsn: str, database: str = "near_intents", cluster: str | None = None,
                 readers: int = READERS):
        import clickhouse_connect

        connect_dsn, db_in_dsn = parse_dsn(dsn)
        self._connect_dsn = connect_dsn
        self.dsn = redact(dsn)  # what messages and `status` show
        self.database = db_in_dsn or database
        self.embedded = connect_dsn.startswith("chdb://")
        # On a cluster (README "Clusters") data tables are Distributed over <table>_local.
        self.cluster = cluster or None
        if self.embedded and self.cluster:
            raise StoreError(embedded_cluster_message(cluster or ""))
        if self.embedded:
            path = Path(connect_dsn.removeprefix("chdb://"))
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot open store {self.dsn}: {path} cannot be a data folder ({exc.strerror}); "
                                 "point --store at a folder (chdb://PATH)") from None
        self._lock = threading.RLock()
        # Read connections are opened when concurrent reads first need them, and kept.
        self._read_slots = threading.BoundedSemaphore(max(1, readers))
        self._idle_readers: list[Any] = []
        self._readers: list[Any] = []
        self._pool_lock = threading.Lock()
        self._write_observers: list[Callable[[str], None]] = []
        self._session_database: str | None = None  # what unqualified table names mean (use_database)
        try:
            self.client = clickhouse_connect.get_client(dsn=connect_dsn, **self._options())
        except Exception as exc:
            hint = (
                "another process may hold this data path (one process per chDB path); stop it or use a ClickHouse server"
                if self.embedded
                else "check that the server is up and the URL, user and password are right"
            )
            raise StoreError(f"cannot open store {self.dsn}: {str(exc).replace(dsn, self.dsn)}; {hint}") from exc

    def table(self, name: str) -> str:
        return f"`{self.database}`.`{name}`"

    def delete_target(self, name: str) -> str:
        """Where a DELETE of data table ``name`` goes: the table, or on a cluster its shards'
        ``<name>_local ON CLUSTER`` (a lightweight DELETE does not pass through a Distributed table)."""
        if not self.cluster:
            return self.table(name)
        layout = ClusterLayout(self.cluster)
        return layout.local(self.table(name)) + layout.on

    def _settings(self, settings: dict[str, Any] | None) -> dict[str, Any] | None:
        if not self.cluster:
            return settings
        return {**INSERT_SETTINGS, **(settings or {})}

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        with self._lock:
            return self.client.command(sql, settings=self._settings(settings))

    def query(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._reader() as client:
            result = client.query(sql, parameters=parameters, settings=settings)
        return list(result.column_names), result.result_rows

    @contextmanager
    def _reader(self) -> Iterator[Any]:
        """A read connection for this thread alone (at most ``readers`` at once; others wait)."""
        with self._read_slots:
            with self._pool_lock:
                client = self._idle_readers.pop() if self._idle_readers else None
            if client is None:
                client = self._open_reader()
            try:
                yield client
            finally:
                with self._pool_lock:
                    self._idle_readers.append(client)

    def _open_reader(self) -> Any:
        import clickhouse_connect

        client = clickhouse_connect.get_client(dsn=self._connect_dsn, **self._options())
        with self._pool_lock:
            if self._session_database is not None:
                client.database = self._session_database
            self._readers.append(client)
        return client

    def _options(self) -> dict[str, Any]:
        return {"chdb_options": CHDB_OPTIONS} if self.embedded else {}

    def use_database(self, name: str) -> None:
        """Let unqualified table names in this Store's statements mean the tables of ``name``
        (the project's own SQL always qualifies them; a user's ``query`` or a dashboard's may not)."""
        with self._pool_lock:
            self._session_database = name
            for client in [self.client, *self._readers]:
                client.database = name

    def scalar(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        _, rows = self.query(sql, parameters)
        return rows[0][0] if rows else None

    def insert_rows(self, table: str, columns: tuple[str, ...], rows: list[list[Any]], *,
                    dedup_token: str | None = None) -> None:
        """Insert rows in one statement (so one part: atomic), serialised column-wise with orjson.

        ``dedup_token`` becomes the insert's ``insert_deduplication_token``: replicated (and
        deduplicating) tables drop a second insert with the same token, so retrying this one after
        a lost connection cannot store it twice, while a new token is never mistaken for an old one.
        """
        if not rows:
            return
        data = orjson.dumps([list(c) for c in zip(*rows)])
        settings = self._settings({"insert_deduplication_token": dedup_token} if dedup_token else None)
        for attempt in (1, 2):
            try:
                with self._lock:
                    self.client.raw_insert(self.table(table), list(columns), data, fmt="JSONCompactColumns",
                                           settings=settings)
                self._written(table)
                return
            except Exception as exc:
                if attempt == 2 or self.embedded or not dedup_token or not _is_connection_error(exc):
                    raise
                log.warning("insert failed on the connection; retrying it with the same deduplication token",
                            table=table, error=str(exc))

    def observe_writes(self, observer: Callable[[str], None]) -> Callable[[], None]:
        """Call ``observer(table)`` after every insert through this Store (in the inserting thread;
        it must not block); returns the function that stops it. The API's feed follower uses it
        to read the commits feed at once when this process commits (``run --api-port``)."""
        self._write_observers.append(observer)
        return lambda: self._write_observers.remove(observer) if observer in self._write_observers else None

    def _written(self, table: str) -> None:
        for observer in list(self._write_observers):
            try:
                observer(table)
            except Exception as exc:  # an observer must never fail a write that succeeded
                log.warning("write observer failed", table=table, error=str(exc))

    def now_us(self) -> int:
        """The store's clock, in microseconds: leases are measured by it, never by this host's."""
        return int(self.scalar("SELECT toUnixTimestamp64Micro(now64(6))"))

    def table_exists(self, name: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                {"db": self.database, "t": name},
            )
        )

    def close(self) -> None:
        with self._pool_lock:
            clients, self._readers, self._idle_readers = [*self._readers, self.client], [], []
        for client in clients:
            try:
                client.close()
            except Exception:  # closing must never mask the error that led here
                pass


def _is_connection_error(exc: BaseException) -> bool:
    from clickhouse_connect.driver.exceptions import OperationalError

    return isinstance(exc, (OperationalError, ConnectionError, TimeoutError))
