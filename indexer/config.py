"""Every setting of the daemon, in one place.

Each field is settable three ways, highest priority first: a command-line flag, an
``INDEXER_<FIELD>`` environment variable, and a TOML file given with ``--config``
(top-level keys named like the fields). List fields accept JSON or comma-separated
values in the environment (``INDEXER_CONTRACTS=intents.near:verifier,solver.near``).
"""

from __future__ import annotations

import contextvars
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from indexer.bridges import DEFAULT_RULES as DEFAULT_BRIDGE_RULES
from indexer.bridges import parse as parse_bridges
from indexer.decode.roles import Role  # what each --contract is; decoding gives the roles meaning


class ConfigError(Exception):
    """A setting is wrong; the message says which and how to fix it."""


# NEAR account ids (nearcore's AccountId rules): 2..64 characters; dot-separated parts of lowercase
# letters and digits, where '-' and '_' may only stand between two of them. Implicit accounts
# (64 hex characters, or 0x + 40 hex) follow the same rules.
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_ACCOUNT_PART = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


def account_problem(account: str) -> str | None:
    """Why ``account`` is not a valid NEAR account id, or None when it is."""
    if not 2 <= len(account) <= 64:
        return f"it has {len(account)} character{'s' if len(account) != 1 else ''}; account ids have 2 to 64"
    bad = sorted({c for c in account if not (c.isascii() and (c.islower() or c.isdigit()) or c in "._-")})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}; use lowercase letters a-z, digits 0-9 and . - _"
    for part in account.split("."):
        if not part:
            return "it has an empty part; parts are separated by single dots, with none at the ends"
        if not _ACCOUNT_PART.fullmatch(part):
            return f"its part {part!r} has '-' or '_' at an end or next to another separator"
    return None


def _check_account(account: str, flag: str, spec: str) -> None:
    problem = account_problem(account)
    if problem:
        raise ConfigError(f"{flag} {spec!r}: {account!r} is not a NEAR account id: {problem} (e.g. intents.near)")


def flag_name(field: str) -> str:
    """The command-line flag of a setting."""
    return _FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


_FLAG_NAMES = {"contracts": "--contract", "solver_accounts": "--solver-account", "bridges": "--bridge",
               "auto_migrate": "--migrate"}


class ContractSpec(BaseModel, frozen=True):
    account: str
    role: Role = Role.NONE

    @classmethod
    def parse(cls, spec: str) -> "ContractSpec":
        account, _, role = spec.strip().partition(":")
        if not account:
            raise ConfigError(f"--contract {spec!r}: expected ACCOUNT[:ROLE]")
        account = account.lower()  # account ids are lowercase; accept what users copy from explorers
        try:
            parsed_role = Role(role) if role else Role.NONE
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise ConfigError(f"--contract {spec!r}: unknown role {role!r}; use one of: {roles}") from None
        _check_account(account, "--contract", spec)
        return cls(account=account, role=parsed_role)

    def __str__(self) -> str:
        return f"{self.account}:{self.role.value}"


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            import json

            return json.loads(value)
        return [v for v in (p.strip() for p in value.split(",")) if v]
    return value


_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("indexer_toml", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        path = _toml_file.get()
        self._data: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    self._data = tomllib.load(fh)
            except FileNotFoundError:
                raise ConfigError(f"config file {path} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
            unknown = set(self._data) - set(settings_cls.model_fields)
            if unknown:
                raise ConfigError(f"config file {path}: unknown keys {sorted(unknown)}")

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXER_", extra="ignore")

    # --- store ---
    # Descriptions double as --help text (see cli._option_for).
    store: str = Field("chdb://./data", description="ClickHouse DSN: chdb://PATH (embedded) or http(s)://user:pass@host:8123/db")
    database: str = Field("near_intents", description="ClickHouse database holding the tables")
    auto_migrate: bool = Field(True, description="apply pending migrations on run and backfill")
    cluster: str | None = Field(
        None, description="ClickHouse cluster name: DDL ON CLUSTER, Replicated tables, Distributed tables over "
                          "<table>_local (a server store only; README \"Clusters\")"
    )

    # --- source ---
    source: str = Field("auto", description="where blocks come from: lake | neardata | files:PATH | auto (lake with AWS credentials, else neardata)")
    network: Literal["mainnet", "testnet"] = Field("mainnet", description="NEAR network of the lake bucket / neardata host")
    lake_endpoint: str | None = Field(None, description="S3 endpoint URL for self-hosted or S3-compatible Lake mirrors")
    lake_bucket: str | None = Field(None, description="Lake bucket name (default near-lake-data-<network>)")
    lake_region: str = Field("eu-central-1", description="S3 region of the Lake bucket")
    neardata_url: str | None = Field(None, description="neardata API base URL (default https://<network>.neardata.xyz)")
    prefetch: int = Field(16, ge=1, le=512, description="blocks fetched concurrently ahead of the decoder")
    shard_retry_limit: int = Field(12, ge=0, description="retries of a missing shard file or failed fetch before giving up")
    retry_base_delay: float = Field(0.2, gt=0, description="first retry delay in seconds; doubles each try")
    retry_max_delay: float = Field(10.0, gt=0, description="longest delay between retries in seconds")
    poll_interval: float = Field(0.3, gt=0, description="seconds between polls for a new block at the chain head")
    wait_log_interval: float = Field(
        10.0, ge=0, description="seconds between info lines while a source waits for a block, shard or host "
                                "(the first retry is always logged)"
    )
    strict_chain: bool = Field(False, description="stop when a block's prev_hash does not match the previous block")

    # --- what to index ---
    contracts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["intents.near:verifier"],
        description="tracked contracts as ACCOUNT[:ROLE]; roles verifier, workshop-verifier, workshop-solver, "
                    "none (receipts and NEP-297 events only; the default when :ROLE is left out)",
    )
    solver_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list, description="accounts known to be solvers")
    bridges: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_BRIDGE_RULES),
        description="the bridge of a token, by its token contract: SUFFIX=NAME entries tried in order (a contract "
                    "equal to SUFFIX or ending in .SUFFIX); others are 'unknown'. Applied when rollups are read",
    )
    resolve_all_tx: bool = Field(
        False,
        description="decode every shard in full (slower); skipped shards are read for their receipt chains anyway, "
                    "so tx hashes resolve either way",
    )
    tx_lookback_blocks: int = Field(
        250, ge=0, description="blocks after its transaction within which a receipt still gets its tx_hash; replayed on resume"
    )

    # --- ingest ---
    batch_blocks: int = Field(2000, ge=1, description="blocks per store insert batch during catch-up")
    batch_rows: int = Field(10000, ge=1, description="rows per store insert batch during catch-up")
    flush_interval: float = Field(0.5, gt=0, description="longest seconds rows wait before an insert at the chain head")
    lease_ttl: float = Field(
        60.0, gt=0, description="seconds a stream's lease lasts without renewal; another process may take the "
                                "stream over after that"
    )
    lease_settle: float = Field(
        2.0, ge=0, description="seconds a writer waits on a ClickHouse server after marking a batch before it reads "
                               "the other streams' marks (longer than replication lag; unused on the embedded store)"
    )

    # --- observability ---
    log_format: Literal["auto", "console", "json"] = Field("auto", description="console on a terminal, JSON otherwise")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="lowest level logged")
    metrics_port: int | None = Field(None, description="serve Prometheus /metrics, /healthz and /readyz on this port while running")
    metrics_host: str = Field("127.0.0.1", description="address of the /metrics, /healthz and /readyz listener")
    rollup_interval: float = Field(
        10.0, ge=0, description="seconds between rollup runs inside run, each followed by a refresh of the rollup "
                                "gauges on /metrics (0: no rollups in the daemon; `intents-indexer rollup` runs them)"
    )
    exporter_top_solvers: int = Field(
        20, ge=1, description="solvers per contract with their own label on /metrics (the most executions in 24h); "
                              "the others are summed as solver 'other'"
    )
    exporter_top_tokens: int = Field(
        20, ge=1, description="tokens per contract with their own label on /metrics (the most settlements in 24h) "
                              "and bridges with their own label (the most withdrawals); the rest are 'other'"
    )
    ready_max_lag_blocks: int = Field(
        100, ge=0, description="/readyz answers 503 while the newest stored block is more than this many blocks "
                               "behind the chain head"
    )

    # --- API (indexer/api; `serve`, or `run --api-port`) ---
    api_port: int | None = Field(None, description="serve the HTTP API under /api/v1 on this port (with `run`: "
                                                   "inside the daemon, on the embedded store)")
    api_host: str = Field("127.0.0.1", description="address the API listens on")
    redis_url: str | None = Field(None, description="Redis for the API's shared cache and rate limits, e.g. "
                                                    "redis://localhost:6379/0 (none: in-process cache and limiter)")
    api_cache_ttl: float = Field(30.0, gt=0, description="seconds an intent stays in the Redis cache")
    api_local_cache_ttl: float = Field(2.0, ge=0, description="seconds an intent stays in the in-process cache "
                                                              "(0: no in-process cache)")
    api_local_cache_size: int = Field(10_000, ge=1, description="intents the in-process cache holds at most")
    api_feed_interval: float = Field(0.05, gt=0, description="seconds between reads of the commits feed: at most "
                                                            "this long after a commit, its changes are evicted "
                                                            "from the caches and pushed over WebSocket")
    api_read_limit: str = Field("100/minute", description="rate limit of reads per client (IP or API key), in the "
                                                          "`limits` notation: 10/second, 100/minute, 20/15 minutes")
    api_validate_limit: str = Field("20/15 minutes", description="rate limit of POST /api/v1/intents/validate per "
                                                                 "client (IP or API key)")
    api_limit_policy: Literal["fail-open", "fail-closed"] = Field(
        "fail-open", description="with Redis unreachable, fail-open serves requests unlimited, fail-closed answers "
                                 "503 until Redis is back")
    api_key_header: str = Field("X-API-Key", description="request header that names an API key; a client sending "
                                                         "one is limited per key instead of per IP")
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is "
                                          "believed (none: the client is the connecting address)")
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins allowed to call the API from a browser (none: CORS closed; * "
                                          "allows any)")
    api_max_page: int = Field(100, ge=1, le=1000, description="largest `limit` of GET /api/v1/intents")
    rpc_url: str | None = Field(None, description="NEAR JSON-RPC node the API asks (view calls get_intent_status / "
                                                  "get_solver_info) for a workshop intent or solver the store does "
                                                  "not know yet, e.g. https://rpc.testnet.near.org (none: 404)")
    rpc_timeout: float = Field(3.0, gt=0, description="seconds one JSON-RPC request may take")
    rpc_attempts: int = Field(3, ge=1, le=10, description="tries of a JSON-RPC request that failed in a way worth "
                                                          "retrying (connection, timeout, 5xx, node busy)")
    rpc_cache_ttl: float = Field(5.0, ge=0, description="seconds an answer of the node is reused (0: not cached)")

    @field_validator("api_read_limit", "api_validate_limit")
    @classmethod
    def _valid_limit(cls, v: str) -> str:
        from limits import parse_many

        try:
            parse_many(v)
        except ValueError:
            raise ConfigError(f"rate limit {v!r} is not in the `limits` notation, e.g. 100/minute or "
                              "20/15 minutes") from None
        return v

    @field_validator("api_trusted_proxies", "api_cors_origins", mode="before")
    @classmethod
    def _api_lists(cls, v: Any) -> Any:
        return _split_list(v)

    @field_validator("api_trusted_proxies")
    @classmethod
    def _valid_proxies(cls, v: list[str]) -> list[str]:
        import ipaddress

        for net in v:
            try:
                ipaddress.ip_network(net.strip(), strict=False)
            except ValueError:
                raise ConfigError(f"--api-trusted-proxies {net!r} is not an address or CIDR range "
                                  "(e.g. 10.0.0.0/8)") from None
        return v

    @field_validator("rpc_url")
    @classmethod
    def _valid_rpc(cls, v: str | None) -> str | None:
        if v is not None and (urlsplit(v).scheme not in ("http", "https") or not urlsplit(v).hostname):
            raise ConfigError(f"--rpc-url {_redact(v)!r}: use http(s)://host[:port][/path], e.g. "
                              "https://rpc.mainnet.near.org")
        return v

    @field_validator("redis_url")
    @classmethod
    def _valid_redis(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"--redis-url {_redact(v)!r}: use redis://host:6379/0, rediss://... or "
                              "unix:///path/redis.sock")
        return v

    @field_validator("store")
    @classmethod
    def _valid_store(cls, v: str) -> str:
        if v.startswith("chdb://"):
            if not v.removeprefix("chdb://").strip():
                raise ConfigError("--store 'chdb://' needs a folder: chdb://PATH, e.g. chdb://./data")
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https", "clickhouse", "clickhouses") or not parts.hostname:
            raise ConfigError(f"--store {_redact(v)!r} is not a store DSN: use chdb://PATH (embedded) or "
                              "http(s)://user:pass@host:8123/database (a ClickHouse server)")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ConfigError(f"--store {_redact(v)!r}: the port is not a number") from None
        return v

    @field_validator("cluster")
    @classmethod
    def _valid_cluster(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not _CLUSTER_NAME.fullmatch(v):
            raise ConfigError(f"--cluster {v!r} is not a cluster name: use the name of a cluster in the servers' "
                              "remote_servers (letters, digits, '_', '-', '.')")
        return v

    @model_validator(mode="after")
    def _cluster_needs_server(self) -> "Settings":
        if self.cluster and self.store.startswith("chdb://"):
            from indexer.store.cluster import embedded_cluster_message

            raise ConfigError(embedded_cluster_message(self.cluster))
        return self

    @field_validator("source")
    @classmethod
    def _valid_source(cls, v: str) -> str:
        if v.startswith("files:"):
            if not v.removeprefix("files:").strip():
                raise ConfigError("--source 'files:' needs a folder: files:PATH (a folder in NEAR Lake layout)")
            return v
        if v not in ("auto", "lake", "neardata"):
            raise ConfigError(f"--source {v!r}: unknown source; use lake, neardata, files:PATH or auto")
        return v

    @field_validator("solver_accounts")
    @classmethod
    def _valid_solvers(cls, v: list[str]) -> list[str]:
        for account in v:
            _check_account(account.strip().lower(), "--solver-account", account)
        return v

    @field_validator("bridges")
    @classmethod
    def _valid_bridges(cls, v: list[str]) -> list[str]:
        try:
            parse_bridges(v)
        except ValueError as exc:
            raise ConfigError(f"--bridges: {exc}") from None
        return v

    @property
    def bridge_rules(self) -> list[tuple[str, str]]:
        return parse_bridges(self.bridges)

    @field_validator("contracts", "solver_accounts", "bridges", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)

    @field_validator("contracts")
    @classmethod
    def _valid_contracts(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one --contract is required")
        for spec in v:
            ContractSpec.parse(spec)
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # --- derived ---
    @property
    def contract_specs(self) -> list[ContractSpec]:
        return [ContractSpec.parse(s) for s in self.contracts]

    @property
    def lake_bucket_name(self) -> str:
        return self.lake_bucket or f"near-lake-data-{self.network}"

    @property
    def neardata_base_url(self) -> str:
        return (self.neardata_url or f"https://{self.network}.neardata.xyz").rstrip("/")


def _redact(url: str) -> str:
    """A URL with its password replaced, for messages (same rule as store.client.redact)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@", 1)).geturl()


def _reworded(exc: ValidationError) -> str:
    """Pydantic's errors as one line per setting, naming the flag and variable, without its links."""
    lines = []
    for err in exc.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        msg = re.sub(r"^Input should be ", "must be ", msg)
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f", got {_redact(value) if isinstance(value, str) else value!r}"
        if field in Settings.model_fields:
            lines.append(f"{field} ({flag_name(field)} / INDEXER_{field.upper()}): {msg}{shown}")
        else:
            lines.append(f"{field}: {msg}{shown}")
    return "invalid settings: " + "; ".join(lines)


def _given(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if v is not None and v != ()}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from flags (``overrides``; None means 'not given'), environment and TOML file."""
    token = _toml_file.set(Path(config_file) if config_file else None)
    try:
        try:
            return Settings(**_given(overrides))
        except ValidationError as exc:
            raise ConfigError(_reworded(exc)) from None
    finally:
        _toml_file.reset(token)


def setting_origins(config_file: str | Path | None = None, **overrides: Any) -> dict[str, str]:
    """Where each setting's effective value came from: flag, env INDEXER_X, file PATH or default.

    Mirrors the priority of :func:`load_settings` (flag > environment > file > default)."""
    env = {k.upper() for k in os.environ}
    file_keys: set[str] = set()
    if config_file:
        token = _toml_file.set(Path(config_file))
        try:
            file_keys = set(_TomlSource(Settings)())
        finally:
            _toml_file.reset(token)
    given = _given(overrides)
    out = {}
    for name in Settings.model_fields:
        if name in given:
            out[name] = f"flag {flag_name(name)}"
        elif f"INDEXER_{name.upper()}" in env:
            out[name] = f"env INDEXER_{name.upper()}"
        elif name in file_keys:
            out[name] = f"file {config_file}"
        else:
            out[name] = "default"
    return out


# Settings values that may hold credentials: URLs with a password.
SECRET_URL_FIELDS = ("store", "lake_endpoint", "neardata_url", "redis_url", "rpc_url")


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as plain values, with passwords in URLs replaced by ***."""
    out = settings.model_dump()
    for name in SECRET_URL_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = _redact(out[name])
    return out
