"""Writes the Grafana dashboards of this folder: `python dashboards/generate.py`.

The JSON files are generated so that every panel's SQL and PromQL lives here once, in a form the
tests can expand and run (tests/test_dashboards.py runs every ClickHouse query against a store
filled from a simulated lake, and has a real Prometheus parse every PromQL expression). Edit this
file, run it, commit both; a test fails when the JSON and this file disagree.

ClickHouse panels read the rollup tables only (plus `intent_lookups` and `intent_updates` for the
top accounts and recent failed intents, bounded by the time range and a LIMIT). Time series pick their grain from
the panel's interval: `solver_stats_1m` below an hour, `_1h` below a day, `_1d` above, so a
30-day panel reads 30 rows a series instead of 43,200.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from indexer.bridges import DEFAULT_RULES, bridge_sql, parse

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 41
CH = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}
PROM = {"type": "prometheus", "uid": "prometheus"}
TIMESERIES, TABLE = 0, 1  # the ClickHouse plugin's query formats

GRAINS = (("1m", "$__interval_s < 3600"), ("1h", "$__interval_s >= 3600 AND $__interval_s < 86400"),
          ("1d", "$__interval_s >= 86400"))


def by_grain(table: str, select: str, where: str, tail: str) -> str:
    """The same SELECT over the 1m, 1h and 1d tables of ``table``; the panel's interval keeps one."""
    parts = [f"SELECT {select}\nFROM {table}_{g}\nWHERE {cond} AND $__timeFilter(bucket) AND {where}\n{tail}"
             for g, cond in GRAINS]
    return "\nUNION ALL\n".join(parts) + "\nORDER BY time"


def ch_target(sql: str, fmt: int = TIMESERIES, ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": CH, "editorType": "sql", "format": fmt,
            "queryType": "timeseries" if fmt == TIMESERIES else "table", "pluginVersion": "4.20.0", "rawSql": sql}


def prom_target(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": PROM, "expr": expr, "legendFormat": legend, "range": True}


def panel(kind: str, title: str, targets: list[dict[str, Any]], unit: str = "short", description: str = "",
          **extra: Any) -> dict[str, Any]:
    ds = targets[0]["datasource"]
    return {"type": kind, "title": title, "description": description, "datasource": ds, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": extra.pop("options", {}),
            **extra}


def layout(panels: list[dict[str, Any]], width: int = 12, height: int = 8) -> list[dict[str, Any]]:
    """Two panels a row (tables take a whole row); ids in order."""
    x = y = 0
    for i, p in enumerate(panels, start=1):
        w = 24 if p["type"] == "table" else width
        if x + w > 24:
            x, y = 0, y + height
        p["id"], p["gridPos"] = i, {"x": x, "y": y, "w": w, "h": height}
        x += w
        if x >= 24:
            x, y = 0, y + height
    return panels


def var_datasource() -> dict[str, Any]:
    return {"name": "datasource", "label": "ClickHouse", "type": "datasource",
            "query": "grafana-clickhouse-datasource", "current": {"text": "ClickHouse", "value": "clickhouse"},
            "hide": 0, "refresh": 1}


def var_query(name: str, label: str, sql: str, multi: bool = False, include_all: bool = False) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": CH, "query": sql, "definition": sql,
            "refresh": 2, "multi": multi, "includeAll": include_all, "sort": 1, "hide": 0,
            **({"allValue": None} if include_all else {})}


CONTRACT = var_query("contract", "Contract", "SELECT DISTINCT contract_id FROM solver_stats_1d ORDER BY contract_id")


def dashboard(uid: str, title: str, description: str, panels: list[dict[str, Any]],
              variables: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["near-intents"],
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": False, "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"}, "timezone": "utc", "refresh": "1m",
        "templating": {"list": variables}, "annotations": {"list": []}, "links": [
            {"type": "dashboards", "tags": ["near-intents"], "asDropdown": True, "title": "NEAR Intents"}],
        "panels": layout(panels),
    }


# --- Intents ---------------------------------------------------------------------------------------

def intents() -> dict[str, Any]:
    c = "contract_id = '${contract}'"
    per_minute = by_grain(
        "intent_stats", "$__timeInterval(bucket) AS time, concat(kind, ' ', status) AS series, "
        "sum(intents) / ($__interval_s / 60) AS intents_per_minute", c, "GROUP BY time, series")
    success = by_grain(
        "solver_stats", "$__timeInterval(bucket) AS time, sum(successes) / sum(executions) AS success_ratio",
        f"{c} AND solver_id = '*'", "GROUP BY time")
    reasons = by_grain(
        "solver_stats", "$__timeInterval(bucket) AS time, reason AS series, sum(n) AS failures",
        f"{c} AND solver_id = '*'", "GROUP BY time, series").replace(
        "\nWHERE", "\nARRAY JOIN mapKeys(failure_reasons) AS reason, mapValues(failure_reasons) AS n\nWHERE")
    heatmap = by_grain(
        "solver_stats", "$__timeInterval(bucket) AS time, le, sum(n) AS executions",
        f"{c} AND solver_id = '*'", "GROUP BY time, le").replace(
        "\nWHERE", "\nARRAY JOIN mapKeys(gas_buckets) AS le, mapValues(gas_buckets) AS n\nWHERE")
    top_accounts = (
        "SELECT key AS account, uniqExact(intent_id) AS intents, countIf(status = 'failed') AS failed_updates\n"
        "FROM intent_lookups\nWHERE kind = 'account' AND contract_id = '${contract}' AND $__timeFilter(block_timestamp)\n"
        "GROUP BY account ORDER BY intents DESC LIMIT 20")
    recent_failed = (
        "SELECT u.block_timestamp AS time, u.intent_id AS intent_hash, u.signer_id AS account, u.failure AS reason,\n"
        "       u.tx_hash AS tx_hash, u.block_height AS block_height\n"
        "FROM intent_updates AS u\n"
        "WHERE u.contract_id = '${contract}' AND u.status = 'failed' AND $__timeFilter(u.block_timestamp)\n"
        "ORDER BY u.block_height DESC LIMIT 50")
    panels = [
        panel("timeseries", "Intents per minute by kind and status", [ch_target(per_minute)], "short",
              "Intents reaching each status per minute (intent_stats)."),
        panel("timeseries", "Settlement success ratio", [ch_target(success)], "percentunit",
              "Successful solver executions / executions, every solver of the contract (solver_stats, '*')."),
        panel("timeseries", "Failures by reason", [ch_target(reasons)], "short",
              "Failed executions per reason (solver_stats failure_reasons, '*')."),
        panel("heatmap", "Gas per execution (Tgas buckets)", [ch_target(heatmap)], "short",
              "Executions per fixed gas bucket; `le` is the bucket's upper bound in Tgas (indexer/gas.py).",
              options={"calculate": False, "yAxis": {"unit": "short"}, "cellValues": {"unit": "short"},
                       "rowsFrame": {"layout": "auto"}}),
        panel("table", "Top accounts", [ch_target(top_accounts, TABLE)], "short",
              "Accounts with the most intents in the time range (signer or an account the intent moves tokens for)."),
        panel("table", "Recent failed intents", [ch_target(recent_failed, TABLE)], "short",
              "The newest 50 failed intent updates in the time range."),
    ]
    return dashboard("near-intents-intents", "NEAR Intents: intents",
                     "Intents by kind and status, success ratio, failures, gas, accounts.", panels,
                     [var_datasource(), CONTRACT])


# --- Solvers ---------------------------------------------------------------------------------------

def solvers() -> dict[str, Any]:
    c = "contract_id = '${contract}'"
    chosen = f"{c} AND solver_id IN (${{solver:singlequote}})"
    ratio = by_grain(
        "solver_stats", "$__timeInterval(bucket) AS time, if(solver_id = '*', 'network', solver_id) AS series, "
        "sum(successes) / sum(executions) AS success_ratio",
        f"{c} AND (solver_id IN (${{solver:singlequote}}) OR solver_id = '*')", "GROUP BY time, series")
    executions = by_grain(
        "solver_stats", "$__timeInterval(bucket) AS time, solver_id AS series, sum(executions) AS executions",
        chosen, "GROUP BY time, series")
    gas = by_grain(
        "solver_stats", "$__timeInterval(bucket) AS time, solver_id AS series, "
        "quantilesExactMerge(0.5, 0.9, 0.99)(gas_quantiles) AS q, q[1] / 1e12 AS p50_tgas, q[2] / 1e12 AS p90_tgas, "
        "q[3] / 1e12 AS p99_tgas", chosen, "GROUP BY time, series")
    latency = by_grain(
        "solver_stats", "$__timeInterval(bucket) AS time, solver_id AS series, "
        "quantilesExactMerge(0.5, 0.9, 0.99)(latency_quantiles) AS q, q[1] AS p50_s, q[2] AS p90_s, q[3] AS p99_s",
        f"{chosen} AND latency_count > 0", "GROUP BY time, series")
    leaderboard = (
        "SELECT solver_id AS solver, sum(executions) AS runs, sum(successes) / runs AS success_ratio,\n"
        "       sum(failures) AS failed, quantilesExactMerge(0.5, 0.9, 0.99)(gas_quantiles)[2] / 1e12 AS gas_p90_tgas,\n"
        "       toFloat64(sum(gas_burnt)) / runs / 1e12 AS gas_mean_tgas\n"
        "FROM solver_stats_1h\nWHERE contract_id = '${contract}' AND solver_id != '*' AND $__timeFilter(bucket)\n"
        "GROUP BY solver ORDER BY runs DESC LIMIT 100")
    cost = by_grain(
        "solver_costs", "$__timeInterval(bucket) AS time, solver_id AS series, "
        "sum(gas_burnt) / sum(settlements) / 1e12 AS gas_per_settlement_tgas, "
        "sum(gas_burnt) / sum(intents) / 1e12 AS gas_per_intent_tgas",
        f"{chosen} AND settlements > 0", "GROUP BY time, series")
    panels = [
        panel("timeseries", "Success ratio against the network", [ch_target(ratio)], "percentunit",
              "Each chosen solver's successful executions / executions, and the whole network's ('network')."),
        panel("timeseries", "Executions", [ch_target(executions)], "short", "Executions per interval."),
        panel("timeseries", "Gas burnt per execution: p50, p90, p99", [ch_target(gas)], "short",
              "Exact quantiles merged from the rollup states, in Tgas."),
        panel("timeseries", "Latency: p50, p90, p99", [ch_target(latency)], "s",
              "Workshop solvers: verification to solve (seconds)."),
        panel("timeseries", "Success ratio, last hour (exporter)",
              [prom_target('near_intents_solver_success_ratio{contract="$contract", solver=~"$solver|[*]", window="1h"}',
                           "{{solver}}")], "percentunit",
              "The exporter's rolling 1h window (the alert SolverSuccessRateLow reads it)."),
        panel("timeseries", "Cost: gas per settlement and per intent", [ch_target(cost)], "short",
              "Gas burnt by the solver's successful settlements / settlements, and / intents they executed, "
              "in Tgas (solver_costs)."),
        panel("table", "Leaderboard", [ch_target(leaderboard, TABLE)], "short",
              "Solvers of the contract in the time range, by executions (solver_stats_1h)."),
    ]
    solver = var_query("solver", "Solver", "SELECT DISTINCT solver_id FROM solver_stats_1d WHERE contract_id = "
                       "'${contract}' AND solver_id != '*' ORDER BY solver_id", multi=True, include_all=True)
    return dashboard("near-intents-solvers", "NEAR Intents: solvers",
                     "Per-solver success against the network, executions, gas and latency percentiles, leaderboard.",
                     panels, [var_datasource(), CONTRACT, solver])


# --- Tokens and bridges ---------------------------------------------------------------------------

# The exporter applies the `bridges` setting; the dashboards show the default rule.
BRIDGE = bridge_sql(parse(DEFAULT_RULES), "token_contract")


def tokens() -> dict[str, Any]:
    c = "contract_id = '${contract}'"
    top = (f"{c} AND token IN (SELECT token FROM token_flows_1d WHERE {c} AND $__timeFilter(bucket) "
           "GROUP BY token ORDER BY sum(settlements) DESC LIMIT 10)")
    volume = by_grain(
        "token_flows", "$__timeInterval(bucket) AS time, token AS series, toFloat64(sum(volume_in)) AS volume_in, "
        "toFloat64(sum(volume_out)) AS volume_out", top, "GROUP BY time, series")
    fees = by_grain(
        "token_flows", "$__timeInterval(bucket) AS time, token AS series, toFloat64(sum(fees)) AS fees_collected",
        top, "GROUP BY time, series")
    withdrawals = by_grain(
        "bridge_flows", f"$__timeInterval(bucket) AS time, {BRIDGE} AS series, sum(withdrawals) AS started, "
        "sum(resolved_ok) AS ok, sum(refunded) AS refunded, sum(failed) AS failed", c, "GROUP BY time, series")
    failure_ratio = by_grain(
        "bridge_flows", f"$__timeInterval(bucket) AS time, {BRIDGE} AS series, "
        "(sum(refunded) + sum(failed)) / sum(resolved) AS failure_ratio", f"{c} AND resolved > 0",
        "GROUP BY time, series")
    resolve = by_grain(
        "bridge_flows", f"$__timeInterval(bucket) AS time, {BRIDGE} AS series, "
        "quantilesExactMerge(0.5, 0.9, 0.99)(resolve_quantiles) AS q, q[1] AS p50_s, q[2] AS p90_s, q[3] AS p99_s",
        f"{c} AND resolve_timed > 0", "GROUP BY time, series")
    deposits = by_grain(
        "bridge_flows", f"$__timeInterval(bucket) AS time, {BRIDGE} AS series, sum(deposits) AS arrived",
        f"{c} AND deposits > 0", "GROUP BY time, series")
    top_tokens = (
        "SELECT token, sum(settlements) AS settlements, sum(volume_in) AS volume_in, sum(volume_out) AS volume_out,\n"
        "       sum(fees) AS fees_collected, sumIf(fees, role = 'solver') AS fees_on_solver_diffs\n"
        "FROM token_flows_1h\nWHERE contract_id = '${contract}' AND $__timeFilter(bucket)\n"
        "GROUP BY token ORDER BY settlements DESC LIMIT 50")
    bridges = (
        f"SELECT {BRIDGE} AS bridge, token, sum(withdrawals) AS started, sum(resolved_ok) AS ok,\n"
        "       sum(refunded) AS refunded, sum(failed) AS failed, sumMap(failure_reasons) AS reasons,\n"
        "       quantilesExactMerge(0.5, 0.9, 0.99)(resolve_quantiles)[2] AS resolve_p90_s, sum(deposits) AS deposits\n"
        "FROM bridge_flows_1h\nWHERE contract_id = '${contract}' AND $__timeFilter(bucket)\n"
        "GROUP BY bridge, token ORDER BY started DESC LIMIT 100")
    panels = [
        panel("timeseries", "Traded volume, top 10 tokens", [ch_target(volume)], "short",
              "Sum of the positive (in) and negative (out) token_diff amounts, in each token's smallest unit "
              "(token_flows)."),
        panel("timeseries", "Fees collected, top 10 tokens", [ch_target(fees)], "short",
              "token_diff fees_collected of successful receipts, in each token's smallest unit."),
        panel("timeseries", "Withdrawals per bridge", [ch_target(withdrawals)], "short",
              "Withdrawals started, and resolve callbacks by outcome (bridge_flows)."),
        panel("timeseries", "Withdrawal failure ratio per bridge", [ch_target(failure_ratio)], "percentunit",
              "Refunded or failed resolutions / resolutions."),
        panel("timeseries", "Withdrawal to resolution: p50, p90, p99", [ch_target(resolve)], "s",
              "Seconds from the withdrawal event to its resolve callback."),
        panel("timeseries", "Deposits per bridge", [ch_target(deposits)], "short",
              "mt_mint on the contract other than refunds."),
        panel("timeseries", "Withdrawal failure ratio, last hour (exporter)",
              [prom_target('near_intents:bridge_withdrawal_failure_ratio:1h{contract="$contract"}', "{{bridge}}")],
              "percentunit", "The recording rule the alert BridgeWithdrawalFailures reads."),
        panel("table", "Top tokens", [ch_target(top_tokens, TABLE)], "short",
              "Tokens of the contract in the time range, by settlements (token_flows_1h)."),
        panel("table", "Bridges and tokens", [ch_target(bridges, TABLE)], "short",
              "Withdrawals, outcomes with reasons, resolve p90 and deposits per bridge and token (bridge_flows_1h)."),
    ]
    return dashboard("near-intents-tokens", "NEAR Intents: tokens and bridges",
                     "Volumes and fees per token, withdrawals per bridge with failure ratio and resolve time, "
                     "deposits.", panels, [var_datasource(), CONTRACT])


# --- Indexer health -------------------------------------------------------------------------------

def health() -> dict[str, Any]:
    inst = 'instance=~"$instance"'
    blocks = by_grain("block_stats", "$__timeInterval(bucket) AS time, sum(blocks) / ($__interval_s / 60) AS "
                      "blocks_per_minute", "1 = 1", "GROUP BY time")
    panels = [
        panel("timeseries", "Indexed height and chain head", [
            prom_target(f"near_intents_indexed_height{{{inst}}}", "indexed {{instance}}"),
            prom_target(f"near_intents_chain_head_height{{{inst}}}", "head {{instance}}", "B")], "none"),
        panel("timeseries", "Lag", [
            prom_target(f"time() - near_intents_indexed_block_timestamp_seconds{{{inst}}}", "seconds {{instance}}"),
            prom_target(f"near_intents_chain_head_height{{{inst}}} - on (instance) near_intents_indexed_height{{{inst}}}",
                        "blocks {{instance}}", "B")], "short", "Seconds behind the newest block's time, and blocks behind the head."),
        panel("timeseries", "Blocks indexed per second", [
            prom_target(f"rate(near_intents_blocks_indexed_total{{{inst}}}[$__rate_interval])", "{{instance}}")], "short"),
        panel("timeseries", "Source retries and errors", [
            prom_target(f"sum by (source, reason) (rate(near_intents_source_retries_total{{{inst}}}[$__rate_interval]))",
                        "retry {{source}} {{reason}}"),
            prom_target(f"sum by (source, reason) (rate(near_intents_source_errors_total{{{inst}}}[$__rate_interval]))",
                        "error {{source}} {{reason}}", "B")], "short"),
        panel("timeseries", "Chain breaks and dead letters", [
            prom_target(f"sum(increase(near_intents_chain_breaks_total{{{inst}}}[$__rate_interval]))", "chain breaks"),
            prom_target(f"sum by (kind) (increase(near_intents_dead_letters_total{{{inst}}}[$__rate_interval]))",
                        "dead letters {{kind}}", "B")], "short"),
        panel("timeseries", "Flush and rollup durations (p99)", [
            prom_target(f"histogram_quantile(0.99, sum by (le) (rate(near_intents_flush_seconds_bucket{{{inst}}}[$__rate_interval])))",
                        "flush"),
            prom_target(f"histogram_quantile(0.99, sum by (le, exported_job) (rate(near_intents_rollup_seconds_bucket{{{inst}}}[$__rate_interval])))",
                        "rollup {{exported_job}}", "B")], "s"),
        panel("timeseries", "Rollup freshness", [
            prom_target(f"time() - near_intents_rollup_last_success_timestamp_seconds{{{inst}}}", "{{exported_job}}")],
              "s", "Seconds since each rollup job last succeeded (RollupStale fires above its threshold)."),
        panel("timeseries", "Blocks per minute (store)", [ch_target(blocks)], "short",
              "Blocks stored per minute of chain time (block_stats)."),
    ]
    instance = {"name": "instance", "label": "Instance", "type": "query", "datasource": PROM,
                "query": {"query": "label_values(near_intents_indexed_height, instance)", "refId": "instance"},
                "definition": "label_values(near_intents_indexed_height, instance)", "refresh": 2,
                "multi": True, "includeAll": True, "allValue": ".*", "hide": 0, "sort": 1}
    return dashboard("near-intents-indexer-health", "NEAR Intents: indexer health",
                     "Indexed height against the chain head, lag, throughput, source errors, dead letters, "
                     "flush and rollup durations and freshness.", panels, [var_datasource(), instance])


def expand(sql: str, start: int, end: int, interval: int, variables: dict[str, list[str]]) -> str:
    """A panel's SQL as the ClickHouse plugin (4.x) sends it: macros for the time range
    [start, end] (unix seconds) and the interval (seconds), then ${var} and ${var:singlequote}."""
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m[1]} >= toDateTime({start}) AND {m[1]} <= toDateTime({end})", sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)",
                 lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {interval} second)", sql)
    sql = sql.replace("$__interval_s", str(interval))
    sql = sql.replace("$__fromTime", f"toDateTime({start})").replace("$__toTime", f"toDateTime({end})")
    for name, values in variables.items():
        sql = sql.replace(f"${{{name}:singlequote}}", ", ".join(f"'{v}'" for v in values))
        sql = sql.replace(f"${{{name}}}", values[0])
    if "$" in sql:
        raise ValueError(f"unexpanded macro or variable in: {sql}")
    return sql


def clickhouse_queries(board: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every ClickHouse query of a dashboard."""
    return [(p["title"], t) for p in board["panels"] for t in p["targets"]
            if t["datasource"]["type"] == CH["type"]]


DASHBOARDS = {"intents.json": intents, "solvers.json": solvers, "tokens.json": tokens,
              "indexer-health.json": health}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    for name, build in DASHBOARDS.items():
        (HERE / name).write_text(render(build))
        print(f"wrote dashboards/{name}")


if __name__ == "__main__":
    main()
