"""Apply ``migrations/NNNN_name.sql`` in order, once each, and refuse edited history.

Each file is a list of statements separated by ``;`` at a line end; ``${database}`` stands for
the configured database. Applied versions are recorded with the file's SHA-256 in
``schema_migrations``: a file whose content changed after it was applied is refused, because
the store no longer matches what the file says.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import structlog

from indexer.store.client import Store
from indexer.store.cluster import ClusterLayout

log = structlog.get_logger(__name__)

def _default_dir() -> Path:
    """INDEXER_MIGRATIONS_DIR, else the checkout's migrations/, else the installed copy."""
    if os.environ.get("INDEXER_MIGRATIONS_DIR"):
        return Path(os.environ["INDEXER_MIGRATIONS_DIR"])
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    installed = Path(sys.prefix) / "share" / "near-intents-indexer" / "migrations"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


DEFAULT_DIR = _default_dir()
_NAME = re.compile(r"^(\d{4})_([\w\-]+)\.sql$")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        text = self.sql.replace("${database}", f"`{database}`")
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def discover(folder: Path = DEFAULT_DIR) -> list[Migration]:
    if not folder.is_dir():
        raise MigrationError(f"migrations folder {folder} not found; set INDEXER_MIGRATIONS_DIR")
    found = []
    for path in sorted(folder.iterdir()):
        m = _NAME.match(path.name)
        if m:
            found.append(Migration(int(m[1]), m[2], path, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number in {folder}")
    return found


def _log_statements(database: str) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS `{database}`",
        f"CREATE TABLE IF NOT EXISTS `{database}`.`schema_migrations` "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version",
    ]


def _ensure_log(store: Store) -> None:
    statements = _log_statements(store.database)
    if store.cluster:
        statements = ClusterLayout(store.cluster).render_all(statements)
    for stmt in statements:
        store.command(stmt)


def rendered(found: list[Migration], database: str, cluster: str | None) -> list[tuple[Migration, list[str]]]:
    """Each migration with the statements that apply it: as written, or on a cluster rendered by
    ``ClusterLayout`` (which walks every file from the first, so it knows what earlier files made)."""
    if not cluster:
        return [(m, m.statements(database)) for m in found]
    layout = ClusterLayout(cluster)
    layout.render_all(_log_statements(database))
    return [(m, layout.render_all(m.statements(database))) for m in found]


def applied(store: Store) -> dict[int, tuple[str, str]]:
    _ensure_log(store)
    _, rows = store.query(f"SELECT version, name, checksum FROM {store.table('schema_migrations')} ORDER BY version")
    return {int(v): (n, c) for v, n, c in rows}


def pending(store: Store, folder: Path = DEFAULT_DIR) -> list[Migration]:
    """Migrations not yet applied; raises MigrationError when applied history was edited."""
    done = applied(store)
    todo = []
    for m in discover(folder):
        if m.version in done:
            name, checksum = done[m.version]
            if checksum != m.checksum:
                raise MigrationError(
                    f"migration {m.version:04d} ({m.path.name}) differs from the one applied to "
                    f"{store.database} (applied as {name!r}); restore the file as it was and put the "
                    "change in a new migration file with the next number"
                )
            continue
        todo.append(m)
    return todo


def migrate(store: Store, folder: Path = DEFAULT_DIR) -> list[Migration]:
    """Apply pending migrations; returns those applied (empty when up to date)."""
    todo = pending(store, folder)
    versions = {m.version for m in todo}
    for m, statements in rendered(discover(folder), store.database, store.cluster):
        if m.version not in versions:
            continue
        log.info("applying migration", version=m.version, name=m.name, cluster=store.cluster)
        for stmt in statements:
            store.command(stmt)
        store.insert_rows("schema_migrations", ("version", "name", "checksum"), [[m.version, m.name, m.checksum]])
    return todo
