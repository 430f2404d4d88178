"""NeardataSource against a real aiohttp server on 127.0.0.1 that speaks neardata's v0 API.

The server serves the real mainnet fixture blocks, renumbered, in neardata's format: the whole
StreamerMessage per height, ``null`` for skipped heights, a 302 from ``/v0/last_block/final``,
old heights redirected to an "archive" path, and 404 BLOCK_DOES_NOT_EXIST far past the head.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from aiohttp import web

from fakeclock import FakeClock, waiting_lines
from indexer import metrics
from indexer.config import load_settings
from indexer.sources.base import RawBlock, SourceError
from indexer.sources.neardata import NeardataSource, split_message

try:
    from tests.s3server import block_files, closed_port, fixture_blocks
except ImportError:  # pytest run without the repository root on sys.path
    from s3server import block_files, closed_port, fixture_blocks

GENESIS = 900
ARCHIVE_END = 1001  # heights below it live on the "archive" (a redirect, as on the real service)
HEIGHTS = [1000, 1002, 1003, 1007]  # gaps: 1001, 1004-1006 are skipped heights
FILES = [block_files(folder) for _, folder in fixture_blocks()]


def parts(files: dict[str, bytes]) -> tuple[bytes, list[bytes]]:
    ids = sorted(int(n.removeprefix("shard_").removesuffix(".json")) for n in files if n.startswith("shard_"))
    return files["block.json"], [files[f"shard_{i}.json"] for i in ids]


def message(files: dict[str, bytes]) -> bytes:
    block, shards = parts(files)
    return b'{"block":' + block + b',"shards":[' + b",".join(shards) + b"]}"


class Neardata:
    """State and handlers of the local neardata server."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, bytes]] = dict(zip(HEIGHTS, FILES, strict=True))
        self.head = HEIGHTS[-1]
        self.failures: dict[int, list[int]] = {}  # height -> statuses to answer before the block
        self.hits: Counter[str] = Counter()
        self.asked_past_head: list[int] = []

    def add(self, height: int, files: dict[str, bytes]) -> None:
        self.blocks[height] = files
        self.head = height

    async def block(self, request: web.Request) -> web.StreamResponse:
        height = int(request.match_info["height"])
        archive = request.path.startswith("/archive/")
        self.hits["archive" if archive else "block"] += 1
        if height < GENESIS:
            return web.json_response({"error": "Block height is before the genesis", "type": "BLOCK_HEIGHT_TOO_LOW"}, status=404)
        if not archive and height < ARCHIVE_END:
            raise web.HTTPFound(f"/archive/v0/block/{height}")
        if self.failures.get(height):
            status = self.failures[height].pop(0)
            return web.json_response("The block is not cached" if status >= 500 else "Too Many Requests", status=status)
        if height > self.head:
            self.asked_past_head.append(height)
            if height > self.head + 10:
                return web.json_response(
                    {"error": "The block is too far in the future", "type": "BLOCK_DOES_NOT_EXIST"}, status=404
                )
            while height > self.head:  # the real server holds the request until the block exists
                await asyncio.sleep(0.05)
        files = self.blocks.get(height)
        body = message(files) if files is not None else b"null"
        return web.Response(body=body, content_type="application/json")

    async def last_final(self, request: web.Request) -> web.StreamResponse:
        self.hits["last_block"] += 1
        raise web.HTTPFound(f"/v0/block/{self.head}")


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Neardata]]:
    state = Neardata()
    app = web.Application()
    app.router.add_get("/v0/block/{height:\\d+}", state.block)
    app.router.add_get("/archive/v0/block/{height:\\d+}", state.block)
    app.router.add_get("/v0/last_block/final", state.last_final)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", state
    finally:
        await runner.cleanup()


def make_source(base: str, **overrides: Any) -> NeardataSource:
    options: dict[str, Any] = dict(
        source="neardata",
        neardata_url=base,
        prefetch=4,
        shard_retry_limit=3,
        retry_base_delay=0.05,
        retry_max_delay=0.2,
        poll_interval=0.1,
    )
    options.update(overrides)
    return NeardataSource(load_settings(**options))


def expected(height: int, files: dict[str, bytes]) -> RawBlock:
    block, shards = parts(files)
    return RawBlock(height=height, block=block, shards=shards)


def counter(name: str, reason: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {"source": "neardata", "reason": reason}) or 0.0


async def collect(source: NeardataSource, start: int, end: int | None) -> list[RawBlock]:
    return [b async for b in source.blocks(start, end)]


async def test_blocks_in_order_with_gaps_and_identical_bytes(server: tuple[str, Neardata]) -> None:
    base, state = server
    async with make_source(base) as source:
        got = await collect(source, HEIGHTS[0], HEIGHTS[-1])
    assert [b.height for b in got] == HEIGHTS
    for b, files in zip(got, FILES, strict=True):
        assert b == expected(b.height, files)
    assert state.hits["archive"] == 1  # the old height followed its redirect
    assert state.asked_past_head == []


async def test_end_past_the_head_stops_at_the_head(server: tuple[str, Neardata]) -> None:
    base, state = server
    async with make_source(base) as source:
        got = await collect(source, 1003, 5000)
    assert [b.height for b in got] == [1003, 1007]
    assert state.asked_past_head == []


async def test_final_head_reads_the_redirect_not_the_block(server: tuple[str, Neardata]) -> None:
    base, state = server
    async with make_source(base) as source:
        assert await source.final_head() == HEIGHTS[-1]
    assert state.hits["last_block"] == 1 and state.hits["block"] == 0


async def test_transient_errors_are_retried_and_counted(server: tuple[str, Neardata]) -> None:
    base, state = server
    state.failures[1002] = [500, 429]
    server_errors = counter("near_intents_source_retries_total", "server_error")
    throttled = counter("near_intents_source_retries_total", "throttled")
    async with make_source(base) as source:
        got = await collect(source, 1002, 1002)
    assert got == [expected(1002, FILES[1])]
    assert counter("near_intents_source_retries_total", "server_error") - server_errors == 1
    assert counter("near_intents_source_retries_total", "throttled") - throttled == 1


async def test_persistent_errors_fail_after_bounded_retries(server: tuple[str, Neardata]) -> None:
    base, state = server
    state.failures[1003] = [500] * 100
    clock = FakeClock()
    async with make_source(base, shard_retry_limit=3) as source:
        with pytest.raises(SourceError) as err:
            await collect(clock.drive(source), 1003, 1003)
    assert f"GET {base}/v0/block/1003 failed after 4 attempt(s)" in str(err.value)
    assert "server_error" in str(err.value)
    assert 100 - len(state.failures[1003]) == 4
    assert clock.slept == [0.05, 0.1, 0.2]  # backed off, and gave up


async def test_waiting_for_a_block_is_logged(server: tuple[str, Neardata]) -> None:
    """With wait_log_interval 0 every retry says what it waits for."""
    base, state = server
    state.failures[1002] = [500, 500, 429]
    clock = FakeClock()
    with structlog.testing.capture_logs() as captured:
        async with make_source(base, shard_retry_limit=8, wait_log_interval=0) as source:
            got = await collect(clock.drive(source), 1002, 1002)
    assert got == [expected(1002, FILES[1])]
    lines = waiting_lines(captured)
    assert [(e["attempt"], e["reason"], e["next_try_s"]) for e in lines] == [
        (1, "server_error", 0.05), (2, "server_error", 0.1), (3, "throttled", 0.2)]
    for e in lines:
        assert (e["source"], e["awaited"], e["block_height"], e["tries"]) == ("neardata", "block 1002", 1002, 9)
        assert e["url"] == f"{base}/v0/block/1002"
    assert lines[0]["event"] == ("waiting for block 1002 from the neardata source: try 1 of 9 failed (server_error), "
                                 "next try in 0.05 s")


async def test_height_before_genesis_is_not_retried(server: tuple[str, Neardata]) -> None:
    base, state = server
    async with make_source(base) as source:
        with pytest.raises(SourceError, match="BLOCK_HEIGHT_TOO_LOW.*--network"):
            await collect(source, 800, 800)
    assert state.hits["block"] == 1


async def test_following_waits_for_new_blocks_without_hammering(server: tuple[str, Neardata]) -> None:
    base, state = server
    clock = FakeClock()
    clock.on_sleep(3, lambda: state.add(1009, FILES[0]))  # 1008 stays a skipped height
    clock.on_sleep(4, lambda: asyncio.Event().wait())  # then the head stays put until the stream is closed

    async with make_source(base) as source:
        stream = clock.drive(source).blocks(1003, None)
        got = [await asyncio.wait_for(anext(stream), 60) for _ in range(3)]
        await stream.aclose()
    assert [b.height for b in got] == [1003, 1007, 1009]
    assert got[2] == expected(1009, FILES[0])
    assert state.asked_past_head == []
    # At the head every look at last_block/final that finds nothing new is followed by a
    # poll_interval pause. Looks: the first, three empty ones, the one that found 1009, and
    # perhaps the look for 1010 (paused after, or still under way when the stream closed).
    assert clock.slept[:3] == [0.1] * 3 and clock.slept[3:] in ([], [0.1])
    assert state.hits["last_block"] <= 3 + len(clock.slept)


async def test_unreachable_host_error_says_what_to_do() -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    before = counter("near_intents_source_retries_total", "connection")
    clock = FakeClock()
    with structlog.testing.capture_logs() as captured:
        async with make_source(base, shard_retry_limit=2) as source:
            with pytest.raises(SourceError) as err:
                await collect(clock.drive(source), 1000, 1001)
    message = str(err.value)
    assert message.startswith(f"neardata source: cannot reach {base}/v0/last_block/final: ")
    assert message.endswith("check network access or use --source lake/files:PATH")
    assert counter("near_intents_source_retries_total", "connection") - before == 2
    # Offline, the operator is told at once what is awaited, and again only after wait_log_interval.
    (line,) = waiting_lines(captured)
    assert (line["awaited"], line["reason"], line["attempt"], line["tries"]) == ("the final head", "connection", 1, 3)


def test_split_message_keeps_exact_bytes() -> None:
    block, shards = parts(FILES[3])
    assert split_message(message(FILES[3])) == (block, shards)
    assert split_message(b"null") is None
    assert split_message(b' {"block": {"a": 1},\n "shards": [ {"b": [2]} ]} ') == (b'{"a": 1}', [b'{"b": [2]}'])
