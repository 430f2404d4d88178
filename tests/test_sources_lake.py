"""LakeSource against a real S3 server (moto, server mode, 127.0.0.1) holding real mainnet blocks."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import structlog

from fakeclock import FakeClock, waiting_lines
from indexer import metrics
from indexer.config import load_settings
from indexer.sources.base import RawBlock, SourceError
from indexer.sources.lake import LakeSource

try:
    from tests.s3server import (
        block_files,
        closed_port,
        create_bucket,
        fixture_blocks,
        moto_thread,
        s3_client,
        upload_block,
    )
except ImportError:  # pytest run without the repository root on sys.path
    from s3server import block_files, closed_port, create_bucket, fixture_blocks, moto_thread, s3_client, upload_block

BLOCKS = fixture_blocks()
HEIGHTS = [h for h, _ in BLOCKS]
FILES = {h: block_files(folder) for h, folder in BLOCKS}
_bucket_ids = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Any:
    with moto_thread() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254 for credentials
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def s3(endpoint: str) -> Any:
    return s3_client(endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"near-lake-test-{next(_bucket_ids)}"
    create_bucket(s3, name)
    return name


@pytest.fixture
def full_bucket(s3: Any, bucket: str) -> str:
    for h in HEIGHTS:
        upload_block(s3, bucket, h, FILES[h])
    return bucket


def make_source(endpoint: str, bucket: str, *, page_size: int = 1000, **overrides: Any) -> LakeSource:
    options: dict[str, Any] = dict(
        source="lake",
        lake_endpoint=endpoint,
        lake_bucket=bucket,
        prefetch=4,
        shard_retry_limit=3,
        retry_base_delay=0.05,
        retry_max_delay=0.2,
        poll_interval=0.1,
    )
    options.update(overrides)
    return LakeSource(load_settings(**options), page_size=page_size)


def expected(height: int) -> RawBlock:
    files = FILES[height]
    ids = sorted(int(n.removeprefix("shard_").removesuffix(".json")) for n in files if n.startswith("shard_"))
    return RawBlock(height=height, block=files["block.json"], shards=[files[f"shard_{i}.json"] for i in ids])


def counter(name: str, source: str, reason: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {"source": source, "reason": reason}) or 0.0


async def collect(source: LakeSource, start: int, end: int | None) -> list[RawBlock]:
    return [b async for b in source.blocks(start, end)]


@pytest.mark.parametrize("page_size", [1000, 1])
async def test_blocks_in_order_with_gaps_and_identical_bytes(endpoint: str, full_bucket: str, page_size: int) -> None:
    async with make_source(endpoint, full_bucket, page_size=page_size) as source:
        got = await collect(source, HEIGHTS[0], HEIGHTS[-1])
    assert [b.height for b in got] == HEIGHTS
    for b in got:
        assert b == expected(b.height)


async def test_range_bounds_are_inclusive_and_skipped_heights_absent(endpoint: str, full_bucket: str) -> None:
    async with make_source(endpoint, full_bucket) as source:
        middle = await collect(source, HEIGHTS[1], HEIGHTS[2])
        from_gap = await collect(source, HEIGHTS[0] + 1, HEIGHTS[1] + 5)
        past_head = await collect(source, HEIGHTS[-1] + 1, HEIGHTS[-1] + 100)
    assert [b.height for b in middle] == HEIGHTS[1:3]
    assert [b.height for b in from_gap] == [HEIGHTS[1]]
    assert past_head == []


async def test_every_request_says_requester_pays(endpoint: str, full_bucket: str) -> None:
    seen: list[tuple[str, str | None]] = []

    def record(request: Any, **_: Any) -> None:
        payer = request.headers.get("x-amz-request-payer")
        seen.append((request.url, payer.decode() if isinstance(payer, bytes) else payer))

    async with make_source(endpoint, full_bucket) as source:
        client = await source._client()
        client.meta.events.register("before-send.s3", record)
        await collect(source, HEIGHTS[0], HEIGHTS[-1])
        await source.final_head()
    assert len(seen) >= 1 + sum(len(f) for f in FILES.values())  # a LIST and every object
    assert {payer for _, payer in seen} == {"requester"}


async def test_late_shard_is_retried_then_delivered_and_the_wait_logged(endpoint: str, s3: Any, bucket: str) -> None:
    height = HEIGHTS[0]
    upload_block(s3, bucket, height, FILES[height], skip=["shard_2.json"])
    before = counter("near_intents_source_retries_total", "lake", "missing_shard")
    clock = FakeClock()
    # The uploader puts the shard while the source sleeps before its third try.
    clock.on_sleep(2, lambda: asyncio.to_thread(
        s3.put_object, Bucket=bucket, Key=f"{height:012d}/shard_2.json", Body=FILES[height]["shard_2.json"]))
    with structlog.testing.capture_logs() as captured:
        async with make_source(endpoint, bucket, shard_retry_limit=8, retry_max_delay=0.4) as source:
            got = await collect(clock.drive(source), height, height)
    assert got == [expected(height)]
    assert counter("near_intents_source_retries_total", "lake", "missing_shard") - before == 2
    assert clock.slept == [0.05, 0.1]
    (line,) = waiting_lines(captured)  # the second retry is within wait_log_interval of the first
    assert line["event"] == (f"waiting for block {height} shard 2 from the lake source: try 1 of 9 failed "
                             "(missing_shard), next try in 0.05 s")
    assert (line["source"], line["block_height"], line["shard_id"], line["attempt"], line["tries"]) == (
        "lake", height, 2, 1, 9)
    assert line["key"] == f"{height:012d}/shard_2.json" and line["next_try_s"] == 0.05


async def test_a_long_wait_is_logged_every_interval(endpoint: str, s3: Any, bucket: str) -> None:
    height = HEIGHTS[1]
    upload_block(s3, bucket, height, FILES[height], skip=["block.json"])
    clock = FakeClock()
    with structlog.testing.capture_logs() as captured:
        async with make_source(endpoint, bucket, shard_retry_limit=6, retry_base_delay=1, retry_max_delay=4,
                               wait_log_interval=5) as source:
            with pytest.raises(SourceError):
                await clock.drive(source)._fetch(height)
    # retries at t=0, 1, 3, 7, 11, 15: lines at 0, 7 and 15
    lines = waiting_lines(captured)
    assert [(e["attempt"], e["next_try_s"]) for e in lines] == [(1, 1.0), (4, 4.0), (6, 4.0)]
    assert {(e["awaited"], e["reason"], e["tries"]) for e in lines} == {(f"block {height}", "missing_block", 7)}


async def test_shard_that_never_appears_fails_after_bounded_retries(endpoint: str, s3: Any, bucket: str) -> None:
    height = HEIGHTS[1]
    upload_block(s3, bucket, height, FILES[height], skip=["shard_3.json"])
    retries_before = counter("near_intents_source_retries_total", "lake", "missing_shard")
    errors_before = counter("near_intents_source_errors_total", "lake", "missing_shard")
    clock = FakeClock()
    async with make_source(endpoint, bucket, shard_retry_limit=3) as source:
        with pytest.raises(SourceError) as err:
            await collect(clock.drive(source), height, height)
    message = str(err.value)
    assert f"s3://{bucket}/{height:012d}/shard_3.json" in message
    assert endpoint in message and "missing_shard" in message and "--shard-retry-limit" in message
    assert counter("near_intents_source_retries_total", "lake", "missing_shard") - retries_before == 3
    assert counter("near_intents_source_errors_total", "lake", "missing_shard") - errors_before == 1
    assert clock.slept == [0.05, 0.1, 0.2]  # backed off, and gave up


async def test_final_head_cold_and_warm(endpoint: str, full_bucket: str) -> None:
    # page_size=1 forces the gallop-and-bisect path over a bucket with 22M-block gaps.
    async with make_source(endpoint, full_bucket, page_size=1) as source:
        assert await source.final_head() == HEIGHTS[-1]
        assert await source.final_head() == HEIGHTS[-1]
    async with make_source(endpoint, full_bucket) as source:
        assert await source.final_head() == HEIGHTS[-1]
        await collect(source, HEIGHTS[0], HEIGHTS[0])
        assert await source.final_head() == HEIGHTS[-1]


async def test_final_head_of_empty_bucket_says_what_to_check(endpoint: str, bucket: str) -> None:
    async with make_source(endpoint, bucket) as source:
        with pytest.raises(SourceError, match="holds no blocks.*--lake-bucket"):
            await source.final_head()


async def test_following_picks_up_a_block_uploaded_later(endpoint: str, s3: Any, full_bucket: str) -> None:
    new_height = HEIGHTS[-1] + 7  # a renumbered copy of a real block
    got: list[RawBlock] = []
    async with make_source(endpoint, full_bucket) as source:
        stream = source.blocks(HEIGHTS[-2], None)
        got.append(await asyncio.wait_for(anext(stream), 60))
        got.append(await asyncio.wait_for(anext(stream), 60))
        await asyncio.to_thread(upload_block, s3, full_bucket, new_height, FILES[HEIGHTS[0]])
        got.append(await asyncio.wait_for(anext(stream), 60))
        await stream.aclose()
    assert [b.height for b in got] == [HEIGHTS[-2], HEIGHTS[-1], new_height]
    assert got[2].block == FILES[HEIGHTS[0]]["block.json"]


async def test_unreachable_endpoint_names_it_and_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    before = counter("near_intents_source_retries_total", "lake", "connection")
    clock = FakeClock()
    with structlog.testing.capture_logs() as captured:
        async with make_source(dead, "near-lake-data-mainnet", shard_retry_limit=2) as source:
            with pytest.raises(SourceError) as err:
                await clock.drive(source).final_head()
    message = str(err.value)
    assert dead in message and "connection" in message and "--lake-endpoint" in message
    assert counter("near_intents_source_retries_total", "lake", "connection") - before == 2
    # Offline, the operator is told at once what is awaited.
    (line,) = waiting_lines(captured)
    assert line["awaited"] == "the list of blocks from 0" and line["reason"] == "connection"
    assert (line["attempt"], line["tries"]) == (1, 3)


async def test_missing_bucket_is_not_retried(endpoint: str) -> None:
    async with make_source(endpoint, "no-such-lake-bucket") as source:
        with pytest.raises(SourceError, match="NoSuchBucket.*--lake-bucket"):
            await source.final_head()


async def test_missing_credentials_are_explained(monkeypatch: pytest.MonkeyPatch, endpoint: str, tmp_path: Any) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    async with make_source(endpoint, "near-lake-data-mainnet") as source:
        with pytest.raises(SourceError, match="no_credentials.*AWS_ACCESS_KEY_ID"):
            await source.final_head()
