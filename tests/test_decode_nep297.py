"""indexer.decode.nep297: EVENT_JSON logs, with the verbatim dip4 / nep245 logs of the real transaction."""

from __future__ import annotations

import json

import pytest

from decodehelpers import MAIN_RECEIPT_ID, TX, tx_outcome
from indexer.decode.nep297 import PREFIX, Event, EventError, is_event, parse_event

MAIN_LOGS: list[str] = tx_outcome(MAIN_RECEIPT_ID)["outcome"]["logs"]
ALL_LOGS: list[str] = [line for o in TX["receipts_outcome"] for line in o["outcome"]["logs"]]


def test_real_dip4_logs_parse_verbatim() -> None:
    events = [parse_event(line) for line in MAIN_LOGS]
    assert [(e.standard, e.version, e.event) for e in events] == [
        ("dip4", "0.3.0", "token_diff"),
        ("dip4", "0.3.0", "token_diff"),
        ("dip4", "0.3.0", "mt_withdraw"),
        ("dip4", "0.3.1", "intents_executed"),  # a different version in the same receipt is accepted
        ("nep245", "1.0.0", "mt_transfer"),
        ("nep245", "1.0.0", "mt_burn"),
    ]
    # data is kept exactly as logged
    for line, e in zip(MAIN_LOGS, events):
        assert e.data == json.loads(line[len(PREFIX):])["data"]
        assert json.loads(e.data_json()) == e.data
    diff = events[1].items()[0]
    assert diff["account_id"] == "69307005629debbd360f5a567fe151a96d3d67082bfbe175273ff784e094927f"
    assert diff["referral"] == "1click-rango"
    assert diff["diff"]["nep141:sol.omft.near"] == "-19000000"
    executed = events[3].items()
    assert [i["intent_hash"] for i in executed] == ["B6NsFf8v8T8dCc671uxYWaeHcMdRf8DBn2ZXn2Y18aZz",
                                                    "DaqjLUF4BMwGPWpYgJbrymGzpb8H82spkTjuapdL8JGX"]


def test_is_event_separates_plain_logs() -> None:
    assert all(is_event(line) for line in MAIN_LOGS)
    plain = [line for line in ALL_LOGS if not is_event(line)]
    assert plain == ["prepaid_gas: NearGas { inner: 133359160601713 }"]
    assert not is_event(" EVENT_JSON:{}")  # the prefix must start the log


@pytest.mark.parametrize("version", ["1.0.0", "0.3.1", "9.9.9-beta", 2])
def test_any_version_accepted(version: object) -> None:
    e = parse_event(PREFIX + json.dumps({"standard": "dip4", "version": version, "event": "transfer", "data": []}))
    assert e.version == str(version)


def test_missing_version_is_empty() -> None:
    assert parse_event(PREFIX + '{"standard":"x","event":"y"}').version == ""


def test_data_as_list_object_and_missing() -> None:
    lst = parse_event(PREFIX + '{"standard":"s","version":"1","event":"e","data":[{"a":1},2,{"b":2}]}')
    assert lst.items() == [{"a": 1}, {"b": 2}]  # non-objects are dropped from items()
    assert lst.data_json() == '[{"a":1},2,{"b":2}]'
    obj = parse_event(PREFIX + '{"standard":"near_intent","version":"1","event":"intent_verified","data":{"intent_id":"i1"}}')
    assert obj.items() == [{"intent_id": "i1"}]
    missing = parse_event(PREFIX + '{"standard":"s","version":"1","event":"e"}')
    assert missing.data is None and missing.items() == [] and missing.data_json() == "null"
    scalar = parse_event(PREFIX + '{"standard":"s","version":"1","event":"e","data":"text"}')
    assert scalar.items() == []


def test_big_integers_survive() -> None:
    e = parse_event(PREFIX + '{"standard":"s","version":"1","event":"e","data":[{"amount":"340282366920938463463374607431768211455"}]}')
    assert e.items()[0]["amount"] == str(2**128 - 1)


@pytest.mark.parametrize("payload, reason", [
    ("not json", "not JSON"),
    ('{"standard":"dip4","event":"x"', "not JSON"),
    ("", "not JSON"),
    ("[1,2]", "not an object"),
    ('"text"', "not an object"),
    ('{"version":"1","event":"e"}', "standard"),
    ('{"standard":"dip4","version":"1"}', "event"),
    ('{"standard":"","event":"e"}', "standard"),
    ('{"standard":"dip4","event":5}', "event"),
    ('{"standard":["dip4"],"event":"e"}', "standard"),
])
def test_malformed_raises_event_error(payload: str, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        parse_event(PREFIX + payload)


def test_event_error_is_a_value_error() -> None:
    assert issubclass(EventError, ValueError)


def test_event_dataclass_roundtrip() -> None:
    e = Event("dip4", "0.3.0", "transfer", [{"x": "1"}])
    assert e.data_json() == '[{"x":"1"}]'


def test_whitespace_around_the_json_is_tolerated() -> None:
    assert parse_event(PREFIX + ' {"standard":"a","event":"b"}\n').event == "b"
