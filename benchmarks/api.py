"""API throughput and latency, and WebSocket push latency, on one machine.

    python benchmarks/api.py [--intents 20000] [--seconds 10] [--subscribers 1000] [--commits 10]

The API runs in a child process (the embedded store allows one process per path) with
--intents intents stored; this process is the load generator (aiohttp, real TCP on loopback):

1. cached lookups: GET /api/v1/intents/{hash} over 200 hot intents, 64 at a time, as fast as
   the server answers -> requests/s;
2. mixed lookups at a fixed 500 requests/s for --seconds (open loop: each request is sent at
   its planned time): by default 70 % cached hashes, 20 % hashes not looked up before (--fresh,
   from the store), 10 % list pages (--lists, from the store) -> p50/p99 latency;
3. --subscribers WebSocket clients subscribed to one intent; the child commits a change to it
   --commits times, at random moments, and prints when; each client notes when each push arrived
   -> p50/p99/max of (push - commit) over every push.

Rate limits are set out of the way. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

HOT = 200


def _serve(path: str, port: int, intents: int) -> None:
    """Child: fill a store, serve the API, then commit a change to intent 0 on each stdin line."""
    from apiserver import commit, insert_updates, update

    from indexer import logs
    from indexer.api.app import start
    from indexer.config import load_settings
    from indexer.store import migrations
    from indexer.store.client import Store

    logs.configure("json", "warning")
    store = Store(f"chdb://{path}")
    migrations.migrate(store)
    rows = [update(1000 + i, f"intent-{i}", "executed", signer=f"user{i % 500}.near", solver=f"solver{i % 7}.near",
                   kinds=["token_diff"], tokens=["nep141:wrap.near", "nep141:usdc.near"], amounts=["-5", "17"])
            for i in range(intents)]
    for i in range(0, len(rows), 10_000):
        insert_updates(store, rows[i:i + 10_000])
    commit(store, "bench", 1, ["intents.near"], 1000, 1000 + intents)
    settings = load_settings(api_port=port, api_read_limit="100000000/minute", api_local_cache_ttl=60)

    async def main() -> None:
        runner = await start(settings, store)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        height, seq = 1000 + intents, 1
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            height, seq = height + 1, seq + 1
            await asyncio.to_thread(insert_updates, store, [update(height, "intent-0", "failed",
                                                                   failure=f"change {seq}")])
            await asyncio.to_thread(commit, store, "bench", seq, ["intents.near"], height, height)
            print(json.dumps({"committed_at": time.time()}), flush=True)
        await runner.cleanup()

    asyncio.run(main())


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _cached(session, base: str, seconds: float) -> float:  # type: ignore[no-untyped-def]
    count, stop = 0, time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        rng = random.Random()
        while time.perf_counter() < stop:
            async with session.get(f"{base}/api/v1/intents/intent-{rng.randrange(HOT)}") as r:
                await r.read()
                assert r.status == 200, r.status
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(64)))
    return count / (time.perf_counter() - started)


async def _mixed(session, base: str, rate: float, seconds: float, intents: int, fresh_share: float,  # type: ignore[no-untyped-def]
                 list_share: float) -> list[float]:
    rng = random.Random(7)
    fresh = iter(rng.sample(range(HOT, intents), min(intents - HOT, int(rate * seconds))))
    latencies: list[float] = []

    async def one(url: str) -> None:
        t0 = time.perf_counter()
        async with session.get(url) as r:
            await r.read()
        latencies.append(time.perf_counter() - t0)

    tasks, start = [], time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        roll = rng.random()
        if roll >= fresh_share + list_share:
            url = f"{base}/api/v1/intents/intent-{rng.randrange(HOT)}"
        elif roll < fresh_share:
            url = f"{base}/api/v1/intents/intent-{next(fresh, rng.randrange(intents))}"
        else:
            url = f"{base}/api/v1/intents?limit=20&account=user{rng.randrange(500)}.near"
        tasks.append(asyncio.create_task(one(url)))
    await asyncio.gather(*tasks)
    return latencies


async def _ws(session, base: str, child: subprocess.Popen[str], subscribers: int, commits: int  # type: ignore[no-untyped-def]
              ) -> list[float]:
    sockets = []

    async def arrival(ws) -> float:  # type: ignore[no-untyped-def]
        # Reading from the start also answers the server's heartbeat pings.
        msg = await ws.receive_json(timeout=300)
        assert msg["type"] == "intent_update", msg
        return time.time()

    for _ in range(subscribers):
        ws = await session.ws_connect(base.replace("http", "ws") + "/api/v1/ws")
        await ws.send_json({"type": "subscribe", "intent_hash": "intent-0"})
        assert (await ws.receive_json())["type"] == "subscribed"
        await ws.receive_json()  # the current state
        sockets.append(ws)
    assert child.stdin is not None and child.stdout is not None
    rng, delays = random.Random(3), []
    for _ in range(commits):  # at random moments, so commits fall anywhere between two feed reads
        await asyncio.sleep(rng.uniform(0.2, 0.6))
        waits = [asyncio.create_task(arrival(ws)) for ws in sockets]
        child.stdin.write("commit\n")
        child.stdin.flush()
        committed = json.loads(await asyncio.to_thread(child.stdout.readline))["committed_at"]
        delays += [a - committed for a in await asyncio.gather(*waits)]
    for ws in sockets:
        await ws.close()
    return delays


async def _bench(base: str, child: subprocess.Popen[str], args: argparse.Namespace) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for i in range(HOT):  # warm the cache
            async with session.get(f"{base}/api/v1/intents/intent-{i}") as r:
                await r.read()
        rps = await _cached(session, base, args.seconds)
        print(f"cached lookups: {rps:,.0f} req/s (64 concurrent, {HOT} hot intents)")
        lat = await _mixed(session, base, 500, args.seconds, args.intents, args.fresh, args.lists)
        print(f"mixed lookups at 500 req/s for {args.seconds:g} s ({args.fresh:.0%} uncached hashes, "
              f"{args.lists:.0%} list pages): p50 {_pct(lat, .5) * 1e3:.1f} ms, "
              f"p99 {_pct(lat, .99) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms ({len(lat)} requests)")
        push = await _ws(session, base, child, args.subscribers, args.commits)
        print(f"websocket: {args.subscribers} subscribers x {args.commits} commits, commit -> push "
              f"p50 {_pct(push, .5) * 1e3:.0f} ms, "
              f"p99 {_pct(push, .99) * 1e3:.0f} ms, max {max(push) * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intents", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=10, help="commits pushed to the subscribers, one at a time")
    parser.add_argument("--fresh", type=float, default=0.2, help="share of lookups of intents not cached yet")
    parser.add_argument("--lists", type=float, default=0.1, help="share of list pages (uncached)")
    parser.add_argument("--serve", nargs=3, metavar=("PATH", "PORT", "INTENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))
        return
    from clitools import free_port

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(Path(tmp) / "store"), str(port),
                                  str(args.intents)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == "ready", line
            asyncio.run(_bench(f"http://127.0.0.1:{port}", child, args))
        finally:
            child.terminate()
            child.wait(timeout=60)


if __name__ == "__main__":
    main()
