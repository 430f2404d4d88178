"""The rows decoders produce, one list per table, in the column order of ``COLUMNS``.

Rows are plain lists so that a batch serialises column-wise with a single ``orjson.dumps``.
Timestamps are decimal-second strings (``"1700000000.123"``), which ClickHouse parses exactly
into ``DateTime64(3)``; 128-bit amounts are decimal strings because JSON numbers cannot hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COLUMNS: dict[str, tuple[str, ...]] = {
    "blocks": (
        "block_height", "block_hash", "prev_hash", "block_timestamp_ns", "author",
        "protocol_version", "shard_ids",
    ),
    "receipts": (
        "block_height", "block_timestamp", "block_hash", "shard_id", "index_in_block", "receipt_id",
        "receiver_id", "predecessor_id", "signer_id", "tx_hash", "method_name", "action_kinds", "args",
        "deposit", "gas_attached", "gas_burnt", "tokens_burnt", "status", "failure", "logs_count",
    ),
    "events": (
        "block_height", "block_timestamp", "shard_id", "receipt_id", "tx_hash", "contract_id",
        "predecessor_id", "standard", "version", "event", "log_index", "data", "execution_status",
    ),
    "intent_updates": (
        "block_height", "block_timestamp", "update_index", "contract_id", "receiver_id", "intent_id", "status", "failure",
        "signer_id", "solver_id", "kinds", "tokens", "amounts", "referral", "action", "deadline",
        "receipt_id", "tx_hash", "method_name", "gas_burnt", "submitted_height", "submitted_at", "accounts",
    ),
    # one row per (intent update, lookup key); see migrations/0004_intent_lookups.sql
    "intent_lookups": (
        "block_height", "block_timestamp", "update_index", "kind", "key", "contract_id", "receiver_id",
        "intent_id", "status",
    ),
    # updates per (block, contract, status): counts over time sum these (see 0004_intent_lookups.sql)
    "intent_status_counts": (
        "block_height", "block_timestamp", "contract_id", "receiver_id", "status", "updates",
    ),
    "solver_executions": (
        "block_height", "block_timestamp", "contract_id", "receiver_id", "solver_id", "receipt_id", "tx_hash",
        "method_name", "intent_ids", "success", "failure", "gas_burnt", "latency_s",
    ),
    # log_index, context (the receipt to decode again), decoder_version, retry_token: migration 0003
    "dead_letters": ("block_height", "shard_id", "receipt_id", "contract_id", "kind", "reason", "payload", "seq",
                     "log_index", "context", "decoder_version", "retry_token"),
}

# Tables written per block range; all carry block_height, so a range can be deleted and redone.
DATA_TABLES: tuple[str, ...] = tuple(COLUMNS)

# Every row belongs to (owner, block_height). The owner is the tracked contract that received the
# receipt, or BLOCK_OWNER for what all streams share (blocks, block-level dead letters). A stream
# writes and replaces only the rows of the owners it tracks (README "Store protocol").
BLOCK_OWNER = ""
OWNER_COLUMN: dict[str, str | None] = {
    "blocks": None,  # always BLOCK_OWNER
    "receipts": "receiver_id",
    "events": "contract_id",
    "intent_updates": "receiver_id",
    "solver_executions": "receiver_id",
    "dead_letters": "contract_id",
    "intent_lookups": "receiver_id",
    "intent_status_counts": "receiver_id",
}
_OWNER_INDEX = {t: (None if c is None else COLUMNS[t].index(c)) for t, c in OWNER_COLUMN.items()}
_HEIGHT = 0  # block_height is the first column of every table
TIMED_TABLES = {"receipts": 1, "events": 1, "intent_updates": 1, "solver_executions": 1,
                "intent_lookups": 1, "intent_status_counts": 1}  # block_timestamp column


def ts_string(ns: int) -> str:
    """Nanoseconds -> ``"<seconds>.<millis>"``, the exact text form of a DateTime64(3)."""
    ms = ns // 1_000_000
    return f"{ms // 1000}.{ms % 1000:03d}"


@dataclass(slots=True)
class Rows:
    """Rows of one or more blocks, by table."""

    tables: dict[str, list[list[Any]]] = field(default_factory=lambda: {t: [] for t in COLUMNS})

    def add(self, table: str, row: list[Any]) -> None:
        self.tables[table].append(row)

    def extend(self, other: "Rows") -> None:
        for name, rows in other.tables.items():
            if rows:
                self.tables[name].extend(rows)

    def count(self) -> int:
        return sum(len(r) for r in self.tables.values())

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables.items() if rows}

    def only(self, writes: dict[str, list[tuple[int, int]]]) -> "Rows":
        """The rows whose (owner, height) falls in ``writes``: owner -> [(low, high), ...]."""
        out = Rows()
        for table, rows in self.tables.items():
            idx = _OWNER_INDEX[table]
            keep = out.tables[table]
            for row in rows:
                ranges = writes.get(BLOCK_OWNER if idx is None else row[idx])
                if ranges and any(lo <= row[_HEIGHT] <= hi for lo, hi in ranges):
                    keep.append(row)
        return out

    def owners(self) -> set[str]:
        found = {BLOCK_OWNER} if self.tables["blocks"] else set()
        for table, rows in self.tables.items():
            idx = _OWNER_INDEX[table]
            if idx is not None:
                found.update(row[idx] for row in rows)
        return found

    def clear(self) -> None:
        for rows in self.tables.values():
            rows.clear()
