"""``dead-letters retry``: a dead letter decodes again with the current decoder, exactly once.

The real intents.near execute_intents receipt of the fixtures is first stored by an older decoder
that could not read it (a dead letter of kind ``receipt``, with its receipt kept); the current
decoder then reads it. After a retry, killed at any write or not, the tables equal one clean run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clitools import cli, cli_env, dump_tables
from indexer import deadletters
from indexer.decode import lake as lake_views
from indexer.query import list_dead_letters
from indexer.store import commits, streams
from indexer.store.operations import OPERATIONS
from indexer.store.streams import LeaseError
from lakebuild import TX_FILE, fixture_lake
from storedriver import Crash, Decoded, Driver, clean_tables, dump, duplicates, dying, expire, new_store, read_lake, settings_for

pytestmark = pytest.mark.timeout(600)

CONTRACTS = ("intents.near:verifier", "token.sweat")


def _older_decoder(monkeypatch: pytest.MonkeyPatch, reason: str = "older decoder: unknown action field") -> None:
    """The decoder as it was: it could not read the receipt body of the execute_intents call."""
    real = lake_views.decode_receipt_body

    def body(raw: Any) -> Any:
        if b'"execute_intents"' in bytes(raw):
            raise ValueError(reason)
        return real(raw)

    monkeypatch.setattr(lake_views, "decode_receipt_body", body)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[int]]:
    root = tmp_path_factory.mktemp("lake")
    heights = fixture_lake(root, copies=2)
    return read_lake(root), heights


def _decoded(blocks: dict) -> Decoded:
    d = Decoded(blocks)
    d.get(tuple(sorted(CONTRACTS)))
    return d


@pytest.fixture
def broken(blocks, chdb_store_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Driver, Driver]:
    """A store written by the older decoder, and a driver of the same streams decoding as now."""
    raw, heights = blocks
    clean = _decoded(raw)
    with monkeypatch.context() as m:
        _older_decoder(m)
        old = _decoded(raw)
    d = Driver(new_store(chdb_store_path), old, heights)
    s = d.stream("live", CONTRACTS, heights[0], heights[-1])
    s.finish(3)
    s.writer.close()
    s.writer = None
    want = Driver(d.store, clean, heights)
    want.stream("live", CONTRACTS, heights[0], heights[-1])
    return d, want


def _settings() -> Any:
    return settings_for(tuple(sorted(CONTRACTS))).model_copy(update={"lease_settle": 0.0})


def _receipt_id() -> str:
    return json.loads(TX_FILE.read_text())["transaction_outcome"]["outcome"]["receipt_ids"][0]


def test_a_dead_letter_keeps_its_receipt_and_the_retry_writes_its_rows_once(broken, chdb_store_path: Path) -> None:
    d, want = broken
    (letter,) = dump(d.store)["dead_letters"]
    assert letter[2] == _receipt_id() and letter[4] == "receipt" and "older decoder" in letter[5]
    context = lake_views.decode_receipt_context(letter[9])
    assert context.outcome.receipt.receipt_id == _receipt_id() and context.role == "verifier"
    expected = clean_tables(chdb_store_path, want.expected())
    assert dump(d.store) != expected and expected["intent_updates"]
    report = deadletters.retry(d.store, _settings())
    assert (report.receipts, report.retried, report.still_failing, report.fixed_receipts) == (1, 1, 0, 1)
    assert report.rows["receipts"] == 1 and report.rows["events"] and report.rows["intent_updates"]
    assert duplicates(d.store) == dict.fromkeys(duplicates(d.store), 0)
    assert dump(d.store) == expected
    (c,) = [c for c in commits.read_since(d.store) if c.stream == OPERATIONS]
    assert (c.kind, c.owners, c.low_height, c.high_height) == ("retry", ("intents.near",), letter[0], letter[0])
    again = deadletters.retry(d.store, _settings())  # nothing left to retry
    assert again.receipts == 0 and again.commit is None
    assert dump(d.store) == expected


@pytest.mark.parametrize("n", range(1, 17))
def test_a_retry_killed_at_any_write_then_retried_again(broken, chdb_store_path: Path, n: int) -> None:
    d, want = broken
    restore = dying(d.store, n)
    try:
        deadletters.retry(d.store, _settings())
        died = False
    except Crash:
        died = True
    finally:
        restore()
    if died or streams.read(d.store, OPERATIONS).live:
        expire(d.store, OPERATIONS)
    listed = json.loads(list_dead_letters(d.store, fmt="json"))
    assert len(listed) <= 1  # never counted twice, even killed half way
    deadletters.retry(d.store, _settings())
    assert duplicates(d.store) == dict.fromkeys(duplicates(d.store), 0)
    assert dump(d.store) == clean_tables(chdb_store_path, want.expected())


def test_a_receipt_that_still_fails_stays_one_dead_letter_with_the_new_reason(broken, monkeypatch) -> None:
    d, _ = broken
    before = dump(d.store)
    _older_decoder(monkeypatch, reason="still unreadable by this decoder")
    for _ in range(2):
        report = deadletters.retry(d.store, _settings())
        assert (report.receipts, report.still_failing, report.fixed_receipts) == (1, 1, 0)
        after = dump(d.store)
        (letter,) = after["dead_letters"]
        assert "still unreadable by this decoder" in letter[5] and letter[9]  # keeps its receipt for the next retry
        assert {t: r for t, r in after.items() if t != "dead_letters"} == \
            {t: r for t, r in before.items() if t != "dead_letters"}
        assert duplicates(d.store) == dict.fromkeys(duplicates(d.store), 0)


def test_retry_refuses_while_a_stream_will_rewrite_those_heights(broken) -> None:
    d, _ = broken
    s = d.stream("backfill:again", CONTRACTS, d.heights[0], d.heights[-1], reindex=True)
    s.open()
    with pytest.raises(LeaseError, match=f"stream backfill:again held by {s.writer.lease.holder}"):
        deadletters.retry(d.store, _settings())
    assert len(dump(d.store)["dead_letters"]) == 1


def test_filters_choose_what_is_retried(broken) -> None:
    d, _ = broken
    assert deadletters.preview(d.store, kind="log").letters == []
    assert deadletters.preview(d.store, since=d.heights[-1] + 1).letters == []
    assert len(deadletters.preview(d.store, kind="receipt", since=d.heights[0]).letters) == 1
    assert deadletters.retry(d.store, _settings(), kind="log").receipts == 0
    assert len(dump(d.store)["dead_letters"]) == 1


# --- the command ----------------------------------------------------------------------------------


def test_cli_retry_of_a_log_that_still_fails_and_the_list_as_before(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    heights = fixture_lake(root, copies=1)
    corrupt_a_dip4_log(root, heights)
    store = f"chdb://{tmp_path / 'store'}"
    cli("backfill", "--source", f"files:{root}", "--from", str(heights[0]), "--to", str(heights[-1]), "--store", store)
    (letter,) = json.loads(cli("dead-letters", "--store", store, "--format", "json", "--kind", "log").stdout)
    before = dump_tables(tmp_path / "store")
    args = ["dead-letters", "retry", "--store", store]
    proc = subprocess.run([sys.executable, "-m", "indexer", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 2 and "--yes" in proc.stderr
    for _ in range(2):
        out = cli(*args, "--yes").stdout
        assert "1 dead letter(s) of 1 receipt(s) to decode again (log 1)" in out
        assert "0 receipt(s) decode now, 1 dead letter(s) still fail" in out
        (again,) = json.loads(cli("dead-letters", "--store", store, "--format", "json").stdout)
        assert (again["reason"], again["payload"], again["receipt_id"]) == \
            (letter["reason"], letter["payload"], letter["receipt_id"])
    after = dump_tables(tmp_path / "store")
    assert {t: r for t, r in after.items() if t != "dead_letters"} == \
        {t: r for t, r in before.items() if t != "dead_letters"}
    assert "nothing to retry" in cli(*args, "--kind", "args").stdout


def corrupt_a_dip4_log(root: Path, heights: list[int]) -> None:
    """Cut one EVENT_JSON log of the real intents.near receipt short, in the lake's copy."""
    for h in heights:
        for shard in sorted((root / f"{h:012d}").glob("shard_*.json")):
            data = json.loads(shard.read_text())
            for o in data.get("receipt_execution_outcomes", []):
                logs = o["execution_outcome"]["outcome"]["logs"]
                for i, line in enumerate(logs):
                    if o["receipt"]["receiver_id"] == "intents.near" and line.startswith("EVENT_JSON:"):
                        logs[i] = line[: len(line) // 2]
                        shard.write_text(json.dumps(data))
                        return
    raise AssertionError("no intents.near event log in the lake")


def test_retry_and_rewind_explain_every_option() -> None:
    import click

    from indexer.cli import main

    group = main.commands["dead-letters"]
    for name, cmd, argv in [("retry", group.commands["retry"], ["dead-letters", "retry"]),
                            ("rewind", main.commands["rewind"], ["rewind"])]:
        assert "exactly once" in cmd.help or "again" in cmd.help, name
        out = cli(*argv, "--help").stdout
        for param in cmd.params:
            assert isinstance(param, click.Option) and (param.help or "").strip(), f"{name} {param.opts}"
            assert param.opts[0] in out
        assert "Exit codes" in out
    assert "retry" in cli("dead-letters", "--help").stdout
