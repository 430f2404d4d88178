"""Writes ``<12-digit height>/block.json`` and ``shard_<id>.json`` exactly as NEAR Lake lays them out.

Shard files are assembled from pre-serialised fragments (noise templates, tracked outcomes) rather
than one big ``orjson.dumps``: the fragments already are JSON, so a join is all that is left.
Tracked fragments are interleaved with the noise at random positions, keeping their own order.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from indexer.simulate.engine import ShardBuf
from indexer.simulate.options import SimulateError


def block_dir_name(height: int) -> str:
    return f"{height:012d}"


def prepare_out(out: Path, force: bool) -> None:
    """Create ``out``; refuse to mix with an earlier lake unless ``force`` (then remove only what
    a simulation writes: block folders and truth.json)."""
    if out.exists() and not out.is_dir():
        raise SimulateError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    existing = [e for e in os.scandir(out) if e.is_dir() and len(e.name) == 12 and e.name.isdigit()]
    if (existing or (out / "truth.json").exists()) and not force:
        raise SimulateError(f"--out {out} already holds a lake ({len(existing)} block folders); "
                            "choose an empty folder or pass --force to replace it")
    for e in existing:
        shutil.rmtree(e.path)
    (out / "truth.json").unlink(missing_ok=True)


def _merge(noise: list[bytes], flow: list[bytes], rng: random.Random) -> list[bytes]:
    if not flow:
        return noise
    if not noise:
        return flow
    positions = sorted(rng.randrange(len(noise) + 1) for _ in flow)
    out: list[bytes] = []
    prev = 0
    for pos, item in zip(positions, flow):
        out.extend(noise[prev:pos])
        out.append(item)
        prev = pos
    out.extend(noise[prev:])
    return out


def _write_files(folder: Path, files: list[tuple[str, bytes]]) -> None:
    folder.mkdir()
    for name, data in files:
        with open(folder / name, "wb") as fh:
            fh.write(data)


class LakeWriter:
    """Files are written by a few threads: file creation and page-cache copies release the GIL,
    so writing overlaps generating. Contents are fixed before a write is queued, so the output does
    not depend on thread timing."""

    def __init__(self, out: Path, seed: int, threads: int = 4, dry_run: bool = False):
        self.out = out
        self.dry_run = dry_run  # build every file but write none (truth only, or to time generation)
        self.rng = random.Random(f"{seed}:writer")
        self.bytes_written = 0
        self.files_written = 0
        self.block_sizes: list[int] = []  # bytes per block across block.json and its shard files
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lake-writer") if threads else None
        self._inflight: deque[Future[None]] = deque()
        self._max_inflight = 8 * max(1, threads)

    def shard_json(self, buf: ShardBuf, author: str, header: dict[str, Any] | None) -> bytes:
        sid = str(buf.shard_id).encode()
        if header is None:  # the block misses this shard's chunk
            return b'{"chunk":null,"receipt_execution_outcomes":[],"shard_id":' + sid + b',"state_changes":[]}'
        rng = self.rng
        return b"".join((
            b'{"chunk":{"author":', orjson.dumps(author), b',"header":', orjson.dumps(header),
            b',"receipts":[', b",".join(_merge(buf.receipts, buf.flow_receipts, rng)),
            b'],"transactions":[', b",".join(_merge(buf.txs, buf.flow_txs, rng)),
            b']},"receipt_execution_outcomes":[', b",".join(_merge(buf.outcomes, buf.flow_outcomes, rng)),
            b'],"shard_id":', sid,
            b',"state_changes":[', b",".join(_merge(buf.state_changes, buf.flow_state_changes, rng)), b"]}",
        ))

    @staticmethod
    def content_size(buf: ShardBuf) -> int:
        return sum(len(b) for lst in (buf.receipts, buf.flow_receipts, buf.txs, buf.flow_txs) for b in lst)

    def write(self, height: int, block: dict[str, Any], shards: list[tuple[int, bytes]]) -> int:
        files = [("block.json", orjson.dumps(block))] + [(f"shard_{sid}.json", data) for sid, data in shards]
        folder = self.out / block_dir_name(height)
        if self.dry_run:
            pass
        elif self._pool is None:
            _write_files(folder, files)
        else:
            while len(self._inflight) >= self._max_inflight:
                self._inflight.popleft().result()  # bounded memory; re-raises a write error
            self._inflight.append(self._pool.submit(_write_files, folder, files))
        size = sum(len(data) for _, data in files)
        self.block_sizes.append(size)
        self.bytes_written += size
        self.files_written += len(files)
        return size

    def close(self) -> None:
        """Wait for every queued file; raises the first write error."""
        try:
            while self._inflight:
                self._inflight.popleft().result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
