"""Simulation settings and incident specs, validated once before generating."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# The first five ids and their order are those of the mainnet protocol-80 RPC fixture (block
# 169553183, whose chunk list was truncated to five); the remaining four are filled in.
DEFAULT_SHARD_IDS: tuple[int, ...] = (10, 11, 8, 7, 5, 0, 1, 2, 6)
PGAS = 10**15
TGAS = 10**12


class SimulateError(ValueError):
    """A simulate option is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class SolverCollapse:
    """From block offset ``offset`` on (until ``end``, inclusive, if set: then it recovers),
    ``solver`` succeeds with probability ``success_rate``."""

    solver: str  # account id, or a 1-based index into the solver list
    offset: int
    success_rate: float = 0.1
    end: int | None = None

    @classmethod
    def parse(cls, spec: str) -> "SolverCollapse":
        m = re.fullmatch(r"\s*([^@\s]+)@(\d+)(?:-(\d+))?(?::([0-9.]+))?\s*", spec)
        if not m:
            raise SimulateError(f"--incident-solver-collapse {spec!r}: expected SOLVER@OFFSET[-END][:SUCCESS_RATE]")
        rate = float(m[4]) if m[4] is not None else 0.1
        if not 0 <= rate <= 1:
            raise SimulateError(f"--incident-solver-collapse {spec!r}: SUCCESS_RATE must be within 0..1")
        end = int(m[3]) if m[3] is not None else None
        if end is not None and end < int(m[2]):
            raise SimulateError(f"--incident-solver-collapse {spec!r}: END must not be before OFFSET")
        return cls(m[1], int(m[2]), rate, end)

    def active_at(self, offset: int) -> bool:
        return offset >= self.offset and (self.end is None or offset <= self.end)


@dataclass(frozen=True)
class Window:
    """Block offsets ``start..end`` (inclusive), with a multiplier for gas spikes."""

    start: int
    end: int
    factor: float = 1.0

    @classmethod
    def parse(cls, spec: str, option: str, with_factor: bool = False) -> "Window":
        pattern = r"\s*(\d+):(\d+)(?:[x*]([0-9.]+))?\s*" if with_factor else r"\s*(\d+):(\d+)\s*"
        m = re.fullmatch(pattern, spec)
        if not m:
            form = "FROM:TO[xFACTOR]" if with_factor else "FROM:TO"
            raise SimulateError(f"{option} {spec!r}: expected {form} (block offsets from --start-height)")
        start, end = int(m[1]), int(m[2])
        if end < start:
            raise SimulateError(f"{option} {spec!r}: TO must not be before FROM")
        if not with_factor:
            factor = 1.0
        else:
            factor = float(m[3]) if m[3] else 6.0
        return cls(start, end, factor)

    def __contains__(self, offset: int) -> bool:
        return self.start <= offset <= self.end


@dataclass(frozen=True)
class SimConfig:
    out: Path
    blocks: int = 1000
    seed: int = 0
    start_height: int = 175_000_000
    start_time: str = "2026-01-05T00:00:00Z"
    block_time: float = 0.6
    skip_rate: float = 0.015
    missing_chunk_rate: float = 0.002
    shard_ids: tuple[int, ...] = DEFAULT_SHARD_IDS
    protocol_version: int = 83
    # intents.near
    verifier_account: str = "intents.near"
    solvers: int = 8
    unlisted_solvers: int = 1
    intents_per_block: float = 2.0
    failure_rate: float = 0.03
    replay_rate: float = 0.0  # executed relayer batches sent again later: "nonce was already used"
    retry_rate: float = 0.0  # failed relayer batches sent again later, and then executed
    # withdrawals whose token transfer fails: the resolve callback mints the tokens back ("refund")
    withdraw_refund_rate: float = 0.0
    # withdrawals whose *_resolve_withdraw callback itself fails (out of gas, or a panic)
    withdraw_fail_rate: float = 0.0
    # workshop
    workshop_verifier: str = "verifier.workshop.near"
    workshop_solvers: int = 3
    workshop_intents_per_block: float = 0.4
    expiry_rate: float = 0.02
    max_latency_blocks: int = 6
    # size and layout
    tracked_shard_fraction: float = 0.35
    noise_bytes_per_block: int = 180_000
    malformed_rate: float = 0.0
    # incidents
    solver_collapses: tuple[SolverCollapse, ...] = ()
    gas_spikes: tuple[Window, ...] = ()
    verifier_pauses: tuple[Window, ...] = ()
    truth_details: bool = True
    start_ns: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.blocks < 2:
            raise SimulateError("--blocks must be at least 2")
        if self.start_height < 1:
            raise SimulateError("--start-height must be positive")
        if not 5 <= self.solvers <= 40:
            raise SimulateError("--solvers must be within 5..40")
        if not 0 <= self.unlisted_solvers < self.solvers:
            raise SimulateError("--unlisted-solvers must be within 0..solvers-1")
        if not 0 <= self.workshop_solvers <= 40:
            raise SimulateError("--workshop-solvers must be within 0..40")
        for name in ("failure_rate", "expiry_rate", "skip_rate", "missing_chunk_rate", "tracked_shard_fraction",
                     "malformed_rate", "replay_rate", "retry_rate", "withdraw_refund_rate",
                     "withdraw_fail_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise SimulateError(f"--{name.replace('_', '-')} must be within 0..1")
        if self.skip_rate > 0.5:
            raise SimulateError("--skip-rate above 0.5 is not a chain")
        for name in ("intents_per_block", "workshop_intents_per_block"):
            if not 0 <= getattr(self, name) <= 200:
                raise SimulateError(f"--{name.replace('_', '-')} must be within 0..200")
        if self.block_time <= 0:
            raise SimulateError("--block-time must be positive")
        if not self.shard_ids or len(set(self.shard_ids)) != len(self.shard_ids):
            raise SimulateError("--shard-ids must be distinct shard ids")
        if self.protocol_version < 83:
            raise SimulateError("--protocol-version must be >= 83 (1 PGas per-call gas limit)")
        if not 1 <= self.max_latency_blocks <= 50:
            raise SimulateError("--max-latency-blocks must be within 1..50")
        if self.noise_bytes_per_block < 0:
            raise SimulateError("--noise-bytes-per-block must not be negative")
        for w in (*self.gas_spikes, *self.verifier_pauses):
            if w.start >= self.blocks:
                raise SimulateError(f"incident window {w.start}:{w.end} starts after the last block offset "
                                    f"{self.blocks - 1}")
        for c in self.solver_collapses:
            if c.offset >= self.blocks:
                raise SimulateError(f"solver collapse at offset {c.offset} is after the last block offset "
                                    f"{self.blocks - 1}")
        object.__setattr__(self, "start_ns", parse_time_ns(self.start_time))

    @property
    def drain_blocks(self) -> int:
        """Quiet tail: no new flows start here, so every flow ends inside the range."""
        return self.max_latency_blocks + 8

    def generator_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("start_ns")
        d.pop("out")  # where the lake goes does not change a byte of it
        d["shard_ids"] = list(self.shard_ids)
        d["solver_collapses"] = [f"{c.solver}@{c.offset}{'' if c.end is None else f'-{c.end}'}:{c.success_rate}"
                                 for c in self.solver_collapses]
        d["gas_spikes"] = [f"{w.start}:{w.end}x{w.factor}" for w in self.gas_spikes]
        d["verifier_pauses"] = [f"{w.start}:{w.end}" for w in self.verifier_pauses]
        return d


def parse_time_ns(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SimulateError(f"--start-time {text!r}: expected ISO 8601, e.g. 2026-01-05T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)  # exact integer arithmetic, no float seconds
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def iso_ms(ns: int) -> str:
    """``2026-01-05T00:02:17.446Z``, the deadline format of NEP-413 intent messages."""
    secs, rem = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1_000_000:03d}Z"
