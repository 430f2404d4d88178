"""indexer.config: flags > environment > TOML, list parsing, roles and errors users can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.config import ConfigError, ContractSpec, Role, Settings, load_settings
from indexer.decode.block import DecoderConfig


@pytest.fixture
def toml(tmp_path: Path):
    def write(text: str) -> Path:
        p = tmp_path / "indexer.toml"
        p.write_text(text)
        return p

    return write


def test_defaults() -> None:
    s = load_settings()
    assert s.store == "chdb://./data" and s.database == "near_intents"
    assert s.contracts == ["intents.near:verifier"]
    assert s.contract_specs == [ContractSpec(account="intents.near", role=Role.VERIFIER)]
    assert s.solver_accounts == [] and s.resolve_all_tx is False and s.tx_lookback_blocks == 250
    assert s.lake_bucket_name == "near-lake-data-mainnet"
    assert s.neardata_base_url == "https://mainnet.neardata.xyz"


def test_priority_flags_over_env_over_toml(toml, monkeypatch: pytest.MonkeyPatch) -> None:
    path = toml('database = "from_toml"\nprefetch = 3\nnetwork = "testnet"\nbatch_rows = 7\n')
    s = load_settings(path)
    assert (s.database, s.prefetch, s.network, s.batch_rows) == ("from_toml", 3, "testnet", 7)

    monkeypatch.setenv("INDEXER_DATABASE", "from_env")
    monkeypatch.setenv("INDEXER_PREFETCH", "5")
    s = load_settings(path)
    assert (s.database, s.prefetch, s.network, s.batch_rows) == ("from_env", 5, "testnet", 7)

    s = load_settings(path, database="from_flag", prefetch=None, network=None)  # None: flag not given
    assert (s.database, s.prefetch, s.network, s.batch_rows) == ("from_flag", 5, "testnet", 7)
    assert s.lake_bucket_name == "near-lake-data-testnet"


def test_list_fields_priority(toml, monkeypatch: pytest.MonkeyPatch) -> None:
    path = toml('contracts = ["a.near:verifier", "b.near:workshop-solver"]\nsolver_accounts = ["t.near"]\n')
    assert load_settings(path).contracts == ["a.near:verifier", "b.near:workshop-solver"]
    assert load_settings(path).solver_accounts == ["t.near"]
    monkeypatch.setenv("INDEXER_CONTRACTS", "e.near:workshop-verifier")
    assert load_settings(path).contracts == ["e.near:workshop-verifier"]
    assert load_settings(path, contracts=["f.near"], solver_accounts=()).contracts == ["f.near"]
    assert load_settings(path, solver_accounts=()).solver_accounts == ["t.near"]  # () means not given


def test_env_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_CONTRACTS", " x.near:verifier, y.near ,, z.near:workshop-solver ")
    monkeypatch.setenv("INDEXER_SOLVER_ACCOUNTS", "s1.near,s2.near")
    s = load_settings()
    assert s.contracts == ["x.near:verifier", "y.near", "z.near:workshop-solver"]
    assert [c.role for c in s.contract_specs] == [Role.VERIFIER, Role.NONE, Role.WORKSHOP_SOLVER]
    assert s.solver_accounts == ["s1.near", "s2.near"]


def test_env_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_CONTRACTS", '["x.near:verifier", "w.near:workshop-verifier"]')
    monkeypatch.setenv("INDEXER_SOLVER_ACCOUNTS", ' ["Solver-Priv-Liq.near"] ')
    s = load_settings()
    assert s.contracts == ["x.near:verifier", "w.near:workshop-verifier"]
    assert s.solver_accounts == ["Solver-Priv-Liq.near"]
    assert DecoderConfig.from_settings(s).solver_accounts == frozenset({"solver-priv-liq.near"})


def test_env_bad_json_list_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_CONTRACTS", '["x.near:verifier"')
    with pytest.raises(ConfigError, match="contracts"):
        load_settings()


def test_env_booleans_and_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_RESOLVE_ALL_TX", "true")
    monkeypatch.setenv("INDEXER_TX_LOOKBACK_BLOCKS", "12")
    monkeypatch.setenv("INDEXER_METRICS_PORT", "9108")
    s = load_settings()
    assert s.resolve_all_tx is True and s.tx_lookback_blocks == 12 and s.metrics_port == 9108
    d = DecoderConfig.from_settings(s)
    assert d.resolve_all_tx is True and d.lookback == 12


@pytest.mark.parametrize("where", ["flag", "env", "toml"])
def test_bad_role_lists_the_roles(where: str, toml, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs: dict = {}
    path = None
    if where == "flag":
        kwargs["contracts"] = ["intents.near:verifer"]
    elif where == "env":
        monkeypatch.setenv("INDEXER_CONTRACTS", "intents.near:verifer")
    else:
        path = toml('contracts = ["intents.near:verifer"]\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, **kwargs)
    msg = str(exc.value)
    assert "'verifer'" in msg
    assert "verifier, workshop-verifier, workshop-solver, none" in msg


def test_empty_contract_list_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_CONTRACTS", " , ")
    with pytest.raises(ConfigError, match="at least one --contract"):
        load_settings()


def test_unknown_toml_keys(toml) -> None:
    path = toml('databse = "x"\nstore = "chdb:///tmp/x"\nfoo = 1\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert "unknown keys ['databse', 'foo']" in str(exc.value) and str(path) in str(exc.value)


def test_invalid_toml_and_missing_file(toml, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(toml("database = \n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize("kwargs, field", [
    ({"prefetch": 0}, "prefetch"), ({"network": "betanet"}, "network"), ({"log_level": "loud"}, "log_level"),
    ({"retry_base_delay": 0}, "retry_base_delay"),
])
def test_invalid_values_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_settings(**kwargs)


def test_invalid_env_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_PREFETCH", "many")
    with pytest.raises(ConfigError, match="prefetch"):
        load_settings()


def test_toml_file_does_not_leak_into_later_loads(toml) -> None:
    load_settings(toml('database = "from_toml"\n'))
    assert load_settings().database == "near_intents"
    assert Settings().database == "near_intents"


# --- ContractSpec ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, account, role", [
    ("intents.near:verifier", "intents.near", Role.VERIFIER),
    ("  Verifier.Workshop.near:workshop-verifier ", "verifier.workshop.near", Role.WORKSHOP_VERIFIER),
    ("solver.near:workshop-solver", "solver.near", Role.WORKSHOP_SOLVER),
    ("token.sweat", "token.sweat", Role.NONE),
    ("token.sweat:", "token.sweat", Role.NONE),
    ("token.sweat:none", "token.sweat", Role.NONE),
    ("0123abcd" * 8 + ":verifier", "0123abcd" * 8, Role.VERIFIER),
])
def test_contract_spec_parse(spec: str, account: str, role: Role) -> None:
    c = ContractSpec.parse(spec)
    assert (c.account, c.role) == (account, role)
    assert ContractSpec.parse(str(c)) == c


@pytest.mark.parametrize("spec, match", [
    (":verifier", "expected ACCOUNT"), ("", "expected ACCOUNT"), ("a.near:solver", "unknown role 'solver'"),
    ("a.near:verifier:x", "unknown role"),
])
def test_contract_spec_errors(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ContractSpec.parse(spec)


def test_contract_spec_str() -> None:
    assert str(ContractSpec.parse("A.near")) == "a.near:none"
    assert str(ContractSpec(account="intents.near", role=Role.VERIFIER)) == "intents.near:verifier"


def test_decoder_config_from_settings() -> None:
    s = load_settings(contracts=["intents.near:verifier", "verifier.workshop.near:workshop-verifier"],
                      solver_accounts=["S.near"])
    d = DecoderConfig.from_settings(s)
    assert [(c.account, c.role) for c in d.contracts] == [
        ("intents.near", Role.VERIFIER), ("verifier.workshop.near", Role.WORKSHOP_VERIFIER)]
    assert d.solver_accounts == frozenset({"s.near"})


# --- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("account", [
    "ab", "intents.near", "solver-priv-liq.near", "a_b-c.d-e_f.near", "v2.ref-finance.near", "0123abcd" * 8,
    "0x" + "ab12" * 10, "a" * 64, "none",
])
def test_valid_account_ids(account: str) -> None:
    assert ContractSpec.parse(account).account == account
    assert load_settings(solver_accounts=[account]).solver_accounts == [account]


@pytest.mark.parametrize("account, why", [
    ("a", "1 character"), ("a" * 65, "65 characters"), ("bad..near", "empty part"), (".near", "empty part"),
    ("near.", "empty part"), ("-a.near", "'-a'"), ("a-.near", "'a-'"), ("a--b.near", "'a--b'"),
    ("a_-b.near", "'a_-b'"), ("a b.near", "' '"), ("a@b.near", "'@'"), ("caf\u00e9.near", "'\u00e9'"),
])
def test_invalid_account_ids_say_why(account: str, why: str) -> None:
    with pytest.raises(ConfigError) as exc:
        ContractSpec.parse(f"{account}:verifier")
    msg = str(exc.value)
    assert "is not a NEAR account id" in msg and why in msg and "--contract" in msg
    with pytest.raises(ConfigError, match="--solver-account .* is not a NEAR account id"):
        load_settings(solver_accounts=[account])


def test_role_none_is_accepted_and_contract_help_names_it() -> None:
    assert ContractSpec.parse("token.sweat:none").role == Role.NONE
    assert "none" in Settings.model_fields["contracts"].description.split("roles", 1)[1]


@pytest.mark.parametrize("source, match", [
    ("ipfs", "unknown source; use lake, neardata, files:PATH or auto"),
    ("files:", "needs a folder: files:PATH"), ("files:  ", "needs a folder"), ("", "unknown source"),
])
def test_bad_source_is_a_config_error(source: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings(source=source)


@pytest.mark.parametrize("source", ["auto", "lake", "neardata", "files:/tmp/lake", "files:./x"])
def test_good_sources(source: str) -> None:
    assert load_settings(source=source).source == source


@pytest.mark.parametrize("store, match", [
    ("postgres://u:hunter2@h/db", "is not a store DSN"), ("chdb://", "needs a folder"), ("./data", "not a store DSN"),
    ("http://", "not a store DSN"), ("http://h:port/db", "port is not a number"),
])
def test_bad_store_dsn_is_a_config_error_without_the_password(store: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as exc:
        load_settings(store=store)
    assert "hunter2" not in str(exc.value)


def test_pydantic_errors_are_reworded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEXER_PREFETCH", "many")
    with pytest.raises(ConfigError) as exc:
        load_settings(retry_base_delay=0)
    msg = str(exc.value)
    assert "errors.pydantic.dev" not in msg and "[type=" not in msg and "validation error" not in msg
    assert "Input should" not in msg and "\n" not in msg
    assert "prefetch (--prefetch / INDEXER_PREFETCH): must be a valid integer" in msg and "got 'many'" in msg
    assert "retry_base_delay (--retry-base-delay / INDEXER_RETRY_BASE_DELAY): must be greater than 0, got 0" in msg
