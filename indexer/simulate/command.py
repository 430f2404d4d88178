"""``intents-indexer simulate``: write a NEAR Lake folder of intents traffic plus ``truth.json``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from indexer.simulate.options import DEFAULT_SHARD_IDS, SimConfig, SimulateError, SolverCollapse, Window

_D = SimConfig.__dataclass_fields__  # defaults shown in --help come from the one place they are defined


def _default(name: str) -> Any:
    return _D[name].default


def _shard_ids(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter("expected comma-separated integers, e.g. 10,11,8,7,5,0,1,2,6") from None
    if not ids:
        raise click.BadParameter("at least one shard id is required")
    return ids


@click.command("simulate", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write: <12-digit height>/block.json + shard_<id>.json per block, and truth.json.")
@click.option("--blocks", type=click.IntRange(min=2), default=_default("blocks"), show_default=True,
              help="Heights to cover, from --start-height; a few are skipped (no folder), as on mainnet.")
@click.option("--seed", type=int, default=_default("seed"), show_default=True,
              help="Seed of every random choice; the same options give byte-identical output.")
@click.option("--start-height", type=click.IntRange(min=1), default=_default("start_height"), show_default=True,
              help="First height (always a real block).")
@click.option("--start-time", default=_default("start_time"), show_default=True,
              help="UTC timestamp of the first block, ISO 8601.")
@click.option("--block-time", type=click.FloatRange(min=0.05), default=_default("block_time"), show_default=True,
              help="Seconds between heights (jittered by -6%..+12%).")
@click.option("--skip-rate", type=click.FloatRange(0, 0.5), default=_default("skip_rate"), show_default=True,
              help="Share of heights without a block; prev_hash/prev_height then point past them.")
@click.option("--missing-chunk-rate", type=click.FloatRange(0, 1), default=_default("missing_chunk_rate"),
              show_default=True,
              help="Chance per shard and block that the chunk is missing (shard file with \"chunk\": null; "
                   "receipts for that shard wait a block).")
@click.option("--shard-ids", callback=_shard_ids, default=",".join(map(str, DEFAULT_SHARD_IDS)), show_default=True,
              help="Shard ids in chunk order (non-contiguous, like mainnet after resharding).")
@click.option("--protocol-version", type=click.IntRange(min=83), default=_default("protocol_version"),
              show_default=True, help="header.latest_protocol_version (>= 83: 1 PGas per-call gas limit).")
@click.option("--solvers", type=click.IntRange(5, 40), default=_default("solvers"), show_default=True,
              help="intents.near solvers, of uneven volume (Zipf-like) and quality.")
@click.option("--unlisted-solvers", type=click.IntRange(min=0), default=_default("unlisted_solvers"),
              show_default=True,
              help="How many of the smallest solvers are left out of truth.json's solver_accounts, so the "
                   "indexer must find them by the referral rule.")
@click.option("--intents-per-block", type=click.FloatRange(0, 200), default=_default("intents_per_block"),
              show_default=True,
              help="Mean intents.near batches started per block (Poisson): settlements, withdrawals, "
                   "intents on deposit. Each gives 2-5 intents.near receipts over the next blocks.")
@click.option("--failure-rate", type=click.FloatRange(0, 1), default=_default("failure_rate"), show_default=True,
              help="Volume-weighted mean chance that a solver's batch panics (per-solver rates vary around it; "
                   "workshop solvers fail about twice as often).")
@click.option("--workshop-solvers", type=click.IntRange(0, 40), default=_default("workshop_solvers"),
              show_default=True, help="Workshop solver contracts (0 = no workshop traffic and contracts).")
@click.option("--workshop-intents-per-block", type=click.FloatRange(0, 200),
              default=_default("workshop_intents_per_block"), show_default=True,
              help="Mean workshop verify_and_solve calls per block (Poisson).")
@click.option("--expiry-rate", type=click.FloatRange(0, 1), default=_default("expiry_rate"), show_default=True,
              help="Share of workshop intents whose deadline has passed when verified (status expired).")
@click.option("--max-latency-blocks", type=click.IntRange(1, 50), default=_default("max_latency_blocks"),
              show_default=True, help="Most blocks between a workshop verify and its solve_intent call.")
@click.option("--tracked-shard-fraction", type=click.FloatRange(0, 1), default=_default("tracked_shard_fraction"),
              show_default=True,
              help="Share of each block's shard files that mention a tracked account (at least the tracked "
                   "contracts' home shards). 1.0 = tracked traffic in every shard, 0 = only home shards: "
                   "for benchmarking shard skipping.")
@click.option("--noise-bytes-per-block", type=click.IntRange(min=0), default=_default("noise_bytes_per_block"),
              show_default=True,
              help="Mean bytes of unrelated traffic per block (log-normal across blocks, uneven across "
                   "shards); the default gives blocks of roughly 0.05-2 MB.")
@click.option("--malformed-rate", type=click.FloatRange(0, 1), default=_default("malformed_rate"), show_default=True,
              help="Chance per successful intents.near batch of an extra undecodable EVENT_JSON log (a 'log' "
                   "dead letter), and half that per batch of arguments intents.near cannot read (an 'args' "
                   "dead letter: not JSON, or a bip322 payload, which has no intent hash). Counted in truth.json.")
@click.option("--replay-rate", type=click.FloatRange(0, 1), default=_default("replay_rate"), show_default=True,
              help="Chance per executed execute_intents batch that its relayer sends the same signed payloads "
                   "again 3-30 blocks later; that receipt fails with 'nonce was already used' and the intents "
                   "stay executed (one more attempt each).")
@click.option("--withdraw-refund-rate", type=click.FloatRange(0, 1), default=_default("withdraw_refund_rate"),
              show_default=True,
              help="Chance per withdrawal that the token contract refuses the transfer; the *_resolve_withdraw "
                   "callback then mints the tokens back to the owner (nep245 mt_mint, memo 'refund').")
@click.option("--withdraw-fail-rate", type=click.FloatRange(0, 1), default=_default("withdraw_fail_rate"),
              show_default=True,
              help="Chance per withdrawal that its *_resolve_withdraw callback on intents.near fails itself "
                   "(runs out of its 10 Tgas, or panics because the owner's account is locked); a refund it "
                   "logged before failing stays in the failed receipt. Counted in truth.json 'withdrawals'.")
@click.option("--retry-rate", type=click.FloatRange(0, 1), default=_default("retry_rate"), show_default=True,
              help="Chance per failed execute_intents batch (insufficient balance, exceeded gas, a used nonce "
                   "or bad arguments excluded) that the same signed payloads are sent again 2-20 blocks later "
                   "and then execute.")
@click.option("--incident-solver-collapse", "collapses", multiple=True, metavar="SOLVER@OFFSET[-END][:RATE]",
              help="From block offset OFFSET on (to END inclusive, then it recovers), SOLVER (an account, or "
                   "1-based index in volume order) succeeds with probability RATE (default 0.1). Repeatable.")
@click.option("--incident-gas-spike", "spikes", multiple=True, metavar="FROM:TO[xFACTOR]",
              help="Block offsets FROM..TO: gas burnt by tracked receipts times FACTOR (default 6); "
                   "receipts that run into their attached gas fail. Repeatable.")
@click.option("--incident-verifier-pause", "pauses", multiple=True, metavar="FROM:TO",
              help="Block offsets FROM..TO: no receipts on the verifiers (intents.near and the workshop "
                   "verifier) and no new flows; held receipts run after TO. Repeatable.")
@click.option("--verifier-account", default=_default("verifier_account"), show_default=True,
              help="Account of the NEAR Intents verifier.")
@click.option("--workshop-verifier", default=_default("workshop_verifier"), show_default=True,
              help="Account of the workshop verifier.")
@click.option("--truth-details/--no-truth-details", default=True, show_default=True,
              help="Include every intent and solver execution in truth.json (larger file).")
@click.option("--force", is_flag=True, help="Replace the block folders and truth.json of an earlier run in --out.")
@click.option("--dry-run", is_flag=True, help="Generate everything but write only truth.json (no block folders).")
@click.option("--writer-threads", type=click.IntRange(0, 64), default=4, show_default=True,
              help="Threads writing files while the next blocks are generated (0 = write inline).")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def simulate(out: Path, collapses: tuple[str, ...], spikes: tuple[str, ...], pauses: tuple[str, ...],
             force: bool, dry_run: bool, writer_threads: int, quiet: bool, **kwargs: Any) -> None:
    """Write a NEAR Lake folder of NEAR Intents traffic and truth.json with the exact expected answers.

    The lake holds intents.near settlements (execute_intents, withdrawals, intents on deposit,
    signed with every standard intents.near accepts), workshop verify_and_solve -> solve_intent -> on_intent_solved flows, and unrelated mainnet-like
    traffic, with skipped heights, non-contiguous shard ids and missing chunks. truth.json is computed
    while generating; its format is described in indexer/simulate/TRUTH.md. Index the result with
    the backfill command printed at the end.
    """
    from indexer.simulate.generator import generate

    try:
        cfg = SimConfig(
            out=out,
            solver_collapses=tuple(SolverCollapse.parse(c) for c in collapses),
            gas_spikes=tuple(Window.parse(s, "--incident-gas-spike", with_factor=True) for s in spikes),
            verifier_pauses=tuple(Window.parse(p, "--incident-verifier-pause") for p in pauses),
            **kwargs,
        )
        progress = None if quiet or not sys.stderr.isatty() else _progress()
        stats = generate(cfg, force=force, dry_run=dry_run, writer_threads=writer_threads, progress=progress)
    except SimulateError as exc:
        raise click.UsageError(str(exc)) from None
    if quiet:
        return
    import orjson

    truth = orjson.loads(stats.truth_path.read_bytes())
    b = truth["blocks"]
    verb = "generated (dry run, not written)" if dry_run else "wrote"
    click.echo(f"{verb} {stats.blocks} blocks (heights {b['first_height']}..{b['last_height']}, "
               f"{len(b['skipped_heights'])} skipped), {stats.bytes / 1e6:.1f} MB in {stats.seconds:.1f} s "
               f"({stats.blocks_per_s:.0f} blocks/s, {stats.mb_per_s:.0f} MB/s)", err=True)
    q = stats.size_quantiles()
    click.echo(f"block sizes: median {q['p50'] / 1e6:.2f} MB, p99 {q['p99'] / 1e6:.2f} MB, "
               f"max {q['max'] / 1e6:.2f} MB", err=True)
    t = truth["totals"]
    click.echo(f"truth: {t['tracked_receipts']} tracked receipts, {t['events']} events, "
               f"{t['solver_executions']} solver executions, {t['intents']} intents, "
               f"{t['dead_letters']} dead letters -> {stats.truth_path}", err=True)
    click.echo(backfill_command(truth, out))


def backfill_command(truth: dict[str, Any], out: Path) -> str:
    """The ``intents-indexer backfill`` invocation that indexes exactly this lake."""
    args = ["intents-indexer", "backfill", "--source", f"files:{out}", "--from", str(truth["blocks"]["first_height"]),
            "--to", str(truth["blocks"]["last_height"])]
    for spec in truth["contracts"]:
        args += ["--contract", spec]
    for account in truth["solver_accounts"]:
        args += ["--solver-account", account]
    return shlex.join(args)


def _progress() -> Any:
    last = [-1]

    def report(done: int, total: int) -> None:
        pct = done * 100 // total
        if pct != last[0]:
            last[0] = pct
            click.echo(f"\r{pct:3d}% ({done}/{total} heights)", nl=pct == 100, err=True)

    return report
