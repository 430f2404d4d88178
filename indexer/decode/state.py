"""Decoder memory that spans blocks, forgotten by block age.

Entries expire ``lookback`` blocks after the height they were born at, never by count. An
entry is born in the block that sets it, or at the height a caller passes: a value derived
from an older entry (a child receipt inheriting its parent's transaction) passes that entry's
birth, so a chain of derived entries never outlives its origin. A run resumed at height H that
first replays blocks H-lookback..H-1 then rebuilds exactly the state a clean run would have at
H, which is what makes restarts produce identical rows.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringMap(Generic[V]):
    def __init__(self, lookback: int):
        self.lookback = lookback
        self._data: dict[str, tuple[int | None, V]] = {}  # key -> (born height, value)
        self._set_at: dict[str, int] = {}  # height of each key's latest set, for freeing memory
        self._added: deque[tuple[int, list[str]]] = deque()
        self._current: tuple[int, list[str]] | None = None
        self._horizon: int | None = None  # entries born below it are expired

    def begin_block(self, height: int) -> None:
        self._current = (height, [])
        self._added.append(self._current)
        horizon = self._horizon = height - self.lookback
        while self._added and self._added[0][0] < horizon:
            added_at, keys = self._added.popleft()
            for k in keys:
                if self._set_at.get(k) == added_at:  # not set again in a later block
                    del self._set_at[k]
                    self._data.pop(k, None)

    def set(self, key: str, value: V, born: int | None = None) -> None:
        """Remember ``value``; it expires ``lookback`` blocks after ``born`` (default: this block)."""
        current = self._current
        if current is not None:
            if self._set_at.get(key) != current[0]:
                current[1].append(key)
                self._set_at[key] = current[0]
            if born is None or born > current[0]:
                born = current[0]
        self._data[key] = (born, value)

    def entry(self, key: str) -> tuple[int | None, V] | None:
        """(born height, value) of a live entry, or None."""
        e = self._data.get(key)
        if e is None or (e[0] is not None and self._horizon is not None and e[0] < self._horizon):
            return None
        return e

    def get(self, key: str, default: V | None = None) -> V | None:
        e = self.entry(key)
        return default if e is None else e[1]

    def __contains__(self, key: str) -> bool:
        return self.entry(key) is not None

    def __len__(self) -> int:
        return sum(1 for k in self._data if self.entry(k) is not None)
