"""``dead-letters retry``: decode dead letters again with the current decoder, exactly once.

A receipt-level dead letter (kinds ``receipt``, ``log``, ``args``) keeps its receipt as the Lake
delivered it, with its block, shard, position and transaction (``dead_letters.context``). A retry
decodes each such receipt again, as a whole, and replaces every row of that receipt (owner =
its contract, at its height): receipts, events, intent updates, solver executions and dead
letters. What now decodes is written once; what still fails stays one dead letter with the new
reason. Block-level dead letters (``block``, ``shard``, ``chain_break``) and those written before
migration 0003 carry no receipt: re-index their heights (``backfill --reindex``).

It runs under the ``operations`` lease (``store.operations``) over the contracts and heights it
retries, refusing while a live stream may write them (a pending batch there, or a ``--reindex``
stream that has not passed them). The steps order the writes so that a kill anywhere loses
nothing and the next retry finishes the work:

1. delete the receipt's rows other than dead letters (receipts, events, intent updates and
   lookups, solver executions);
2. insert its new rows; new dead letters get fresh numbers and this retry's token;
3. append the ``retry`` row to the change feed (the token is now committed);
4. delete the receipt's older dead letters, then clear the marker.

Until step 4 the old dead letters are there, holding the receipt: the next retry decodes it
again. New dead letters whose token never reached the change feed (killed before step 3) are
not listed and are replaced by the next retry of their receipt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog

from indexer.config import Settings
from indexer.decode.block import BlockDecoder, DecoderConfig
from indexer.decode.rows import COLUMNS, OWNER_COLUMN, Rows
from indexer.store import commits, streams
from indexer.store.client import Store
from indexer.store.operations import OPERATIONS, Operation, overlaps, shares_owner
from indexer.store.ownership import covering
from indexer.store.streams import StreamState

log = structlog.get_logger(__name__)

# The tables holding a receipt's rows besides its dead letters, and how a row names its receipt:
# by receipt_id, or (intent_lookups) by update_index, whose high bits are the receipt's position
# in its block (``Emitter.intent_update``).
RECEIPT_TABLES = ("receipts", "events", "intent_updates", "solver_executions", "intent_lookups")
_BY_POSITION = {"intent_lookups"}
_DL = COLUMNS["dead_letters"]
_SEQ, _TOKEN = _DL.index("seq"), _DL.index("retry_token")


@dataclass(frozen=True)
class Letter:
    block_height: int
    contract_id: str
    receipt_id: str
    seq: int
    kind: str
    context: str

    @property
    def receipt(self) -> tuple[int, str, str]:
        return self.block_height, self.contract_id, self.receipt_id


@dataclass
class Preview:
    """What a retry would do: the receipts it decodes again and what it leaves, and why."""

    letters: list[Letter] = field(default_factory=list)
    no_context: Counter[str] = field(default_factory=Counter)  # kind -> dead letters without a receipt
    uncommitted: int = 0  # in a batch its stream has not committed: that stream writes them again

    @property
    def receipts(self) -> dict[tuple[int, str, str], str]:
        out: dict[tuple[int, str, str], str] = {}
        for d in self.letters:
            out.setdefault(d.receipt, d.context)
        return out

    def describe(self) -> str:
        kinds = Counter(d.kind for d in self.letters)
        lines = [f"{len(self.letters)} dead letter(s) of {len(self.receipts)} receipt(s) to decode again"
                 + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")" if kinds else "")]
        if self.no_context:
            lines.append("  left as they are, with no receipt to decode again: "
                         + ", ".join(f"{k} {n}" for k, n in sorted(self.no_context.items()))
                         + " (re-index those heights with `backfill --from H --to H --reindex`)")
        if self.uncommitted:
            lines.append(f"  left to the stream writing them: {self.uncommitted} in a batch not committed yet")
        return "\n".join(lines)


@dataclass
class Report:
    receipts: int = 0
    retried: int = 0  # dead letters replaced
    still_failing: int = 0  # dead letters the receipts decode into now
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table
    commit: commits.Commit | None = None

    @property
    def fixed_receipts(self) -> int:
        return self.receipts - self._failing_receipts

    _failing_receipts: int = 0


def _committed_filter(store: Store) -> str:
    """Dead letters a retry killed before its change-feed row wrote are not there yet."""
    return f"(retry_token = '' OR retry_token IN (SELECT token FROM {store.table('commits')}))"


def preview(store: Store, *, kind: str | None = None, since: int | None = None) -> Preview:
    where, params = [_committed_filter(store)], {}
    if kind:
        where.append("kind = {kind:String}")
        params["kind"] = kind
    if since is not None:
        where.append("block_height >= {since:UInt64}")
        params["since"] = since
    _, rows = store.query(
        f"SELECT block_height, contract_id, receipt_id, seq, kind, context FROM {store.table('dead_letters')} "
        f"WHERE {' AND '.join(where)} ORDER BY block_height, contract_id, seq", params)
    states = [s for s in streams.read_all(store) if s.stream != OPERATIONS]
    out = Preview()
    for h, c, r, seq, k, ctx in rows:
        if not ctx or not r:
            out.no_context[k] += 1
        elif not any(lo <= h <= hi for s in states for lo, hi in covering(s.written, c)):
            out.uncommitted += 1
        else:
            out.letters.append(Letter(int(h), c, r, int(seq), k, ctx))
    return out


def _conflicts(owners: tuple[str, ...], heights: tuple[int, int]):  # type: ignore[no-untyped-def]
    def conflicts(s: StreamState) -> bool:
        if not shares_owner(s.owners, owners):
            return False
        if s.pending is not None and overlaps(s.pending, heights):
            return True  # it is writing those heights now
        end = 2**63 if s.end_height is None else s.end_height
        return s.reindex and overlaps((max(s.start_height, s.height + 1), end), heights)  # it will rewrite them

    return conflicts


def retry(store: Store, settings: Settings, *, kind: str | None = None, since: int | None = None,
          holder: str | None = None) -> Report:
    """Decode the selected dead letters' receipts again and replace their rows (see the module doc);
    LeaseError when a live stream may write those heights."""
    first = preview(store, kind=kind, since=since)
    if not first.letters:
        return Report()
    owners = tuple(sorted({d.contract_id for d in first.letters}))
    heights = (min(d.block_height for d in first.letters), max(d.block_height for d in first.letters))
    op = Operation.begin(store, owners, heights, what="cannot retry dead letters", conflicts=_conflicts(owners, heights),
                         ttl=settings.lease_ttl, settle=settings.lease_settle, holder=holder)
    try:
        now = preview(store, kind=kind, since=since)  # again, under the lease
        return _replace(store, op, BlockDecoder(DecoderConfig.from_settings(settings)), now)
    finally:
        op.close()


def _replace(store: Store, op: Operation, decoder: BlockDecoder, p: Preview) -> Report:
    receipts = p.receipts
    report = Report(receipts=len(receipts), retried=sum(1 for _ in p.letters))
    if not receipts:
        op.commit(commits.RETRY, (), 0, 0, {})
        return report
    new = Rows()
    failing = set()
    for key, context in receipts.items():
        rows = decoder.redecode(context)
        for table, table_rows in rows.tables.items():
            column = OWNER_COLUMN[table]
            idx = COLUMNS[table].index(column) if column else None
            for row in table_rows:
                if idx is not None and (row[0], row[idx]) == key[:2]:  # the receipt's own rows only
                    new.add(table, row)
        failing.update(key for row in rows.tables["dead_letters"] if row[3] == key[1])
    _number(store, new, op.token)
    report.still_failing = len(new.tables["dead_letters"])
    report._failing_receipts = len(failing)
    keys = list(receipts)
    positions = _positions(receipts)
    op.check()
    _delete(store, RECEIPT_TABLES, keys, positions)
    for table, table_rows in new.tables.items():
        if table_rows:
            op.check()
            store.insert_rows(table, COLUMNS[table], table_rows, dedup_token=f"{op.token}/{table}")
    report.rows = new.counts()
    owners = tuple(sorted({k[1] for k in keys}))
    times = _times(receipts)
    report.commit = op.commit(commits.RETRY, owners, min(k[0] for k in keys), max(k[0] for k in keys), report.rows,
                              times, then=lambda: _delete(store, ("dead_letters",), keys, positions, keep_token=op.token))
    log.info("dead letters retried", receipts=report.receipts, dead_letters=report.retried,
             still_failing=report.still_failing, rows=report.rows)
    return report


def _number(store: Store, rows: Rows, token: str) -> None:
    """Give the new dead letters numbers no stored one of their (height, contract) has, and the token."""
    letters = rows.tables["dead_letters"]
    if not letters:
        return
    pairs = sorted({(row[0], row[3]) for row in letters})
    _, found = store.query(
        f"SELECT block_height, contract_id, max(seq) FROM {store.table('dead_letters')} "
        f"WHERE (block_height, contract_id) IN ({', '.join(f'({int(h)}, {_quote(c)})' for h, c in pairs)}) "
        "GROUP BY block_height, contract_id")
    nxt = {(int(h), c): int(m) + 1 for h, c, m in found}
    for row in letters:
        key = (row[0], row[3])
        row[_SEQ] = nxt.get(key, 0)
        nxt[key] = row[_SEQ] + 1
        row[_TOKEN] = token


def _delete(store: Store, tables: tuple[str, ...], keys: list[tuple[int, str, str]], positions: dict[str, int], *,
            keep_token: str = "") -> None:
    """Delete the rows of these (height, owner, receipt)s (``positions``: receipt -> index in its
    block); with ``keep_token``, not the dead letters it wrote."""
    triples = ", ".join(f"({int(h)}, {_quote(c)}, {_quote(r)})" for h, c, r in keys)
    placed = ", ".join(f"({int(h)}, {_quote(c)}, {int(positions[r])})" for h, c, r in keys)
    for table in tables:
        if table not in COLUMNS:  # a table of a later migration this store does not have
            continue
        where = (f"(block_height, {OWNER_COLUMN[table]}, intDiv(update_index, 65536)) IN ({placed})"
                 if table in _BY_POSITION else f"(block_height, {OWNER_COLUMN[table]}, receipt_id) IN ({triples})")
        if keep_token:
            where += f" AND retry_token != {_quote(keep_token)}"
        if int(store.scalar(f"SELECT count() FROM {store.table(table)} WHERE {where}") or 0):
            store.command(f"DELETE FROM {store.delete_target(table)} WHERE {where}")  # on a cluster: its shards


def _positions(receipts: dict[tuple[int, str, str], str]) -> dict[str, int]:
    from indexer.decode import lake

    return {key[2]: lake.decode_receipt_context(c).index_in_block for key, c in receipts.items()}


def _times(receipts: dict[tuple[int, str, str], str]) -> tuple[int, int]:
    from indexer.decode import lake

    ms = [lake.decode_receipt_context(c).timestamp_ns // 1_000_000 for c in receipts.values()]
    return min(ms), max(ms)


def _quote(s: Any) -> str:
    s = str(s)
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
