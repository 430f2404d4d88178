"""The migrations, rendered for a ClickHouse cluster (``--cluster NAME``).

On a cluster every DDL statement runs ``ON CLUSTER NAME`` and every ``*MergeTree`` engine becomes
``Replicated*MergeTree`` (its own parameters kept, e.g. ``ReplacingMergeTree(version)``), kept in
sync through ClickHouse Keeper. Tables come in two kinds (README "Clusters"):

* **data tables**, those with a ``block_height`` column (blocks, receipts, events, ...): sharded.
  The rows live in ``<t>_local`` (Keeper path ``/clickhouse/tables/{shard}/{database}/{table}``:
  one copy per shard, held by that shard's replicas), and ``<t>`` is a ``Distributed`` table over
  them, sharded by :data:`SHARDING_KEY`. Reads and inserts use ``<t>``; deletes and other
  mutations go to ``<t>_local ON CLUSTER`` (a lightweight DELETE does not pass through a
  Distributed table).
* **coordination tables** (streams, commits, schema_migrations, ...): small, not sharded, one
  copy replicated to every node (path ``/clickhouse/tables/{database}/{table}``, no ``{shard}``),
  so any node reads every stream's state and lease.

Views stay over the Distributed names, so they read every shard. Rendering is a pure function
of the migration files, in order: a statement about an existing table (ALTER, RENAME, DROP, a
materialized view on it) is rendered by what the earlier statements made of that table, so the
applied history need not be read back from a server. A statement kind the renderer does not know
is refused rather than guessed (:class:`ClusterRenderError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Rows of 1,000 consecutive heights (about 10 minutes of mainnet) go to one shard: a batch of the
# head touches one shard and a catch-up batch of 2,000 blocks two or three; every row of a height
# (and so every version a ReplacingMergeTree collapses) is on the same shard whatever stream wrote
# it, and a delete of a height range only finds rows on the shards that own those heights.
SHARD_BLOCKS = 1000
SHARDING_KEY = f"intDiv(block_height, {SHARD_BLOCKS})"
SHARDED_COLUMN = "block_height"
LOCAL_SUFFIX = "_local"
SHARD_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
GLOBAL_PATH = "/clickhouse/tables/{database}/{table}"
# Settings of every statement sent to a cluster: an INSERT into a Distributed table returns only once
# every shard stored its rows (an asynchronous insert could be lost after the batch commits).
INSERT_SETTINGS = {"insert_distributed_sync": 1}

_REF = r"`[^`]+`\.(?:`[^`]+`|\w+)"
_COLUMN_COMMANDS = re.compile(r"^\s*(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b", re.I)


def embedded_cluster_message(cluster: str) -> str:
    return (f"--cluster {cluster!r} needs a ClickHouse server: the embedded store (chdb://) is a single node "
            "without Keeper; use --store http(s)://user:pass@host:8123/database, or leave --cluster out")


class ClusterRenderError(Exception):
    """A migration statement the cluster renderer cannot map onto the cluster layout."""


def quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _split_ref(ref: str) -> tuple[str, str]:
    db, _, name = ref.partition(".")
    return db.strip("`"), name.strip("`")


def _top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside parentheses, brackets and quotes."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _matching(text: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at ``open_at``."""
    depth, quote, i = 0, "", open_at
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ClusterRenderError(f"unbalanced parentheses in: {text[:200]}")


class ClusterLayout:
    """Renders migration statements for cluster ``cluster``; remembers which tables are sharded."""

    def __init__(self, cluster: str):
        if not cluster.strip():
            raise ClusterRenderError("the cluster name is empty")
        self.cluster = cluster
        self.on = f" ON CLUSTER {quote_ident(cluster)}"
        self.sharded: set[tuple[str, str]] = set()  # (database, table) with a <table>_local

    # --- names ---------------------------------------------------------------------------------

    def is_sharded(self, ref: str) -> bool:
        return _split_ref(ref) in self.sharded

    @staticmethod
    def local(ref: str) -> str:
        db, name = _split_ref(ref)
        return f"{quote_ident(db)}.{quote_ident(name + LOCAL_SUFFIX)}"

    def distributed(self, ref: str, *, if_not_exists: bool = True) -> str:
        db, name = _split_ref(ref)
        return (f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}{quote_ident(db)}.{quote_ident(name)}"
                f"{self.on} AS {self.local(ref)} ENGINE = Distributed({quote_str(self.cluster)}, {quote_str(db)}, "
                f"{quote_str(name + LOCAL_SUFFIX)}, {SHARDING_KEY})")

    # --- rendering -----------------------------------------------------------------------------

    def render_all(self, statements: Iterable[str]) -> list[str]:
        return [out for stmt in statements for out in self.render(stmt)]

    def render(self, stmt: str) -> list[str]:
        """The statements that do on the cluster what ``stmt`` does on one server."""
        head = " ".join(stmt.split()[:4]).upper()
        for prefix, fn in self._HANDLERS:
            if head.startswith(prefix):
                return fn(self, stmt)
        raise ClusterRenderError(f"no cluster rendering for this statement; extend indexer/store/cluster.py: "
                                 f"{stmt[:200]}")

    def _after_ref(self, stmt: str, pattern: str) -> tuple[re.Match[str], str]:
        m = re.match(pattern, stmt, re.I | re.S)
        if not m:
            raise ClusterRenderError(f"cannot find the object name in: {stmt[:200]}")
        return m, m.group("ref")

    def _database(self, stmt: str) -> list[str]:
        m = re.match(r"(?P<head>CREATE\s+DATABASE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:`[^`]+`|\w+))", stmt, re.I)
        if not m:
            raise ClusterRenderError(f"cannot find the database name in: {stmt[:200]}")
        return [m.group("head") + self.on + stmt[m.end():]]

    def _create_table(self, stmt: str) -> list[str]:
        m, ref = self._after_ref(stmt, rf"(?P<head>CREATE\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?)(?P<ref>{_REF})")
        rest = stmt[m.end():]
        if not self._has_height(rest):
            return [m.group("head") + ref + self.on + self._engine(rest, GLOBAL_PATH)]
        if not _mergetree(rest):
            raise ClusterRenderError(f"{ref} has block_height but no MergeTree engine to shard: {stmt[:200]}")
        self.sharded.add(_split_ref(ref))
        return [m.group("head") + self.local(ref) + self.on + self._engine(rest, SHARD_PATH),
                self.distributed(ref, if_not_exists=bool(m.group("ine")))]

    def _has_height(self, rest: str) -> bool:
        """Whether the table being created holds block_height (its column list, or the table it copies)."""
        body = rest.lstrip()
        if body.startswith("("):
            columns = body[1:_matching(body, 0)]
            return any(re.match(rf"\s*`?{SHARDED_COLUMN}`?\s", c) for c in _top_level(columns))
        like = re.match(rf"\s*AS\s+(?P<ref>{_REF})", body, re.I)
        return bool(like and self.is_sharded(like.group("ref")))

    def _engine(self, text: str, path: str) -> str:
        """``text`` with each ``ENGINE = XMergeTree[(params)]`` made ``ReplicatedXMergeTree(path, replica[, params])``."""
        out, pos = [], 0
        for m in re.finditer(r"ENGINE\s*=\s*(?P<name>\w*MergeTree)\b", text, re.I):
            if m.start() < pos:
                continue
            name, end, params = m.group("name"), m.end(), ""
            if name.lower().startswith(("replicated", "shared")):
                continue
            after = text[end:]
            if after.lstrip().startswith("("):
                open_at = end + len(after) - len(after.lstrip())
                close = _matching(text, open_at)
                params, end = text[open_at + 1:close].strip(), close + 1
            args = ", ".join([quote_str(path), quote_str("{replica}")] + ([params] if params else []))
            out.append(text[pos:m.start()] + f"ENGINE = Replicated{name}({args})")
            pos = end
        return "".join(out) + text[pos:]

    def _create_view(self, stmt: str) -> list[str]:
        m, ref = self._after_ref(
            stmt, rf"(?P<head>CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?)(?P<ref>{_REF})")
        return [m.group("head") + ref + self.on + stmt[m.end():]]

    def _create_mv(self, stmt: str) -> list[str]:
        """A materialized view fires on inserts into its source on the node that stores them: over a
        sharded source it watches ``<source>_local`` on every shard and writes a sharded target's
        ``_local`` (same sharding key, so the rows stay on their shard) or a replicated target."""
        m, ref = self._after_ref(
            stmt, rf"(?P<head>CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?)(?P<ref>{_REF})")
        rest = stmt[m.end():]
        body = re.search(r"\bAS\s+(?:WITH|SELECT)\b", rest, re.I)
        if not body:
            raise ClusterRenderError(f"materialized view {ref} without AS SELECT: {stmt[:200]}")
        spec, query = rest[:body.start()], rest[body.start():]
        source = re.search(rf"\bFROM\s+(?P<ref>{_REF})", query, re.I)
        refresh = re.search(r"\bREFRESH\b", spec, re.I)
        local_source = bool(source and self.is_sharded(source.group("ref")) and not refresh)
        if local_source:
            query = query[:source.start("ref")] + self.local(source.group("ref")) + query[source.end("ref"):]
            spec = re.sub(rf"\bTO\s+(?P<ref>{_REF})",
                          lambda t: "TO " + (self.local(t.group("ref")) if self.is_sharded(t.group("ref"))
                                             else t.group("ref")), spec, flags=re.I)
        return [m.group("head") + ref + self.on + self._engine(spec, SHARD_PATH if local_source else GLOBAL_PATH)
                + query]

    def _alter(self, stmt: str) -> list[str]:
        m, ref = self._after_ref(stmt, rf"(?P<head>ALTER\s+TABLE\s+)(?P<ref>{_REF})")
        rest = stmt[m.end():]
        if not self.is_sharded(ref):
            return [m.group("head") + ref + self.on + rest]
        out = [m.group("head") + self.local(ref) + self.on + rest]
        # The Distributed table holds no data but has the columns: column changes go to both.
        columns = [c for c in _top_level(rest) if _COLUMN_COMMANDS.match(c)]
        if columns:
            out.append(m.group("head") + ref + self.on + " " + ",".join(c.strip() for c in columns))
        return out

    def _rename(self, stmt: str) -> list[str]:
        """Renames the local tables, then puts Distributed tables named as the new names over them
        (a Distributed table names its local table, so it cannot just be renamed)."""
        pairs = []
        for part in _top_level(re.sub(r"^\s*RENAME\s+TABLE\s+", "", stmt, flags=re.I)):
            pm = re.fullmatch(rf"\s*(?P<a>{_REF})\s+TO\s+(?P<b>{_REF})\s*", part, re.I | re.S)
            if not pm:
                raise ClusterRenderError(f"cannot read the RENAME pair {part.strip()!r}")
            pairs.append((pm.group("a"), pm.group("b")))
        moved = [(a, b) for a, b in pairs if self.is_sharded(a)]
        renames = ", ".join(f"{self.local(a)} TO {self.local(b)}" if (a, b) in moved else f"{a} TO {b}"
                            for a, b in pairs)
        out = [f"RENAME TABLE {renames}{self.on}"]
        out += [f"DROP TABLE IF EXISTS {a}{self.on} SYNC" for a, _ in moved]
        for a, b in moved:
            self.sharded.discard(_split_ref(a))
        for a, b in moved:
            self.sharded.add(_split_ref(b))
            out.append(self.distributed(b))
        return out

    def _exchange(self, stmt: str) -> list[str]:
        m = re.fullmatch(rf"\s*EXCHANGE\s+TABLES\s+(?P<a>{_REF})\s+AND\s+(?P<b>{_REF})\s*", stmt, re.I | re.S)
        if not m:
            raise ClusterRenderError(f"cannot read: {stmt[:200]}")
        a, b = m.group("a"), m.group("b")
        if self.is_sharded(a) != self.is_sharded(b):
            raise ClusterRenderError(f"EXCHANGE of a sharded and an unsharded table: {stmt[:200]}")
        if self.is_sharded(a):  # each Distributed table keeps its name, over the exchanged rows
            a, b = self.local(a), self.local(b)
        return [f"EXCHANGE TABLES {a} AND {b}{self.on}"]

    def _drop(self, stmt: str) -> list[str]:
        m, ref = self._after_ref(
            stmt, rf"(?P<head>DROP\s+(?P<kind>TABLE|VIEW|DICTIONARY)\s+(?:IF\s+EXISTS\s+)?)(?P<ref>{_REF})")
        rest = stmt[m.end():]
        if m.group("kind").upper() == "TABLE" and self.is_sharded(ref):
            self.sharded.discard(_split_ref(ref))
            return [m.group("head") + ref + self.on + rest, m.group("head") + self.local(ref) + self.on + rest]
        return [m.group("head") + ref + self.on + rest]

    def _local_only(self, stmt: str) -> list[str]:
        """Mutations and maintenance of the stored rows: on every shard's local table."""
        m, ref = self._after_ref(
            stmt, rf"(?P<head>(?:TRUNCATE\s+TABLE|OPTIMIZE\s+TABLE|DELETE\s+FROM)\s+(?:IF\s+EXISTS\s+)?)(?P<ref>{_REF})")
        target = self.local(ref) if self.is_sharded(ref) else ref
        return [m.group("head") + target + self.on + stmt[m.end():]]

    def _as_is(self, stmt: str) -> list[str]:
        """INSERT ... SELECT runs once, on the node that migrates, through the Distributed tables."""
        return [stmt]

    _HANDLERS = (
        ("CREATE DATABASE", _database),
        ("CREATE TABLE", _create_table),
        ("CREATE MATERIALIZED VIEW", _create_mv),
        ("CREATE VIEW", _create_view),
        ("CREATE OR REPLACE VIEW", _create_view),
        ("ALTER TABLE", _alter),
        ("RENAME TABLE", _rename),
        ("EXCHANGE TABLES", _exchange),
        ("DROP TABLE", _drop),
        ("DROP VIEW", _drop),
        ("DROP DICTIONARY", _drop),
        ("TRUNCATE", _local_only),
        ("OPTIMIZE", _local_only),
        ("DELETE FROM", _local_only),
        ("INSERT INTO", _as_is),
    )


def _mergetree(rest: str) -> bool:
    return bool(re.search(r"ENGINE\s*=\s*\w*MergeTree\b", rest, re.I))
