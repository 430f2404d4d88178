"""The machinery every source shares: backoff delays and the notice of a wait."""

from __future__ import annotations

import structlog

from fakeclock import FakeClock
from indexer.config import load_settings
from indexer.sources.base import WaitNotice, backoff_delays


def test_backoff_doubles_up_to_the_longest_delay_for_any_retry_limit() -> None:
    settings = load_settings(retry_base_delay=0.2, retry_max_delay=1.0, shard_retry_limit=5)
    assert backoff_delays(settings) == [0.2, 0.4, 0.8, 1.0, 1.0]
    many = backoff_delays(load_settings(retry_base_delay=5, retry_max_delay=5, shard_retry_limit=5000))
    assert len(many) == 5000 and set(many) == {5.0}  # 5 * 2**1024 would overflow a float
    assert backoff_delays(load_settings(shard_retry_limit=0)) == []


def test_wait_notice_on_the_first_retry_then_once_per_interval() -> None:
    clock = FakeClock()
    with structlog.testing.capture_logs() as captured:
        notice = WaitNotice(structlog.get_logger("t").bind(source="lake"), "lake", "block 7 shard 3", 6, 10.0,
                            clock.time, block_height=7, shard_id=3)
        for attempt, delay in enumerate([1, 2, 4, 8, 8], 1):
            notice.retry(attempt, delay, "missing_shard")
            clock.now += delay
    # retries at t=0, 1, 3, 7, 15: lines at 0 and 15
    assert [(e["attempt"], e["next_try_s"]) for e in captured] == [(1, 1), (5, 8)]
    assert captured[0] == {
        "event": "waiting for block 7 shard 3 from the lake source: try 1 of 6 failed (missing_shard), next try in 1 s",
        "log_level": "info", "source": "lake", "awaited": "block 7 shard 3", "attempt": 1, "tries": 6,
        "next_try_s": 1, "reason": "missing_shard", "block_height": 7, "shard_id": 3,
    }


def test_wait_notice_with_interval_zero_says_every_retry() -> None:
    clock = FakeClock()
    with structlog.testing.capture_logs() as captured:
        notice = WaitNotice(structlog.get_logger("t"), "files", "block 7", 4, 0.0, clock.time)
        for attempt in (1, 2, 3):
            notice.retry(attempt, 0.5, "incomplete_block")
    assert [e["attempt"] for e in captured] == [1, 2, 3]
