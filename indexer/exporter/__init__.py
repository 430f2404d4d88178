"""The Prometheus exporter: counters from committed rows and gauges from the rollups, served on
/metrics by the daemon's metrics port (indexer/health.py) beside ``metrics.REGISTRY``. Both are
rendered to text when they change (at a commit, at a gauge refresh) and served from
``metrics.SNAPSHOTS``, so a scrape formats only the few ingest metrics."""

from __future__ import annotations

from indexer import metrics
from indexer.exporter import counters
from indexer.exporter.counters import CommittedRows
from indexer.exporter.gauges import RollupGauges
from indexer.exporter.labels import SolverLabels

_installed: "Exporter | None" = None


class Exporter:
    def __init__(self, top_n: int, top_tokens: int = 20, bridge_rules: list[tuple[str, str]] | None = None):
        self.labels = SolverLabels(top_n)
        self.rows = CommittedRows(self.labels)
        self.gauges = RollupGauges(self.labels, top_tokens, bridge_rules)


def install(top_n: int, top_tokens: int = 20, bridge_rules: list[tuple[str, str]] | None = None) -> Exporter:
    """Register the exporter once per process (the registry refuses a name twice)."""
    global _installed
    if _installed is None:
        _installed = Exporter(top_n, top_tokens, bridge_rules)
        metrics.SNAPSHOTS.extend([counters.text, _installed.gauges.text])
        metrics.COMMITTED_ROWS_OBSERVERS.append(_installed.rows.observe)
    _installed.labels.top_n = top_n
    _installed.gauges.top_tokens = top_tokens
    if bridge_rules is not None:
        _installed.gauges.bridge_rules = bridge_rules
    return _installed
