"""Every setting of the daemon, in one place.

Each field is settable three ways, highest priority first: a command-line flag, an
``INDEXER_<FIELD>`` environment variable, and a TOML file given with ``--config``
(top-level keys named like the fields). List fields accept JSON or comma-separated
values in the environment (``INDEXER_CONTRACTS=intents.near:verifier,solver.near``).
"""

from __future__ import annotations

import contextvars
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from indexer.decode.roles import Role  # what each --contract is; decoding gives the roles meaning


class ConfigError(Exception):
    """A setting is wrong; the message says which and how to fix it."""


class ContractSpec(BaseModel, frozen=True):
    account: str
    role: Role = Role.NONE

    @classmethod
    def parse(cls, spec: str) -> "ContractSpec":
        account, _, role = spec.strip().partition(":")
        if not account:
            raise ConfigError(f"--contract {spec!r}: expected ACCOUNT[:ROLE]")
        try:
            return cls(account=account.lower(), role=Role(role) if role else Role.NONE)
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise ConfigError(f"--contract {spec!r}: unknown role {role!r}; use one of: {roles}") from None

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
    store: str = Field("chdb://./data", description="ClickHouse DSN: chdb://PATH (embedded) or http(s)://user:pass@host:8123/db")
    database: str = Field("near_intents", description="ClickHouse database holding the tables")
    auto_migrate: bool = Field(True, description="apply pending migrations on run and backfill")

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
    strict_chain: bool = Field(False, description="stop when a block's prev_hash does not match the previous block")

    # --- what to index ---
    contracts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["intents.near:verifier"],
        description="tracked contracts as ACCOUNT[:ROLE]; roles verifier, workshop-verifier, workshop-solver",
    )
    solver_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list, description="accounts known to be solvers")
    resolve_all_tx: bool = Field(
        False,
        description="decode every shard so that every receipt's transaction hash is resolved (slower)",
    )
    tx_lookback_blocks: int = Field(
        250, ge=0, description="blocks after its transaction within which a receipt still gets its tx_hash; replayed on resume"
    )

    # --- ingest ---
    batch_blocks: int = Field(2000, ge=1, description="blocks per store insert batch during catch-up")
    batch_rows: int = Field(10000, ge=1, description="rows per store insert batch during catch-up")
    flush_interval: float = Field(0.5, gt=0, description="longest seconds rows wait before an insert at the chain head")

    # --- observability ---
    log_format: Literal["auto", "console", "json"] = Field("auto", description="console on a terminal, JSON otherwise")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="lowest level logged")
    metrics_port: int | None = Field(None, description="serve Prometheus /metrics on this port while running")
    metrics_host: str = Field("127.0.0.1", description="address of the /metrics listener")

    @field_validator("contracts", "solver_accounts", mode="before")
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


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from flags (``overrides``; None means 'not given'), environment and TOML file."""
    token = _toml_file.set(Path(config_file) if config_file else None)
    try:
        given = {k: v for k, v in overrides.items() if v is not None and v != ()}
        try:
            return Settings(**given)
        except Exception as exc:  # pydantic.ValidationError, with field names users can act on
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"invalid settings: {exc}") from None
    finally:
        _toml_file.reset(token)
