"""Economics rollup job time (token_flows, solver_costs, bridge_flows) on synthetic settlements and
withdrawals.

    python benchmarks/economics.py [--settlements 250000] [--withdrawals 50000] [--history 1000000] [--solvers 40]

Rows are generated inside ClickHouse (INSERT ... SELECT FROM numbers), spread over one day of block
time per --settlements, with one `commits` row per 20 minutes of blocks (as in benchmarks/rollup.py,
whose feed this one extends). A settlement is one intents.near receipt with two dip4 `token_diff`
items (user and solver, two tokens each, fees on the solver's side: 4 token_flows source rows, so
250,000 settlements are 1M token_flows rows), their two `executed` intent_updates and one solver
execution. A withdrawal is an `ft_withdraw` event, its `ft_resolve_withdraw` receipt 2 s later in
the same transaction (a third refunded with an `mt_mint` memo `refund`, a tenth failed), and one
deposit (an `ft_on_transfer` receipt and its `mt_mint`). Figures, per family:

* new rows: one job run over the new rows (every bucket they touch recomputed);
* idle: a run with no new commits;
* head tick: a run after one commit of 1 s at the head (its minute, hour and day recomputed);
* the same again after --history settlements (and --history/5 withdrawals) of older days are
  stored and rolled up: a job reads only the buckets its commits touch, so history must not
  change the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from rollup import CPU, DAY, T0, Feed, timed  # noqa: E402

from indexer.rollup import job  # noqa: E402
from indexer.rollup.economics import ECONOMICS  # noqa: E402
from indexer.store import migrations  # noqa: E402
from indexer.store.client import Store  # noqa: E402

TOKENS = ("nep141:eth.omft.near", "nep141:sol.omft.near", "nep245:v2_1.omni.hot.tg:56_11111111111111111111",
          "nep141:usdt.tether-token.near", "nep141:wrap.near", "nep141:btc.omft.near")
CONTRACTS = ("eth.omft.near", "sol.omft.near", "usdt.tether-token.near", "wrap.near", "btc.omft.near")


class EconomicsFeed(Feed):
    def _ts(self, start: int, seconds: int, n: int, shift: float = 0.0) -> str:
        return f"toDateTime64({start} + (number * {seconds}) / {n} + {shift}, 3, 'UTC')"

    def settlements(self, n: int, start: int, seconds: int) -> None:
        """``n`` settlements over [start, start + seconds); commits come with the executions."""
        s, o, ts = self.store, self.offset, self._ts(start, seconds, n)
        k = len(TOKENS)
        tokens = f"[{', '.join(repr(t) for t in TOKENS)}]"
        pick = f"sipHash64(number + {o}, 'k') % {k}"  # the pair of distinct tokens a settlement swaps
        solver = f"concat('solver-', toString(toUInt32(sqrt(sipHash64(number + {o}) % {self.solvers ** 2}))), '.near')"
        amount = f"toString(1000000 + sipHash64(number + {o}, 'a') % 1000000000000)"
        item = ("concat('[{\"intent_hash\":\"', h, '\",\"account_id\":\"', acct, '\",\"diff\":{\"', ta, '\":\"', "
                "if(side = 0, '-', ''), amt, '\",\"', tb, '\":\"', if(side = 0, '', '-'), amt, '\"}', "
                "if(side = 1, concat(',\"fees_collected\":{\"', tb, '\":\"', toString(length(amt)), '\"}'), ''), '}]')")
        rows = (f"SELECT number, {ts} AS ts, hex(sipHash64(number + {o}, 'r')) AS rid, side, "
                f"concat(hex(sipHash64(number + {o}, 'i')), toString(side)) AS h, "
                f"if(side = 0, concat('user-', toString(sipHash64(number + {o}, 'u') % 100000), '.near'), {solver}) AS acct, "
                f"{tokens}[1 + {pick}] AS ta, {tokens}[1 + ({pick} + 1) % {k}] AS tb, {amount} AS amt "
                f"FROM numbers({n}) ARRAY JOIN [0, 1] AS side")
        s.command(f"INSERT INTO {s.table('events')} (block_height, block_timestamp, receipt_id, tx_hash, contract_id, "
                  f"standard, version, event, log_index, data, execution_status) "
                  f"SELECT toUInt64((toUnixTimestamp(ts) - {T0}) * 1.65), ts, rid, rid, 'intents.near', 'dip4', "
                  f"'0.3.0', 'token_diff', side, {item}, 'success' FROM ({rows})", settings={"max_insert_threads": 2})
        s.command(f"INSERT INTO {s.table('intent_updates')} (block_height, block_timestamp, update_index, contract_id, "
                  f"receiver_id, intent_id, status, signer_id, solver_id, receipt_id, tx_hash, method_name) "
                  f"SELECT toUInt64((toUnixTimestamp(ts) - {T0}) * 1.65), ts, side, 'intents.near', 'intents.near', h, "
                  f"'executed', acct, {solver}, rid, rid, 'execute_intents' FROM ({rows})",
                  settings={"max_insert_threads": 2})
        self.executions(n, start, seconds)  # solver_executions, blocks and the commits of the range

    def withdrawals(self, n: int, start: int, seconds: int) -> None:
        """``n`` withdrawals, their resolutions and ``n`` deposits over [start, start + seconds)."""
        s, o = self.store, self.offset
        base = (f"SELECT number, {self._ts(start, seconds, n)} AS ts, {self._ts(start, seconds, n, 2.0)} AS rts, "
                f"[{', '.join(repr(c) for c in CONTRACTS)}][1 + sipHash64(number + {o}, 'c') % {len(CONTRACTS)}] AS c, "
                f"toString(1000 + sipHash64(number + {o}, 'a') % 1000000000) AS amt, "
                f"hex(sipHash64(number + {o}, 't')) AS tx, sipHash64(number + {o}, 'o') % 30 AS fate "
                f"FROM numbers({n})")
        height = f"toUInt64((toUnixTimestamp({{t}}) - {T0}) * 1.65)"
        cols = ("block_height, block_timestamp, receipt_id, tx_hash, contract_id, standard, version, event, log_index, "
                "data, execution_status")
        s.command(f"INSERT INTO {s.table('events')} ({cols}) SELECT {height.format(t='ts')}, ts, concat('w', tx), tx, "
                  f"'intents.near', 'dip4', '0.3.0', 'ft_withdraw', 0, concat('[{{\"account_id\":\"u.near\",\"token\":\"', "
                  f"c, '\",\"receiver_id\":\"u.near\",\"amount\":\"', amt, '\"}}]'), 'success' FROM ({base})")
        # fate 0-9 refunded (the resolve mints the amount back), 10-12 failed, the rest ok
        s.command(f"INSERT INTO {s.table('receipts')} (block_height, block_timestamp, receipt_id, receiver_id, "
                  f"predecessor_id, signer_id, tx_hash, method_name, args, gas_burnt, status, failure) "
                  f"SELECT {height.format(t='rts')}, rts, concat('r', tx), 'intents.near', 'intents.near', 'relay.near', "
                  f"tx, 'ft_resolve_withdraw', concat('{{\"token\":\"', c, '\",\"sender_id\":\"u.near\",\"amount\":\"', "
                  f"amt, '\",\"is_call\":false}}'), 3000000000000, if(fate BETWEEN 10 AND 12, 'failure', 'success'), "
                  f"if(fate BETWEEN 10 AND 12, 'Exceeded the prepaid gas.', '') FROM ({base})")
        mint = ("concat('[{{\"owner_id\":\"u.near\",\"token_ids\":[\"nep141:', c, '\"],\"amounts\":[\"', amt, "
                "'\"],\"memo\":\"{memo}\"}}]')")
        s.command(f"INSERT INTO {s.table('events')} ({cols}) SELECT {height.format(t='rts')}, rts, concat('r', tx), tx, "
                  f"'intents.near', 'nep245', '1.0.0', 'mt_mint', 0, {mint.format(memo='refund')}, 'success' "
                  f"FROM ({base}) WHERE fate < 10")
        s.command(f"INSERT INTO {s.table('receipts')} (block_height, block_timestamp, receipt_id, receiver_id, "
                  f"predecessor_id, signer_id, tx_hash, method_name, args, gas_burnt, status) "
                  f"SELECT {height.format(t='ts')}, ts, concat('d', tx), 'intents.near', c, 'u.near', concat('D', tx), "
                  f"'ft_on_transfer', '{{}}', 4000000000000, 'success' FROM ({base})")
        s.command(f"INSERT INTO {s.table('events')} ({cols}) SELECT {height.format(t='ts')}, ts, concat('d', tx), "
                  f"concat('D', tx), 'intents.near', 'nep245', '1.0.0', 'mt_mint', 1, {mint.format(memo='deposit')}, "
                  f"'success' FROM ({base})")
        self.offset += n  # the commits of the range come with the settlements inserted alongside


def run_jobs(store) -> dict[str, tuple[float, float, int]]:  # type: ignore[no-untyped-def]
    """Per family: (wall seconds, CPU seconds, buckets written)."""
    out = {}
    for family in ECONOMICS:
        seconds, result = timed(lambda f=family: job.run_once(store, f))
        out[family.name] = (seconds, CPU[-1], result.buckets)
    return out


def _fmt(runs: list[dict[str, tuple[float, float, int]]], unit: str = "s") -> str:
    scale = 1000 if unit == "ms" else 1
    parts = []
    for name in runs[0]:
        wall = statistics.median(r[name][0] for r in runs) * scale
        cpu = statistics.median(r[name][1] for r in runs) * scale
        parts.append(f"{name} {wall:.2f} {unit} wall / {cpu:.2f} {unit} CPU ({runs[-1][name][2]:,} buckets)")
    return "; ".join(parts)


def scenario(store: Store, feed: EconomicsFeed, settlements: int, withdrawals: int, start: int,
             label: str) -> list[tuple[str, str]]:
    span = DAY * max(1, settlements // 250_000)
    seconds, _ = timed(lambda: (feed.withdrawals(withdrawals, start, span), feed.settlements(settlements, start, span)))
    flows = int(store.scalar(f"SELECT count() FROM {store.table('events')} WHERE event = 'token_diff' "
                             f"AND block_timestamp >= toDateTime({start}) AND block_timestamp < toDateTime({start + span})"))
    out = [(f"{label}: insert {settlements:,} settlements ({flows * 2:,} token_flows rows), {withdrawals:,} "
            f"withdrawals and deposits (not part of the jobs)", f"{seconds:.1f} s")]
    out.append((f"{label}: job run over the new rows ({feed.seq} commits so far)", _fmt([run_jobs(store)])))
    out.append((f"{label}: idle run (no new commits), median of 5", _fmt([run_jobs(store) for _ in range(5)], "ms")))
    head = []
    for i in range(5):  # head blocks in the last minute of the new rows: their day holds all of them
        at = start + span - 30 + i
        feed.withdrawals(2, at, 1)
        feed.settlements(3, at, 1)
        head.append(run_jobs(store))
    out.append((f"{label}: head tick (one commit of 1 s at the head), median of 5", _fmt(head, "ms")))
    return out


def _totals(store: Store) -> str:
    """What the day tables hold, to see the synthetic rows were read as meant."""
    T = store.table
    w, rf, fl, dep, ft = store.query(f"SELECT sum(withdrawals), sum(refunded), sum(failed), sum(deposits), "
                                     f"sum(ft_deposits) FROM {T('bridge_flows_1d')}")[1][0]
    n, fees = store.query(f"SELECT sum(settlements), sum(fees) FROM {T('token_flows_1d')} WHERE role = 'solver'")[1][0]
    return (f"withdrawals {w:,} (refunded {rf:,}, failed {fl:,}), deposits {dep:,} (by ft_on_transfer {ft:,}); "
            f"solver token_flows settlements {n:,}, fees {int(fees):,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settlements", type=int, default=250_000)
    ap.add_argument("--withdrawals", type=int, default=50_000)
    ap.add_argument("--history", type=int, default=1_000_000, help="older settlements (and a fifth as withdrawals)")
    ap.add_argument("--solvers", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-economics-") as tmp:
        store = Store(f"chdb://{tmp}", database="bench")
        migrations.migrate(store)
        feed = EconomicsFeed(store, args.solvers)
        results = scenario(store, feed, args.settlements, args.withdrawals, T0 + 30 * DAY, "empty store")
        if args.history:
            span = DAY * max(1, args.history // 250_000)
            seconds, _ = timed(lambda: (feed.withdrawals(args.history // 5, T0, span),
                                        feed.settlements(args.history, T0, span)))
            total = sum(v[0] for v in run_jobs(store).values())
            results.append((f"history: {args.history:,} older settlements, {args.history // 5:,} withdrawals "
                            f"inserted and rolled up", f"insert {seconds:.1f} s, rollup {total:.1f} s"))
            results += scenario(store, feed, args.settlements, args.withdrawals, T0 + 40 * DAY,
                                f"after {args.history:,} settlements of history")
        results.append(("check: rolled-up totals (1d)", _totals(store)))
        store.close()
    width = max(len(k) for k, _ in results)
    for k, v in results:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
