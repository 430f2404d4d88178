"""Bounded solver labels: solvers beyond the top N by 24h executions fold into ``other``.

The top N comes from the rollups (refreshed by the gauge loop). Until the first refresh, and for
solvers that appear later, the first N solvers seen per contract keep their own label, so the
number of label values per contract stays at most 2N whatever the chain does.
"""

from __future__ import annotations

import threading

OTHER = "other"
ALL = "*"


class SolverLabels:
    def __init__(self, top_n: int):
        self.top_n = top_n
        self._top: dict[str, set[str]] = {}
        self._first: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def set_top(self, top: dict[str, list[str]]) -> None:
        with self._lock:
            self._top = {c: set(s[: self.top_n]) for c, s in top.items()}

    def top(self, contract: str) -> set[str]:
        return self._top.get(contract, set())

    def top_pairs(self) -> set[tuple[str, str]]:
        """(contract, solver) of every solver in a top N."""
        return {(c, s) for c, solvers in self._top.items() for s in solvers}

    def label(self, contract: str, solver: str) -> str:
        if solver == ALL or solver in self._top.get(contract, ()):
            return solver
        with self._lock:
            first = self._first.setdefault(contract, set())
            if solver in first:
                return solver
            if len(first) < self.top_n:
                first.add(solver)
                return solver
        return OTHER
