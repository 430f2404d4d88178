"""A clock and sleep for sources, driven by the test instead of the wall clock.

``sleep`` returns at once (after yielding to the event loop) and moves the clock on by the
delay asked for, so retry and wait-log schedules play out exactly and instantly. ``on_sleep``
runs before the n-th sleep returns (1-based): a test makes a late file appear there.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._hooks: dict[int, Callable[[], Any]] = {}

    def time(self) -> float:
        return self.now

    def on_sleep(self, n: int, action: Callable[[], Any]) -> None:
        self._hooks[n] = action

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        self.now += delay
        hook = self._hooks.pop(len(self.slept), None)
        if hook is not None:
            result = hook()
            if inspect.isawaitable(result):
                await result
        await asyncio.sleep(0)

    def drive(self, source: Any) -> Any:
        """Make ``source`` use this clock for its retries and polls; returns the source."""
        source._clock = self.time
        source._sleep = self.sleep
        return source


def waiting_lines(captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The info lines in which a source says what it waits for."""
    return [e for e in captured if e["log_level"] == "info" and e["event"].startswith("waiting for ")]
