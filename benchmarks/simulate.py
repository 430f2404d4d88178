"""Speed of ``intents-indexer simulate``: blocks/s and MB/s for a 10,000-height lake.

    python benchmarks/simulate.py [--blocks 10000] [--out DIR] [--keep] [simulate options as key=value]

Runs the generator twice with the same options: once building every file without writing it
(generation cost alone), once writing the lake (to a fresh folder under /dev/shm when it has room,
else the system temp folder, or --out). Prints wall time, CPU (user/sys), blocks/s and MB/s for
each. On a disk shared with other jobs the writing run is bound by file creation, not by Python.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.simulate import SimConfig, generate  # noqa: E402


def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def _scratch(need_bytes: int) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir():
        st = os.statvfs(shm)
        if st.f_bavail * st.f_frsize > 2 * need_bytes:
            return Path(tempfile.mkdtemp(prefix="simulate-bench-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="simulate-bench-"))


def _run(cfg: SimConfig, dry_run: bool) -> dict[str, float]:
    u0, s0 = _cpu()
    t0 = time.perf_counter()
    stats = generate(cfg, force=True, dry_run=dry_run)
    wall = time.perf_counter() - t0
    u1, s1 = _cpu()
    return {"blocks": stats.blocks, "mb": stats.bytes / 1e6, "wall": wall, "user": u1 - u0, "sys": s1 - s0,
            "blocks_s": stats.blocks / wall, "mb_s": stats.bytes / 1e6 / wall, "sizes": stats.size_quantiles()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=10_000)
    ap.add_argument("--out", type=Path, help="where to write the lake (default: a fresh scratch folder)")
    ap.add_argument("--keep", action="store_true", help="keep the written lake")
    ap.add_argument("option", nargs="*", help="other SimConfig fields, e.g. noise_bytes_per_block=500000")
    args = ap.parse_args()
    extra: dict[str, object] = {}
    for item in args.option:
        key, _, value = item.partition("=")
        default = SimConfig.__dataclass_fields__[key].default
        extra[key] = type(default)(value) if not isinstance(default, tuple) else value
    out = args.out or _scratch(args.blocks * 400_000)
    cfg = SimConfig(out=out, blocks=args.blocks, truth_details=True, **extra)
    print(f"simulate benchmark: {args.blocks} heights, noise {cfg.noise_bytes_per_block} B/block, "
          f"{len(cfg.shard_ids)} shards, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    try:
        sizes = None
        for label, dry in (("generate only (no files)", True), (f"generate + write to {out}", False)):
            r = _run(cfg, dry)
            print(f"  {label}\n    {r['blocks']} blocks, {r['mb']:.1f} MB in {r['wall']:.1f} s: "
                  f"{r['blocks_s']:.0f} blocks/s, {r['mb_s']:.1f} MB/s "
                  f"(cpu user {r['user']:.1f} s, sys {r['sys']:.1f} s)")
            sizes = r["sizes"]
        assert sizes is not None
        print("  bytes per block: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
