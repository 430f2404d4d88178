"""Ties the parts together: chain plan -> per block: due receipts, new flows, mentions, noise -> files.

Randomness comes from separate ``random.Random`` streams keyed by the seed and a purpose (chain,
actors, verifier, workshop, layout, noise, writer), so changing the noise size or the shard
layout never changes which intents happen, and the same options always give identical bytes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from indexer.simulate.actors import People, apply_collapses, dip4_solvers, workshop_solvers
from indexer.simulate.chain import BlockPlan, HeaderFactory, plan_chain
from indexer.simulate.engine import BlockCtx, Engine, ShardBuf
from indexer.simulate.ids import Ids
from indexer.simulate.lake_writer import LakeWriter, prepare_out
from indexer.simulate.noise import NoiseFactory
from indexer.simulate.options import SimConfig
from indexer.simulate.truth import Truth
from indexer.simulate.verifier import VerifierTraffic
from indexer.simulate.workshop import WorkshopTraffic


@dataclass
class Stats:
    blocks: int
    files: int
    bytes: int
    seconds: float
    truth_path: Path
    block_sizes: list[int]

    def size_quantiles(self) -> dict[str, int]:
        """Bytes per block (block.json + shard files): min, median, p99, max."""
        s = sorted(self.block_sizes) or [0]
        return {"min": s[0], "p50": s[len(s) // 2], "p99": s[min(len(s) - 1, len(s) * 99 // 100)], "max": s[-1]}

    @property
    def blocks_per_s(self) -> float:
        return self.blocks / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


def generate(cfg: SimConfig, *, force: bool = False, dry_run: bool = False, writer_threads: int = 4,
             progress: Callable[[int, int], None] | None = None) -> Stats:
    """Write the lake and ``truth.json`` into ``cfg.out``; returns what was written.

    ``dry_run`` builds every file but writes only truth.json (``bytes`` then counts what would
    have been written)."""
    started = time.perf_counter()
    prepare_out(cfg.out, force)
    ids = Ids(cfg.seed)
    actors_rng = random.Random(f"{cfg.seed}:actors")
    dip4 = dip4_solvers(cfg, actors_rng)
    shop = workshop_solvers(cfg, actors_rng)
    incidents: list[dict[str, Any]] = apply_collapses(cfg, dip4 + shop)
    for w in cfg.gas_spikes:
        incidents.append({"kind": "gas_spike", "from_offset": w.start, "to_offset": w.end, "factor": w.factor,
                          "from_height": cfg.start_height + w.start, "to_height": cfg.start_height + w.end})
    for w in cfg.verifier_pauses:
        incidents.append({"kind": "verifier_pause", "from_offset": w.start, "to_offset": w.end,
                          "from_height": cfg.start_height + w.start, "to_height": cfg.start_height + w.end})
    people = People(cfg, ids, random.Random(f"{cfg.seed}:people"))

    contracts = [(cfg.verifier_account, "verifier")]
    if shop:
        contracts.append((cfg.workshop_verifier, "workshop-verifier"))
        contracts.extend((s.account, "workshop-solver") for s in shop)
    tracked = [a for a, _ in contracts]
    # tracked contracts live in fixed shards: intents.near in one, the workshop contracts in another
    layout = random.Random(f"{cfg.seed}:homes")
    intents_home = layout.choice(cfg.shard_ids)
    workshop_home = layout.choice(cfg.shard_ids)
    homes = {cfg.verifier_account: intents_home}
    homes.update({a: workshop_home for a in tracked[1:]})

    solvers = {cfg.verifier_account: [s.account for s in dip4]}
    if shop:
        solvers[cfg.workshop_verifier] = [s.account for s in shop]
    truth = Truth(contracts, [s.account for s in dip4 if s.listed], solvers, details=cfg.truth_details)
    engine = Engine(cfg, ids, truth, homes, frozenset({cfg.verifier_account, cfg.workshop_verifier}))
    verifier = VerifierTraffic(cfg, ids, engine, people, dip4)
    workshop = WorkshopTraffic(cfg, ids, engine, people, shop)
    noise = NoiseFactory(cfg, ids, tracked)
    headers = HeaderFactory(cfg, ids)
    writer = LakeWriter(cfg.out, cfg.seed, threads=writer_threads, dry_run=dry_run)

    plans = plan_chain(cfg, ids)
    loop = _BlockLoop(cfg, engine, verifier, workshop, noise, headers, writer, tracked)
    try:
        for plan in plans:
            loop.block(plan)
            if progress is not None:
                progress(plan.offset + 1, cfg.blocks)
    finally:
        writer.close()
    shard_files, mentioning = loop.shard_files, loop.mentioning
    written = [p for p in plans if p.exists]
    truth.unfinished_receipts = sum(len(v) for v in engine.pending.values())
    first, last = written[0], written[-1]
    blocks = {
        "first_height": first.height,
        "last_height": last.height,
        "heights": cfg.blocks,
        "count": len(written),
        "skipped_heights": [p.height for p in plans if not p.exists],
        "missing_chunks": [[p.height, s] for p in written for s in cfg.shard_ids if s in p.missing_shards],
        "shard_ids": list(cfg.shard_ids),
        "protocol_version": cfg.protocol_version,
        "first_timestamp_ns": first.timestamp_ns,
        "last_timestamp_ns": last.timestamp_ns,
        "first_hash": first.hash,
        "last_hash": last.hash,
        "first_prev_hash": first.prev_hash,
        "first_prev_height": first.prev_height,
        "shard_files": shard_files,
        "shard_files_mentioning_tracked": mentioning,
        "home_shards": homes,
    }
    doc = truth.to_dict(cfg.generator_dict(), blocks, incidents)
    truth_path = cfg.out / "truth.json"
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    truth_path.write_bytes(data)
    return Stats(len(written), writer.files_written + 1, writer.bytes_written + len(data),
                 time.perf_counter() - started, truth_path, writer.block_sizes)


class _BlockLoop:
    """One block at a time: due receipts, new flows, mentions, noise, headers, files."""

    def __init__(self, cfg: SimConfig, engine: Engine, verifier: VerifierTraffic, workshop: WorkshopTraffic,
                 noise: NoiseFactory, headers: HeaderFactory, writer: LakeWriter, tracked: list[str]):
        self.cfg, self.engine, self.verifier, self.workshop = cfg, engine, verifier, workshop
        self.noise, self.headers, self.writer, self.tracked = noise, headers, writer, tracked
        self.quiet_from = cfg.blocks - cfg.drain_blocks
        self.shard_files = 0
        self.mentioning = 0

    def block(self, plan: BlockPlan) -> None:
        cfg, engine = self.cfg, self.engine
        if not plan.exists:
            engine.carry(plan.offset, engine.pending.pop(plan.offset, []))
            return
        visible = engine.visible_shards(plan)
        shards = {sid: ShardBuf(sid) for sid in cfg.shard_ids}
        ctx = BlockCtx(engine, plan, visible, shards)
        engine.run_pending(ctx)
        if plan.offset < self.quiet_from and not engine.paused(plan.offset):
            self.verifier.start(ctx)
            self.workshop.start(ctx)
        for i, sid in enumerate(visible):
            if not shards[sid].mentions:
                self.noise.add_mention(ctx, shards[sid], self.tracked[(plan.height + i) % len(self.tracked)])
        self.noise.fill(ctx, [s for s in cfg.shard_ids if s not in plan.missing_shards])

        chunk_headers = []
        files: list[tuple[int, bytes]] = []
        for sid in cfg.shard_ids:
            buf = shards[sid]
            header = self.headers.chunk_header(plan, sid, buf.gas_used, buf.tokens_burnt,
                                               self.writer.content_size(buf) // 3 + 300, bool(buf.txs or buf.flow_txs))
            chunk_headers.append(header)
            missing = sid in plan.missing_shards
            files.append((sid, self.writer.shard_json(buf, self.headers.chunk_author(plan, sid),
                                                      None if missing else header)))
            self.shard_files += 1
            self.mentioning += buf.mentions
        self.writer.write(plan.height, self.headers.block(plan, chunk_headers), files)
