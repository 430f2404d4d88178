"""``intents-indexer``: run, backfill, serve, migrate, status, query, simulate."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click
import structlog

from indexer import __version__, logs
from indexer.config import ConfigError, Settings, flag_name, load_settings, redacted, setting_origins
from indexer.health import Health, follow_head
from indexer.health import serve as serve_health

log = structlog.get_logger("indexer")

# The same exit codes for every command (README "Commands" and --help say the same).
EXIT_OK = 0
EXIT_RUNTIME = 1  # the store or source is unusable, or indexing failed
EXIT_CONFIG = 2  # bad usage or settings: fixing the command line, environment or config file fixes it
EXIT_STOPPED = 3  # stopped (SIGINT/SIGTERM) before the end of a finite job; the message says how to resume
EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 runtime failure (store or source unusable); 2 bad usage or settings; "
    "3 stopped before the end (an interrupted backfill; the log says how to resume)."
)


# Flags are generated from the Settings fields, so every setting has one, with the same help.
_STORE_FIELDS = ("store", "database", "cluster", "log_format", "log_level")
_API_FIELDS = tuple(f for f in Settings.model_fields if f.startswith(("api_", "rpc_")) or f == "redis_url")
_INGEST_FIELDS = tuple(f for f in Settings.model_fields if f not in _STORE_FIELDS and f not in _API_FIELDS)
_LIST_FIELDS = ("contracts", "solver_accounts", "bridges", "api_trusted_proxies", "api_cors_origins")


def _option_for(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    field = Settings.model_fields[name]
    flag = flag_name(name)
    env = f"INDEXER_{name.upper()}"
    default = field.default if field.default_factory is None else field.default_factory()
    if isinstance(default, list):
        shown = ",".join(default) or "none"
    else:
        shown = "none" if default is None else default
    description = field.description or ""
    text = f"{description[:1].upper()}{description[1:]}. [env {env}; default {shown}]"
    annotation = field.annotation
    if annotation is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=text)
    if name in _LIST_FIELDS:
        return click.option(flag, name, multiple=True, help=text + " Repeatable.")
    choices = getattr(annotation, "__args__", None)
    if getattr(annotation, "__origin__", None) is Literal and choices:
        return click.option(flag, name, type=click.Choice(list(choices)), help=text)
    kind = {int: int, float: float}.get(annotation) or next(
        (t for t in (int, float) if choices and t in choices), str)
    return click.option(flag, name, type=kind, help=text)


def _options(fields: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(fields):
            fn = _option_for(name)(fn)
        return fn

    return apply


def _store_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = _options(_STORE_FIELDS)(fn)
    return click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="INDEXER_CONFIG",
                        help="TOML file with settings: top-level keys named like the INDEXER_* variables, "
                             "lower case. [env INDEXER_CONFIG]")(fn)


_ingest_options = _options(_INGEST_FIELDS)
_api_options = _options(_API_FIELDS)


def _flag_values(kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(--config file, settings given as flags); repeatable flags not given are left out."""
    overrides = dict(kwargs)
    config_file = overrides.pop("config_file", None)
    for key in _LIST_FIELDS:
        if overrides.get(key):
            overrides[key] = list(overrides[key])
        else:
            overrides.pop(key, None)
    return config_file, overrides


def _reindex_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--reindex", is_flag=True,
        help="Write every height of the range again for the tracked contracts, replacing rows other streams or an "
             "older decoder version stored (after a decoder upgrade or a --solver-account change).")(fn)


def _settings(kwargs: dict[str, Any]) -> Settings:
    config_file, overrides = _flag_values(kwargs)
    try:
        settings = load_settings(config_file, **overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(settings.log_format, settings.log_level)
    return settings


def _fail(message: str, code: int = EXIT_RUNTIME) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _connect(settings: Settings, *, migrate: bool):  # type: ignore[no-untyped-def]
    """Open the store (and apply pending migrations); raises StoreError or MigrationError."""
    from indexer.store import migrations
    from indexer.store.client import Store

    store = Store(settings.store, settings.database, settings.cluster)
    if migrate:
        try:
            applied = migrations.migrate(store)
        except BaseException:
            store.close()
            raise
        if applied:
            log.info("migrations applied", versions=[m.version for m in applied])
    return store


def _open_store(settings: Settings, *, migrate: bool, existing: bool = False):  # type: ignore[no-untyped-def]
    """The store, or exit 1 with the reason: for commands that run once.

    ``existing``: for commands that only read (status, query, ...), which must not leave an empty
    data folder behind when the path is mistyped."""
    from indexer.store import migrations
    from indexer.store.client import StoreError, parse_dsn

    if existing and settings.store.startswith("chdb://"):
        path = Path(parse_dsn(settings.store)[0].removeprefix("chdb://"))
        if not path.is_dir():
            _fail(f"no store at {path} (--store {settings.store}): check the path; this command does not create "
                  "a store (`intents-indexer migrate` or `run` does)", EXIT_CONFIG)
    try:
        return _connect(settings, migrate=migrate)
    except (StoreError, migrations.MigrationError) as exc:
        _fail(str(exc))


class _Group(click.Group):
    """Lists each command with its whole first sentence, wrapped: click's default cuts it at the
    terminal width with '...'."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="intents-indexer")
def main() -> None:
    """Index NEAR Intents Verifier and Solver activity from NEAR blocks into ClickHouse.

    Every option can also be set with an INDEXER_* environment variable or in a TOML file
    given with --config; flags win over the environment, which wins over the file.
    """


def _install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop``. The stop is logged once: Ctrl-C under `make run` or a supervisor
    that signals both the group and the process deliver the same request twice."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.debug("already stopping", signal=sig.name)
            return
        log.info("stopping after the current batch", signal=sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
@_ingest_options
@_api_options
@click.option("--start-block", type=click.IntRange(min=0), help="Height to start from when there is no checkpoint yet "
                                              "(default: the latest final block).")
@_reindex_option
def run(start_block: int | None, reindex: bool, **kwargs: Any) -> None:
    """Follow the chain forever from the checkpoint, --start-block, or the latest final block.

    SIGINT/SIGTERM finish the current batch, write the checkpoint and exit 0. When the source
    cannot be reached the daemon says so and retries with backoff. Heights another stream
    (a backfill) already wrote for the same contracts are left as they are.
    """
    settings = _settings(kwargs)
    asyncio.run(_run(settings, start_block, reindex))


async def _run(settings: Settings, start_block: int | None, reindex: bool = False) -> None:
    await _Daemon(settings, start_block, reindex).run()


class _Daemon:
    """``run``, step by step: connect the store, open the source, plan where to start, run the
    pipeline until stopped; when the source or a ClickHouse server cannot be reached, back off
    and go round again (resuming re-reads the checkpoint, so a retry loses and repeats nothing).
    """

    def __init__(self, settings: Settings, start_block: int | None, reindex: bool = False):
        self.settings = settings
        self.start_block = start_block
        self.reindex = reindex
        self.stop = asyncio.Event()
        self.store: Any = None
        self.delay = settings.retry_base_delay
        self.health = Health(settings.ready_max_lag_blocks)
        self.api: Any = None  # the API's runner, with --api-port
        self.api_store: Any = None  # the API's own connection to a ClickHouse server

    async def run(self) -> None:
        _install_signal_handlers(self.stop)
        metrics_runner = await serve_health(self.settings, self.health)
        background = self._start_rollups()
        try:
            while not self.stop.is_set():
                await self._round()
        finally:
            if background is not None:
                # let a round in progress finish before the store closes under it
                self.stop.set()
                await asyncio.gather(background, return_exceptions=True)
            if self.api is not None:
                await self.api.cleanup()
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            if self.store is not None:
                self.store.close()
            if self.api_store is not None:
                self.api_store.close()

    async def _start_api(self) -> None:
        """With --api-port, serve the API once the store is open. The embedded store allows one
        process, so the API shares the daemon's connection; a server gets a connection of its own
        (the daemon's is replaced when it reconnects)."""
        if self.settings.api_port is None or self.api is not None:
            return
        from indexer.api.app import start
        from indexer.store.client import Store

        if not self.store.embedded:
            self.api_store = await asyncio.to_thread(Store, self.settings.store, self.settings.database)
        self.api = await start(self.settings, self.store if self.store.embedded else self.api_store)

    def _start_rollups(self) -> asyncio.Task[None] | None:
        """Rollups every --rollup-interval, each followed by a refresh of the /metrics rollup gauges."""
        from indexer.exporter import install
        from indexer.rollup.lease import RollupLease
        from indexer.rollup.runner import run_forever

        exporter = install(self.settings.exporter_top_solvers, self.settings.exporter_top_tokens,
                           self.settings.bridge_rules)
        serving = self.settings.metrics_port is not None
        if not self.settings.rollup_interval and not serving:
            return None
        return asyncio.create_task(run_forever(
            lambda: self.store, self.settings.rollup_interval or 10.0, self.stop,
            exporter.gauges.refresh if serving else None, rollups=self.settings.rollup_interval > 0,
            lease=RollupLease(self.settings.lease_ttl, self.settings.lease_settle)))

    async def _round(self) -> None:
        """One attempt: index until stopped, or handle the failure that ended it."""
        from clickhouse_connect.driver.exceptions import Error as ClickHouseError

        from indexer.pipeline import ChainBreakError
        from indexer.sources import SourceError
        from indexer.store.client import StoreError
        from indexer.store.migrations import MigrationError
        from indexer.store.streams import LeaseError
        from indexer.store.writer import FingerprintError

        try:
            await self._connect_store()
            await self._start_api()
            await self._index()
        except FingerprintError as exc:
            _fail(str(exc), EXIT_CONFIG)
        except LeaseError as exc:
            _fail(str(exc))
        except SourceError as exc:
            self.health.source_error = str(exc)
            log.error("source unavailable; retrying", error=str(exc), retry_in_s=round(self.delay, 1))
            await self._back_off()
        except (StoreError, ClickHouseError) as exc:
            self._store_failed(exc)
            await self._back_off()
        except (ChainBreakError, MigrationError) as exc:
            _fail(str(exc))

    async def _connect_store(self) -> None:
        if self.store is None:
            # A daemon waits for its store (a server that is still starting, or restarting).
            self.store = await asyncio.to_thread(_connect, self.settings, migrate=self.settings.auto_migrate)
            self.health.store_ok()

    async def _index(self) -> None:
        """Open the source, plan from the checkpoint, run the pipeline until stopped."""
        from indexer.pipeline import STOPPED, Pipeline, plan_live, until_stopped
        from indexer.sources import open_source

        async with open_source(self.settings) as source:
            plan = await until_stopped(
                plan_live(self.store, self.settings, source, self.start_block, reindex=self.reindex), self.stop)
            if plan is STOPPED:
                return
            self.health.source_error = None  # the source answered the plan
            self.health.committed_height = plan.resume_height - 1
            # Readiness needs the chain head; it is asked for only when it is served.
            head = asyncio.create_task(follow_head(source, self.health)) if self.settings.metrics_port else None
            try:
                log.info("indexing", source=source.name, from_height=plan.resume_height,
                         contracts=self.settings.contracts)
                progress = await Pipeline(self.settings, self.store, source, plan, _log_progress(plan)).run(self.stop)
            finally:
                if head is not None:
                    head.cancel()
            self.delay = self.settings.retry_base_delay
            log.info("stopped", height=progress.height, blocks=progress.blocks)

    def _store_failed(self, exc: Exception) -> None:
        from indexer.store.client import redact

        if self.store is None and self.settings.store.startswith("chdb://"):
            _fail(str(exc))  # an embedded store that cannot open will not open by waiting
        self.health.store_error = str(exc).strip().splitlines()[0][:500]
        log.error("store unavailable; retrying", store=redact(self.settings.store),
                  error=str(exc).strip().splitlines()[0][:500], retry_in_s=round(self.delay, 1))
        if self.store is not None:
            self.store.close()
            self.store = None

    async def _back_off(self) -> None:
        """Wait before the next attempt (a stop ends the wait at once); each wait doubles the next."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=self.delay)
        except TimeoutError:
            pass
        self.delay = min(self.delay * 2, max(self.settings.retry_max_delay, 30.0))


def _log_progress(plan: Any, every: float = 10.0) -> Callable[[Any], None]:
    last = [time.monotonic()]

    def report(p: Any) -> None:
        now = time.monotonic()
        if now - last[0] < every:
            return
        last[0] = now
        fields: dict[str, Any] = {
            "height": p.height, "blocks": p.blocks, "blocks_per_s": round(p.blocks / p.elapsed, 1),
            "mb_per_s": round(p.bytes / p.elapsed / 1e6, 1),
        }
        if p.end_height is not None:
            remaining = max(p.end_height - p.height, 0)
            span = max(p.height - p.start_height + 1, 1)
            fields["percent"] = round(100 * (1 - remaining / max(p.end_height - p.start_height + 1, 1)), 1)
            fields["eta_s"] = round(remaining * p.elapsed / span)
        log.info("progress", **fields)

    return report


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
@_ingest_options
@click.option("--from", "from_height", type=click.IntRange(min=0), required=True, help="First height to index.")
@click.option("--to", "to_height", type=click.IntRange(min=0),
              help="Last height to index, at least --from (default: the latest final block).")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Progress bar (default: on a terminal; periodic log lines otherwise).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Split the range into this many contiguous parts, each its own stream (each resumes on its own), "
                   "decoded by as many processes. On the embedded store this process writes what they decode.")
@_reindex_option
def backfill(from_height: int, to_height: int | None, show_progress: bool | None, workers: int, reindex: bool,
             **kwargs: Any) -> None:
    """Index the heights --from..--to and exit.

    Interrupted backfills resume from their checkpoint (without --to too: the head at the first
    launch is kept as the end). Heights another stream already wrote for the same contracts are
    left as they are, so a finished range run again does nothing; --reindex rewrites it.
    """
    if to_height is not None and to_height < from_height:
        raise click.BadParameter(f"--to {to_height} is below --from {from_height}: the range holds no heights",
                                 param_hint="'--to'")
    settings = _settings(kwargs)
    store = _open_store(settings, migrate=settings.auto_migrate)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    if workers > 1:
        code = asyncio.run(_backfill_parallel(settings, store, from_height, to_height, workers, reindex))
    else:
        code = asyncio.run(_backfill(settings, store, from_height, to_height, show_progress, reindex))
    sys.exit(code)


def _resume_command() -> str:
    """The command line that finishes an interrupted backfill: the same arguments (a backfill
    without --to stored the end it chose, and resumes up to it)."""
    import shlex

    return shlex.join(["intents-indexer", *sys.argv[1:]])


async def _backfill(settings: Settings, store: Any, start: int, end: int | None, show_progress: bool,
                    reindex: bool = False) -> int:
    from indexer.pipeline import ChainBreakError, Pipeline, plan_backfill
    from indexer.sources import SourceError, open_source
    from indexer.store.streams import LeaseError
    from indexer.store.writer import FingerprintError

    stop = asyncio.Event()
    _install_signal_handlers(stop)
    health = Health(settings.ready_max_lag_blocks)
    health.store_ok()  # opened by the caller
    from indexer.exporter import install

    install(settings.exporter_top_solvers, settings.exporter_top_tokens, settings.bridge_rules)  # counters of the rows this backfill commits
    metrics_runner = await serve_health(settings, health)
    try:
        async with open_source(settings) as source:
            plan = await plan_backfill(store, settings, source, start, end, reindex=reindex)
            if plan is None:
                return EXIT_OK
            end = plan.end_height
            health.head_height = end  # a backfill is ready (caught up) when it reaches --to
            if end < start:
                _fail(f"--from {start} is beyond the source's latest final block {end}: "
                      "give a lower --from, or wait for the chain to get there", EXIT_CONFIG)
            health.committed_height = plan.resume_height - 1
            log.info("backfill", source=source.name, from_height=plan.resume_height, to_height=end,
                     contracts=settings.contracts)
            if show_progress:
                progress = await _with_progress_bar(settings, store, source, plan, stop)
            else:
                progress = await Pipeline(settings, store, source, plan, _log_progress(plan)).run(stop)
        if progress.blocks == 0 and plan.resume_height == start and not stop.is_set():
            log.warning("the source has no blocks in this range; nothing was indexed", from_height=start,
                        to_height=end, source=source.name)
        summary = dict(height=progress.height, blocks=progress.blocks, rows=progress.rows,
                       chain_breaks=progress.chain_breaks, seconds=round(progress.elapsed, 2),
                       blocks_per_s=round(progress.blocks / progress.elapsed, 1),
                       mb_per_s=round(progress.bytes / progress.elapsed / 1e6, 1))
        return _backfill_outcome(not (stop.is_set() and progress.height < end), end, summary)
    except FingerprintError as exc:
        _fail(str(exc), EXIT_CONFIG)
    except (SourceError, ChainBreakError, LeaseError) as exc:
        _fail(str(exc))
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        store.close()
    return EXIT_RUNTIME


def _backfill_outcome(finished: bool, end: int, summary: dict[str, Any]) -> int:
    """Log how a backfill ended; exit 3 with the command that resumes it when it stopped early."""
    if not finished:
        resume = _resume_command()
        log.warning(f"backfill stopped before --to {end}; resume with: {resume}", resume=resume, **summary)
        return EXIT_STOPPED
    log.info("backfill finished", **summary)
    return EXIT_OK


async def _backfill_parallel(settings: Settings, store: Any, start: int, end: int | None, workers: int,
                             reindex: bool = False) -> int:
    """``backfill --workers N``: the parts run in N processes (indexer/parallel.py)."""
    from indexer.parallel import Parallel, WorkerError, plan_parts
    from indexer.sources import SourceError, open_source
    from indexer.store.streams import LeaseError
    from indexer.store.writer import FingerprintError

    stop = asyncio.Event()
    _install_signal_handlers(stop)
    try:
        async with open_source(settings) as source:
            end, parts = await plan_parts(store, settings, source, start, end, workers, reindex=reindex)
        if end < start:
            _fail(f"--from {start} is beyond the source's latest final block {end}: "
                  "give a lower --from, or wait for the chain to get there", EXIT_CONFIG)
        if all(p.plan is None for p in parts):
            log.info("range already indexed; nothing to do (--reindex writes it again)", workers=len(parts))
            return EXIT_OK
        log.info("backfill", from_height=start, to_height=end, contracts=settings.contracts,
                 parts=[f"{p.stream}: {p.plan.resume_height if p.plan else p.high + 1}..{p.high}" for p in parts])
        outcome = await Parallel(settings, store, parts, _log_parallel_progress(start, end)).run(stop)
        summary = dict(blocks=outcome.blocks, rows=outcome.rows, chain_breaks=outcome.chain_breaks,
                       seconds=round(outcome.elapsed, 2), blocks_per_s=round(outcome.blocks / outcome.elapsed, 1),
                       mb_per_s=round(outcome.bytes / outcome.elapsed / 1e6, 1), workers=len(parts),
                       heights=outcome.heights)
        return _backfill_outcome(outcome.finished, end, summary)
    except FingerprintError as exc:
        _fail(str(exc), EXIT_CONFIG)
    except (SourceError, LeaseError, WorkerError) as exc:
        _fail(str(exc))
    finally:
        store.close()
    return EXIT_RUNTIME


def _log_parallel_progress(start: int, end: int, every: float = 10.0) -> Callable[[Any], None]:
    last = [time.monotonic()]

    def report(o: Any) -> None:
        now = time.monotonic()
        if now - last[0] < every:
            return
        last[0] = now
        done = sum(max(0, h - p.low + 1) for p in o.parts for h in [o.heights.get(p.stream, p.low - 1)])
        log.info("progress", heights_done=done, percent=round(100 * done / max(end - start + 1, 1), 1),
                 rows=o.rows, streams=o.heights)

    return report


async def _with_progress_bar(settings: Settings, store: Any, source: Any, plan: Any, stop: asyncio.Event) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from indexer.pipeline import Pipeline

    total = (plan.end_height or plan.resume_height) - plan.resume_height + 1
    with Progress(TextColumn("[bold]backfill"), BarColumn(), TextColumn("{task.completed}/{task.total} heights"),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task("backfill", total=total, rate="")

        def update(p: Any) -> None:
            bar.update(task, completed=p.height - plan.resume_height + 1,
                       rate=f"{p.blocks / p.elapsed:,.0f} blocks/s {p.bytes / p.elapsed / 1e6:,.1f} MB/s")

        return await Pipeline(settings, store, source, plan, update).run(stop)


def _parse_time(value: str | None, param: str) -> int | None:
    """Unix seconds from unix seconds or an ISO 8601 time (UTC unless it names its zone)."""
    from datetime import UTC, datetime

    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time: give unix seconds or ISO 8601, e.g. "
                                 "2026-01-05T00:00:00Z or 2026-01-05", param_hint=param) from None
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp())


DEFAULT_API_PORT = 8080


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
@click.option("--once", is_flag=True, help="Apply the commits since each job's cursor once and exit.")
@click.option("--rebuild", is_flag=True, help="Recompute every bucket of --from..--to from the base tables "
                                              "(cursors stay where they are) and exit.")
@click.option("--from", "from_time", help="With --rebuild: first time (unix seconds or ISO 8601, UTC); "
                                           "default the oldest indexed block.")
@click.option("--to", "to_time", help="With --rebuild: end time, excluded; default just after the newest block.")
@click.option("--interval", type=click.FloatRange(min=0.1), help="Seconds between runs when neither --once nor "
                                                               "--rebuild is given. [default: --rollup-interval]")
def rollup(once: bool, rebuild: bool, from_time: str | None, to_time: str | None, interval: float | None,
           **kwargs: Any) -> None:
    """Update the rollup tables (solver_stats_*, intent_stats_*, receipt_stats_*, block_stats_*).

    Without --once or --rebuild it runs every --interval seconds until SIGINT/SIGTERM. `run`
    does the same by itself (--rollup-interval); one rollup process per store at a time.
    """
    start, end = _parse_time(from_time, "'--from'"), _parse_time(to_time, "'--to'")
    if (start is not None or end is not None) and not rebuild:
        raise click.UsageError("--from and --to go with --rebuild")
    if start is not None and end is not None and end <= start:
        raise click.BadParameter(f"--to {to_time} is not after --from {from_time}", param_hint="'--to'")
    settings = _settings(kwargs)
    from indexer.rollup import job
    from indexer.rollup.lease import RollupLease
    from indexer.store.streams import LeaseError

    store = _open_store(settings, migrate=settings.auto_migrate)
    lease = RollupLease(settings.lease_ttl, settings.lease_settle)
    try:
        try:
            lease.hold(store)
        except LeaseError as exc:
            _fail(f"the rollups of this store are running elsewhere: {exc}")
        renew = lambda: lease.hold(store)  # noqa: E731
        if rebuild:
            _rebuild(store, start, end, renew)
        elif once:
            for r in job.run_all(store, renew=renew):
                click.echo(f"{r.job}: {r.commits} commits, {r.buckets} buckets in {r.seconds:.3f} s")
        else:
            asyncio.run(_rollup_forever(store, interval or settings.rollup_interval or 10.0, lease))
    finally:
        lease.release()
        store.close()


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
@_api_options
@_options(("contracts",))  # which are workshop Verifiers and Solvers, for the --rpc-url fallback
def serve(**kwargs: Any) -> None:
    """Serve the HTTP API alone, against a ClickHouse server store.

    Several replicas can run behind a load balancer, sharing Redis (--redis-url) for the cache and
    the rate limits. --api-port defaults to 8080. The embedded store is refused: it allows one
    process per data path; serve the API inside the daemon with `run --api-port` instead.
    SIGINT/SIGTERM stop it (exit 0).
    """
    settings = _settings(kwargs)
    if settings.store.startswith("chdb://"):
        _fail(f"serve needs a ClickHouse server store (--store http://user:pass@host:8123/db), not the embedded "
              f"{settings.store}: an embedded store allows one process per data path, which the indexer holds. "
              "Serve the API inside the daemon instead: intents-indexer run --api-port PORT", EXIT_CONFIG)
    if settings.api_port is None:
        settings = settings.model_copy(update={"api_port": DEFAULT_API_PORT})
    store = _open_store(settings, migrate=False)
    asyncio.run(_serve(settings, store))


async def _serve(settings: Settings, store: Any) -> None:
    from indexer.api.app import start

    stop = asyncio.Event()
    _install_signal_handlers(stop)
    try:
        try:
            runner = await start(settings, store)
        except OSError as exc:
            _fail(f"cannot listen on {settings.api_host}:{settings.api_port}: {exc.strerror or exc}")
        await stop.wait()
        await runner.cleanup()
    finally:
        store.close()


def _rebuild(store: Any, start: int | None, end: int | None, renew: Any) -> None:
    from indexer.rollup import job

    if start is None or end is None:
        if not store.scalar(f"SELECT count() FROM {store.table('blocks')}"):
            click.echo("no blocks indexed: nothing to rebuild")
            return
        lo, hi = store.query(f"SELECT toUnixTimestamp(min(block_timestamp)), toUnixTimestamp(max(block_timestamp)) "
                             f"FROM {store.table('blocks')}")[1][0]
        start = lo if start is None else start
        end = hi + 1 if end is None else end
    written = job.rebuild(store, start, end, renew=renew)
    click.echo(f"rebuilt {written} buckets of {start}..{end}")


async def _rollup_forever(store: Any, interval: float, lease: Any) -> None:
    from indexer.rollup.runner import run_forever

    stop = asyncio.Event()
    _install_signal_handlers(stop)
    log.info("rolling up", interval_s=interval)
    await run_forever(lambda: store, interval, stop, lease=lease)


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
def migrate(**kwargs: Any) -> None:
    """Apply migrations/*.sql in order; safe to run twice.

    Refuses a store whose applied migration differs from the file of the same number.
    """
    settings = _settings(kwargs)
    from indexer.store import migrations

    store = _open_store(settings, migrate=False)
    try:
        applied = migrations.migrate(store)
    except migrations.MigrationError as exc:
        _fail(str(exc))
    finally:
        store.close()
    if applied:
        click.echo(f"applied {len(applied)} migration(s): " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
    else:
        click.echo(f"{settings.database} is up to date")


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
@click.option("--source", help="Source to ask for the head height (default auto); 'none' skips the head lag.")
@_options(("network", "lake_endpoint", "lake_bucket", "lake_region", "neardata_url"))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output: aligned tables, or one JSON object (for scripts).")
def status(source: str | None, fmt: str, **kwargs: Any) -> None:
    """Checkpoints (height and hash), head lag, and row counts per table."""
    settings = _settings({**kwargs, "source": source if source not in (None, "none") else None})
    from indexer.status import collect, render

    store = _open_store(settings, migrate=False, existing=True)
    try:
        report = asyncio.run(collect(settings, store, ask_head=source != "none"))
    finally:
        store.close()
    click.echo(render(report, fmt))


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output: an aligned table, a JSON list of objects, or CSV with a header. A FORMAT clause "
                   "at the end of SQL wins: ClickHouse's own output is printed.")
def query(sql: str, fmt: str, **kwargs: Any) -> None:
    """Run read-only SQL against the store, in its database (--database).

    Table names need no database, e.g. "SELECT count() FROM receipts". Writes and DDL are refused.
    """
    if not sql.strip().rstrip(";").strip():
        raise click.BadParameter('the query is empty: give SQL, e.g. "SELECT count() FROM receipts"',
                                 param_hint="'SQL'")
    settings = _settings(kwargs)
    from indexer.query import QueryError, run_query

    store = _open_store(settings, migrate=False, existing=True)
    try:
        click.echo(run_query(store, sql, fmt))
    except QueryError as exc:
        _fail(str(exc))
    finally:
        store.close()


def _confirm(summary: str, question: str, yes: bool) -> None:
    """Show what a command that changes the store will do and ask, unless --yes. Without a terminal
    to ask on, it refuses (exit 2): a script must say --yes. Declining exits 3: nothing changed."""
    click.echo(summary)
    if yes:
        return
    if not sys.stdin.isatty():
        _fail("stdin is not a terminal, so there is no one to confirm this: nothing was changed; "
              "add --yes to go ahead", EXIT_CONFIG)
    if not click.confirm(question, default=False):
        click.echo("cancelled: nothing was changed", err=True)
        sys.exit(EXIT_STOPPED)


def _yes_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--yes", "-y", "yes", is_flag=True,
                        help="Go ahead without asking. Without it the command shows what it will change and asks; "
                             "when stdin is not a terminal it refuses (exit 2).")(fn)


def _account(value: str | None, flag: str) -> str | None:
    from indexer.config import account_problem

    if value is None:
        return None
    account = value.strip().partition(":")[0].lower()
    problem = account_problem(account)
    if problem:
        raise click.BadParameter(f"{value!r} is not a NEAR account id: {problem} (e.g. intents.near)",
                                 param_hint=f"'{flag}'")
    return account


@main.command(epilog=EXIT_CODES_HELP)
@_store_options
@click.option("--to", "to_height", type=click.IntRange(min=0), required=True,
              help="Keep what was indexed up to this height, inclusive; remove everything above it.")
@click.option("--contract", "contract",
              help="Rewind only this contract's rows (a NEAR account id). Blocks stay while another contract "
                   "has rows above --to. Default: every contract and the blocks.")
@_yes_option
def rewind(to_height: int, contract: str | None, yes: bool, **kwargs: Any) -> None:
    """Remove what was indexed above --to (and the streams' progress past it), so the next run indexes it again.

    For every contract (or one, with --contract), the rows above --to go, every stream's record of
    having written them goes, and the streams that index them move back to --to: the next `run`
    (and a backfill of a range above --to, run again) re-indexes from --to + 1. It refuses (exit 1,
    naming the process) while a running stream may write those heights, and records a `rewind` row
    in the `commits` change feed so rollups recompute them. Shows what it will remove and asks for
    confirmation unless --yes; declining exits 3.
    """
    account = _account(contract, "--contract")
    settings = _settings(kwargs)
    from indexer.store import rewind as rewinding
    from indexer.store.streams import LeaseError

    store = _open_store(settings, migrate=settings.auto_migrate, existing=True)
    try:
        if not store.table_exists("streams"):
            _fail(f"{settings.database} has no tables: nothing was indexed, nothing to rewind", EXIT_CONFIG)
        preview = rewinding.plan(store, to_height, account)
        if preview.empty:
            click.echo(f"nothing indexed above {to_height}" + (f" for {account}" if account else "") +
                       ": nothing to do")
            return
        _confirm(preview.describe(), "Remove these rows and move the streams back?", yes)
        try:
            done, commit = rewinding.rewind(store, to_height, account, ttl=settings.lease_ttl,
                                            settle=settings.lease_settle)
        except LeaseError as exc:
            _fail(str(exc))
        removed = sum(done.rows.values())
        click.echo(f"rewound to {to_height}: removed {removed} row(s), moved {len(done.moves)} stream(s) back"
                   + (f"; change feed: operations #{commit.seq} (rewind)" if commit else ""))
    finally:
        store.close()


@main.group("dead-letters", cls=_Group, epilog=EXIT_CODES_HELP, invoke_without_command=True)
@_store_options
@click.option("--kind", help="Only this kind, e.g. chain_break, args, log, block (see the dead_letters table).")
@click.option("--since", "since", type=click.IntRange(min=0), help="Only blocks at or above this height.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="At most this many, newest first.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output: an aligned table (long reasons and payloads cut short), a JSON list of objects, "
                   "or CSV with a header (both in full).")
@click.pass_context
def dead_letters(ctx: click.Context, kind: str | None, since: int | None, limit: int, fmt: str, **kwargs: Any) -> None:
    """List dead letters: inputs the indexer stored aside instead of decoding, newest first.

    Each has its block height, shard, receipt, contract, kind, the reason and the raw payload.
    `dead-letters retry` decodes them again with the current decoder.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(kwargs)
    from indexer.query import QueryError, list_dead_letters

    store = _open_store(settings, migrate=False, existing=True)
    try:
        click.echo(list_dead_letters(store, kind=kind, since=since, limit=limit, fmt=fmt))
    except QueryError as exc:
        _fail(str(exc))
    finally:
        store.close()


@dead_letters.command("retry", epilog=EXIT_CODES_HELP)
@_store_options
@_options(("contracts", "solver_accounts"))
@click.option("--kind", help="Only dead letters of this kind: receipt, log or args (the kinds that keep their receipt).")
@click.option("--since", "since", type=click.IntRange(min=0), help="Only dead letters at or above this height.")
@_yes_option
def dead_letters_retry(kind: str | None, since: int | None, yes: bool, **kwargs: Any) -> None:
    """Decode dead letters again with the current decoder (after a fix), exactly once.

    Each selected dead letter's receipt is decoded again as a whole, with the contract roles and
    solver accounts as configured (--contract, --solver-account; give those the daemon has), and
    every row of that receipt is replaced: what decodes now is written once, what still fails stays
    one dead letter with the new reason, so a second retry changes nothing. A `retry` row in the
    `commits` change feed names the heights. Block-level dead letters (block, shard, chain_break)
    and those stored before migration 0003 keep no receipt: re-index them with backfill --reindex.
    It refuses (exit 1, naming the process) while a running stream may write those heights; shows
    what it will do and asks unless --yes; declining exits 3.
    """
    settings = _settings(kwargs)
    from indexer import deadletters
    from indexer.store.streams import LeaseError

    store = _open_store(settings, migrate=settings.auto_migrate, existing=True)
    try:
        if not store.table_exists("dead_letters"):
            _fail(f"{settings.database} has no tables: nothing was indexed, no dead letters", EXIT_CONFIG)
        first = deadletters.preview(store, kind=kind, since=since)
        if not first.letters:
            click.echo(first.describe() + "\nnothing to retry")
            return
        _confirm(first.describe(), "Decode them again and replace their receipts' rows?", yes)
        try:
            report = deadletters.retry(store, settings, kind=kind, since=since)
        except LeaseError as exc:
            _fail(str(exc))
        rows = ", ".join(f"{t} {n}" for t, n in sorted(report.rows.items())) or "none"
        click.echo(f"retried {report.retried} dead letter(s) of {report.receipts} receipt(s): "
                   f"{report.fixed_receipts} receipt(s) decode now, {report.still_failing} dead letter(s) still fail; "
                   f"rows written: {rows}"
                   + (f"; change feed: operations #{report.commit.seq} (retry)" if report.commit else ""))
    finally:
        store.close()


# Environment variables the sources read besides the INDEXER_* ones; secrets are never printed.
_SOURCE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
               "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "HTTPS_PROXY")
_SECRET_ENV = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


@main.command("config", epilog=EXIT_CODES_HELP)
@_store_options
@_ingest_options
@_api_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output: an aligned table, or JSON.")
def config_command(fmt: str, **kwargs: Any) -> None:
    """Print the effective settings and where each came from: flag, env, file or default.

    Takes the same flags as run and backfill, so a command line can be checked before it runs.
    Passwords in URLs and AWS secrets are shown as ***.
    """
    import os

    config_file, overrides = _flag_values(kwargs)
    settings = _settings(kwargs)
    origins = setting_origins(config_file, **overrides)
    values = redacted(settings)
    env = {}
    for name in _SOURCE_ENV:
        value = os.environ.get(name) or os.environ.get(name.lower())
        if value:
            env[name] = "***" if name in _SECRET_ENV else (
                _redact_url(value) if "://" in value else (value[:4] + "***" if name == "AWS_ACCESS_KEY_ID" else value))
    if fmt == "json":
        import orjson

        out = {"settings": {k: {"value": v, "source": origins[k]} for k, v in values.items()}, "environment": env}
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    from indexer.query import format_table

    def shown(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, list) else "(none)" if v is None else str(v)

    rows = [(k, shown(v), origins[k]) for k, v in values.items()]
    text = format_table(["setting", "value", "source"], rows).rsplit("\n", 1)[0]  # no row count
    if env:
        text += "\n\n" + format_table(["environment", "value"], list(env.items())).rsplit("\n", 1)[0]
    click.echo(text)


def _redact_url(url: str) -> str:
    from indexer.store.client import redact

    return redact(url)


def _register_commands() -> None:
    from indexer.simulate.command import simulate

    main.add_command(simulate)


_register_commands()
