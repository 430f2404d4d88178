"""Decoder memory that spans blocks, forgotten by block age.

Entries expire ``lookback`` blocks after they were added, never by count: a run resumed at
height H that first replays blocks H-lookback..H-1 rebuilds exactly the state a clean run
would have at H, which is what makes restarts produce identical rows.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringMap(Generic[V]):
    def __init__(self, lookback: int):
        self.lookback = lookback
        self._data: dict[str, V] = {}
        self._added: deque[tuple[int, list[str]]] = deque()
        self._current: tuple[int, list[str]] | None = None

    def begin_block(self, height: int) -> None:
        self._current = (height, [])
        self._added.append(self._current)
        horizon = height - self.lookback
        while self._added and self._added[0][0] < horizon:
            _, keys = self._added.popleft()
            for k in keys:
                self._data.pop(k, None)

    def set(self, key: str, value: V) -> None:
        if key not in self._data and self._current is not None:
            self._current[1].append(key)
        self._data[key] = value

    def get(self, key: str, default: V | None = None) -> V | None:
        return self._data.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)
