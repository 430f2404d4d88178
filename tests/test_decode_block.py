"""indexer.decode.block.BlockDecoder on every real fixture block, and damaged / newer-protocol copies."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from decodehelpers import (
    LOCALNET, MAIN_RECEIPT_ID, MAINNET_HEIGHTS, RPC, SOLVER, SOLVER_HASH, TX, TX_HASH, USER, USER_HASH,
    failure_status, fixture_folder, raw_block, raw_from_objects, read_block, table,
)
from indexer import metrics
from indexer.config import ContractSpec
from indexer.decode.block import BlockDecoder, DecodedBlock, DecoderConfig
from indexer.decode.nep297 import PREFIX
from indexer.decode.rows import COLUMNS, Rows, ts_string
from indexer.sources.base import RawBlock

try:
    from lakebuild import fixture_lake as build_lake
except ImportError:
    from tests.lakebuild import fixture_lake as build_lake


def decoder(*specs: str, **kw: Any) -> BlockDecoder:
    return BlockDecoder(DecoderConfig([ContractSpec.parse(s) for s in specs], **kw))


def metric(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or None) or 0.0


# --- an independent reading of the fixture JSON, to compare the decoder against ---------------

def expected_receipts(height: int, receiver: str) -> list[dict[str, Any]]:
    block, shards = read_block(fixture_folder(height))
    ts = ts_string(block["header"]["timestamp"])
    out = []
    for sid, shard in shards:
        for i, reo in enumerate(shard["receipt_execution_outcomes"]):
            rv, o = reo["receipt"], reo["execution_outcome"]["outcome"]
            if rv["receiver_id"] != receiver or "Action" not in rv["receipt"]:
                continue
            action = rv["receipt"]["Action"]
            kinds = [a if isinstance(a, str) else next(iter(a)) for a in action["actions"]]
            calls = [a["FunctionCall"] for a in action["actions"] if isinstance(a, dict) and "FunctionCall" in a]
            deposit = sum(int(next(iter(a.values())).get("deposit", 0)) for a in action["actions"] if isinstance(a, dict))
            args = ""
            if calls:
                raw = base64.b64decode(calls[0]["args"])
                try:
                    json.loads(raw)
                    args = raw.decode()
                except ValueError:
                    args = ""
            status = o["status"]
            failure = ""
            if "Failure" in status:
                kind = status["Failure"]["ActionError"]["kind"]
                failure = kind["FunctionCallError"]["ExecutionError"] if "FunctionCallError" in kind else None
            out.append({
                "block_height": height, "block_timestamp": ts, "block_hash": block["header"]["hash"], "shard_id": sid,
                "index_in_block": sid * 100_000 + i, "receipt_id": rv["receipt_id"], "receiver_id": receiver,
                "predecessor_id": rv["predecessor_id"], "signer_id": action["signer_id"],
                "method_name": calls[0]["method_name"] if calls else "", "action_kinds": kinds, "args": args,
                "deposit": str(deposit), "gas_attached": sum(int(c["gas"]) for c in calls),
                "gas_burnt": o["gas_burnt"], "tokens_burnt": o["tokens_burnt"],
                "status": "failure" if "Failure" in status else "success", "failure": failure,
                "logs_count": len(o["logs"]),
                "_events": [json.loads(line[len(PREFIX):]) for line in o["logs"] if line.startswith(PREFIX)],
            })
    return out


def busiest_receiver(height: int) -> str:
    _, shards = read_block(fixture_folder(height))
    counts: dict[str, int] = {}
    for _, s in shards:
        for reo in s["receipt_execution_outcomes"]:
            counts[reo["receipt"]["receiver_id"]] = counts.get(reo["receipt"]["receiver_id"], 0) + 1
    return max(counts, key=lambda k: counts[k])


# --- blocks rows ------------------------------------------------------------------------------

@pytest.mark.parametrize("folder", [fixture_folder(h) for h in MAINNET_HEIGHTS] + [LOCALNET / "000000879765"],
                         ids=lambda p: p.name)
def test_blocks_row_of_every_fixture_block(folder: Path) -> None:
    block, _ = read_block(folder)
    h = block["header"]
    decoded = decoder("intents.near:verifier").decode(raw_block(folder))
    assert isinstance(decoded, DecodedBlock)
    assert (decoded.height, decoded.hash, decoded.prev_hash, decoded.timestamp_ns) == (
        h["height"], h["hash"], h["prev_hash"], h["timestamp"])
    assert decoded.bytes == sum(p.stat().st_size for p in folder.iterdir())
    (row,) = table(decoded.rows, "blocks")
    assert row == {
        "block_height": h["height"], "block_hash": h["hash"], "prev_hash": h["prev_hash"],
        "block_timestamp_ns": h["timestamp"], "author": block["author"],
        "protocol_version": h["latest_protocol_version"], "shard_ids": [c["shard_id"] for c in block["chunks"]],
    }
    assert decoded.rows.count() == 1  # intents.near does not appear in these blocks
    assert decoded.rows.tables["dead_letters"] == []


def test_non_contiguous_shard_ids_in_chunk_order_protocol_80() -> None:
    data = (RPC / "block_169553183_protocol80.json").read_bytes()
    decoded = decoder("intents.near:verifier").decode(RawBlock(169553183, data, []))
    (row,) = table(decoded.rows, "blocks")
    assert row["shard_ids"] == [10, 11, 8, 7, 5]
    assert row["protocol_version"] == 80
    assert row["block_hash"] == "G8KZAZF7q6x7VVmfFpe1wDijygVdz4WSscW1Sn7EPPtF"


def test_timestamp_nanosec_used_when_timestamp_is_missing() -> None:
    block, shards = read_block(fixture_folder(93085141))
    ts = block["header"].pop("timestamp")
    decoded = decoder("x.near").decode(raw_from_objects(block, shards))
    assert decoded.timestamp_ns == ts == int(block["header"]["timestamp_nanosec"])


# --- receipts rows against the fixture --------------------------------------------------------

@pytest.mark.parametrize("height", MAINNET_HEIGHTS)
def test_receipts_of_the_busiest_receiver_match_the_fixture(height: int) -> None:
    receiver = busiest_receiver(height)
    expected = expected_receipts(height, receiver)
    assert len(expected) >= 2
    decoded = decoder(f"{receiver}:none").decode(raw_block(fixture_folder(height)))
    got = table(decoded.rows, "receipts")
    assert [r["receipt_id"] for r in got] == [e["receipt_id"] for e in expected]
    for g, e in zip(got, expected):
        want = {k: v for k, v in e.items() if not k.startswith("_")}
        assert {**g, "tx_hash": ""} == {**want, "tx_hash": ""}, g["receipt_id"]
    events = table(decoded.rows, "events")
    assert len(events) == sum(len(e["_events"]) for e in expected)
    want_events = [(e["receipt_id"], ev["standard"], ev["event"], ev.get("data")) for e in expected for ev in e["_events"]]
    assert [(v["receipt_id"], v["standard"], v["event"], json.loads(v["data"])) for v in events] == want_events
    assert all(v["execution_status"] == "success" and v["contract_id"] == receiver for v in events)
    # role "none": no intent rows
    assert decoded.rows.tables["intent_updates"] == [] and decoded.rows.tables["solver_executions"] == []


def test_earn_kaiching_85_receipts_and_their_gas() -> None:
    decoded = decoder("earn.kaiching").decode(raw_block(fixture_folder(105793821)))
    got = table(decoded.rows, "receipts")
    expected = expected_receipts(105793821, "earn.kaiching")
    assert len(got) == 85
    assert sum(r["gas_burnt"] for r in got) == sum(e["gas_burnt"] for e in expected)


def test_failed_receipts_of_107503704() -> None:
    decoded = decoder("aurora", "corn.v1.corn-staging.near").decode(raw_block(fixture_folder(107503704)))
    rows = {r["receipt_id"]: r for r in table(decoded.rows, "receipts")}
    assert rows["BZDV6HVpNPeCQCByp56CyULNKgSbC1zgPMK4hoMjVFqG"]["status"] == "failure"
    assert rows["BZDV6HVpNPeCQCByp56CyULNKgSbC1zgPMK4hoMjVFqG"]["failure"] == "Smart contract panicked: ERR_OUT_OF_FUND"
    corn = rows["34Bstf8ZpJt4DLk16s4ckTKrVRgZpue5b3gKvVQSVw4B"]
    assert corn["status"] == "failure"
    assert corn["failure"] == "Smart contract panicked: Distribution amount exceeds total mintable"
    assert corn["shard_id"] == 2
    assert all(r["status"] == "failure" for r in rows.values()) and len(rows) == 2


def test_events_of_failed_receipts_carry_failure_status() -> None:
    # token.sweat in 107503704 succeeds; make one of its receipts fail after logging
    block, shards = read_block(fixture_folder(107503704))
    target = None
    for _, s in shards:
        for reo in s["receipt_execution_outcomes"]:
            o = reo["execution_outcome"]["outcome"]
            if reo["receipt"]["receiver_id"] == "token.sweat" and o["logs"] and target is None:
                o["status"] = failure_status("Smart contract panicked: late")
                target = reo["receipt"]["receipt_id"]
    decoded = decoder("token.sweat").decode(raw_from_objects(block, shards))
    events = table(decoded.rows, "events")
    assert {e["execution_status"] for e in events if e["receipt_id"] == target} == {"failure"}
    assert {e["execution_status"] for e in events if e["receipt_id"] != target} == {"success"}


# --- skipping shards --------------------------------------------------------------------------

@pytest.mark.parametrize("height, receiver", [(105793821, "earn.kaiching"), (115185108, "game.hot.tg"),
                                              (93085141, "aurora")])
def test_shards_without_tracked_accounts_are_skipped(height: int, receiver: str) -> None:
    raw = raw_block(fixture_folder(height))
    not_mentioning = sum(receiver.encode() not in s for s in raw.shards)
    assert not_mentioning >= 1
    before = metric("near_intents_shards_skipped_total")
    fast = decoder(receiver).decode(raw)
    assert fast.shards_skipped == not_mentioning
    assert metric("near_intents_shards_skipped_total") - before == not_mentioning

    full = decoder(receiver, resolve_all_tx=True).decode(raw)
    assert full.shards_skipped == 0
    assert metric("near_intents_shards_skipped_total") - before == not_mentioning
    # skipping loses nothing of the tracked contract
    for table_name in ("receipts", "events", "blocks"):
        assert full.rows.tables[table_name] == fast.rows.tables[table_name]


# --- transaction hashes -----------------------------------------------------------------------

def test_tx_hash_of_a_local_receipt_from_the_chunk_transactions() -> None:
    before = metric("near_intents_tx_hash_unresolved_total")
    decoded = decoder("app.nearcrowd.near").decode(raw_block(fixture_folder(93085141)))
    rows = {r["receipt_id"]: r for r in table(decoded.rows, "receipts")}
    assert rows["DwVQmRqaeHiMwRESakJhp2jdYbq5ATLwa5BdKQtaek8n"]["tx_hash"] == "HwDUCUs3zts1s13UJaSH8Qbzj8fyvgURAYkaPH2KKq2o"
    unresolved = sum(1 for r in rows.values() if not r["tx_hash"])
    assert metric("near_intents_tx_hash_unresolved_total") - before == unresolved


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> list[RawBlock]:
    root = tmp_path_factory.mktemp("lake")
    heights = build_lake(root, copies=2)
    return [raw_block(root / f"{h:012d}") for h in heights]


def _decode_chain(chain: list[RawBlock], d: BlockDecoder) -> list[DecodedBlock]:
    return [d.decode(raw) for raw in chain]


def _intents_receipts(decoded: list[DecodedBlock]) -> dict[str, dict[str, Any]]:
    return {r["receipt_id"]: r for b in decoded for r in table(b.rows, "receipts")}


TX_INTENTS_RECEIPTS = [o["id"] for o in TX["receipts_outcome"] if o["outcome"]["executor_id"] == "intents.near"]


def test_tx_hash_resolved_across_blocks(chain: list[RawBlock]) -> None:
    decoded = _decode_chain(chain, decoder("intents.near:verifier", resolve_all_tx=True))
    rows = _intents_receipts(decoded)
    assert set(rows) == set(TX_INTENTS_RECEIPTS)
    for rid in TX_INTENTS_RECEIPTS:
        assert rows[rid]["tx_hash"] == TX_HASH, rid
    # the main receipt executes in the transaction's block, 4ETSz... four blocks later
    assert rows[MAIN_RECEIPT_ID]["block_height"] == chain[0].height
    assert rows["4ETSzNP1AzbaKM5VFXbhMrDCiMo7fgffcaTttkqbYWZY"]["block_height"] == chain[4].height


def test_tx_hash_without_resolve_all_tx_follows_decoded_shards(chain: list[RawBlock]) -> None:
    decoded = _decode_chain(chain, decoder("intents.near:verifier"))
    rows = _intents_receipts(decoded)
    # the main receipt and the chain of intents.near receipts below it are resolved
    for rid in (MAIN_RECEIPT_ID, "4ETSzNP1AzbaKM5VFXbhMrDCiMo7fgffcaTttkqbYWZY",
                "5iiTF4YzjzRoBWkV31V56V2qiLjRF2H3PPKWhzR7zcfL"):
        assert rows[rid]["tx_hash"] == TX_HASH, rid


def test_tx_links_expire_after_lookback_blocks(chain: list[RawBlock]) -> None:
    decoded = _decode_chain(chain, decoder("intents.near:verifier", resolve_all_tx=True, lookback=2))
    rows = _intents_receipts(decoded)
    assert rows[MAIN_RECEIPT_ID]["tx_hash"] == TX_HASH
    # 4ETSz's link was stored with the main receipt 4 blocks earlier: forgotten
    assert rows["4ETSzNP1AzbaKM5VFXbhMrDCiMo7fgffcaTttkqbYWZY"]["tx_hash"] == ""


@pytest.mark.parametrize("resolve_all_tx", [False, True])
@pytest.mark.parametrize("lookback", [1, 2, 3, 4])
def test_replayed_decoder_equals_clean_decoder(chain: list[RawBlock], lookback: int, resolve_all_tx: bool) -> None:
    """A decoder resumed at any block after replaying the lookback blocks before it emits the clean run's rows."""
    spec = "intents.near:verifier"
    clean = _decode_chain(chain, decoder(spec, lookback=lookback, resolve_all_tx=resolve_all_tx))
    for resume in range(1, len(chain)):
        d = decoder(spec, lookback=lookback, resolve_all_tx=resolve_all_tx)
        for raw in chain[max(0, resume - lookback):resume]:  # replay, rows thrown away
            d.decode(raw)
        resumed = [d.decode(raw) for raw in chain[resume:]]
        for a, b in zip(clean[resume:], resumed):
            assert a.rows.tables == b.rows.tables, (resume, a.height)


def test_real_execute_intents_through_the_block_decoder(chain: list[RawBlock]) -> None:
    first = decoder("intents.near:verifier").decode(chain[0])
    (receipt,) = [r for r in table(first.rows, "receipts") if r["receipt_id"] == MAIN_RECEIPT_ID]
    assert receipt["method_name"] == "execute_intents" and receipt["status"] == "success"
    assert receipt["signer_id"] == "intents.near" and receipt["predecessor_id"] == "intents.near"
    assert receipt["gas_attached"] == 300_000_000_000_000 and receipt["gas_burnt"] == 10038341571544
    assert receipt["logs_count"] == 6 and json.loads(receipt["args"])["signed"][0]["standard"] == "nep413"
    events = [e for e in table(first.rows, "events") if e["receipt_id"] == MAIN_RECEIPT_ID]
    assert [(e["standard"], e["event"], e["log_index"]) for e in events] == [
        ("dip4", "token_diff", 0), ("dip4", "token_diff", 1), ("dip4", "mt_withdraw", 2),
        ("dip4", "intents_executed", 3), ("nep245", "mt_transfer", 4), ("nep245", "mt_burn", 5)]
    assert {e["tx_hash"] for e in events} == {TX_HASH}
    assert [(u["intent_id"], u["signer_id"], u["status"]) for u in table(first.rows, "intent_updates")] == [
        (SOLVER_HASH, SOLVER, "executed"), (USER_HASH, USER, "executed")]
    assert [e["solver_id"] for e in table(first.rows, "solver_executions")] == [SOLVER]
    assert len(table(first.rows, "receipts")) == 1


def test_failed_execute_intents_through_the_block_decoder(chain: list[RawBlock]) -> None:
    block = json.loads(chain[0].block)
    shards = [json.loads(s) for s in chain[0].shards]
    for s in shards:
        for reo in s["receipt_execution_outcomes"]:
            if reo["receipt"]["receipt_id"] == MAIN_RECEIPT_ID:
                o = reo["execution_outcome"]["outcome"]
                o["status"] = failure_status("Smart contract panicked: deadline has expired")
                o["logs"] = o["logs"][:2]
    decoded = decoder("intents.near:verifier").decode(raw_from_objects(block, shards))
    events = [e for e in table(decoded.rows, "events") if e["receipt_id"] == MAIN_RECEIPT_ID]
    assert [e["execution_status"] for e in events] == ["failure", "failure"]
    updates = table(decoded.rows, "intent_updates")
    # failed payloads are named by their intent hash, the same as when they executed
    assert [(u["intent_id"], u["signer_id"], u["status"]) for u in updates] == [
        (SOLVER_HASH, SOLVER, "failed"), (USER_HASH, USER, "failed")]
    (e,) = table(decoded.rows, "solver_executions")
    assert (e["solver_id"], e["success"], e["failure"]) == (SOLVER, 0, "Smart contract panicked: deadline has expired")


# --- dead letters -----------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"{not json", b'{"header": {}}', b"[]", b""])
def test_undecodable_block_json(payload: bytes) -> None:
    before = metric("near_intents_dead_letters_total", kind="block")
    shards = raw_block(fixture_folder(93085141)).shards
    decoded = decoder("aurora").decode(RawBlock(93085141, payload, shards))
    assert decoded.hash == "" and decoded.height == 93085141
    (dl,) = table(decoded.rows, "dead_letters")
    assert dl["kind"] == "block" and dl["block_height"] == 93085141
    assert dl["payload"] == payload.decode() and "block.json undecodable" in dl["reason"]
    assert decoded.rows.tables["blocks"] == [] and decoded.rows.tables["receipts"] == []
    assert metric("near_intents_dead_letters_total", kind="block") - before == 1


def test_undecodable_shard_is_dead_lettered_and_the_rest_decoded() -> None:
    raw = raw_block(fixture_folder(107503704))
    # shard 3 mentions token.sweat; damage it, keep the others
    damaged = raw.shards[3][: len(raw.shards[3]) // 2]
    assert b"token.sweat" in damaged
    raw.shards[3] = damaged
    d = decoder("token.sweat", "corn.v1.corn-staging.near")
    decoded = d.decode(raw)
    (dl,) = table(decoded.rows, "dead_letters")
    assert dl["kind"] == "shard" and dl["shard_id"] == 3
    assert "shard_3.json of block 107503704 is not a complete shard file" in dl["reason"]
    assert dl["payload"] == damaged.decode(errors="replace")
    receipts = table(decoded.rows, "receipts")
    assert [r["receiver_id"] for r in receipts] == ["corn.v1.corn-staging.near"]
    assert len(table(decoded.rows, "blocks")) == 1


def _shard_dead_letters(raw: RawBlock, *contracts: str) -> dict[int, str]:
    return {d["shard_id"]: d["reason"] for d in table(decoder(*contracts).decode(raw).rows, "dead_letters")}


@pytest.mark.parametrize("resolve_all", [False, True])
def test_shards_that_are_not_shards_of_the_block_are_dead_letters(resolve_all: bool) -> None:
    """Checked before the pre-filter: none of these names a tracked account."""
    raw = raw_block(fixture_folder(107503704))
    other = raw_block(fixture_folder(93085141))
    raw.shards[0] = b"<html><body>502 Bad Gateway</body></html>"
    raw.shards[1] = raw.shards[1][:100]  # cut off
    raw.shards[2] = other.shards[2]  # a whole shard, of another block
    raw.shards[3] = b'  {"message": "Internal Server Error"}\n'  # JSON, not a shard
    before = metric("near_intents_dead_letters_total", kind="shard")
    d = decoder("nobody.near", resolve_all_tx=resolve_all)
    dead = {r["shard_id"]: r for r in table(d.decode(raw).rows, "dead_letters")}
    assert sorted(dead) == [0, 1, 2, 3] and {r["kind"] for r in dead.values()} == {"shard"}
    assert metric("near_intents_dead_letters_total", kind="shard") - before == 4
    assert "does not start like a JSON object" in dead[0]["reason"]
    assert "does not end like a JSON object" in dead[1]["reason"]
    assert "carries another chunk than 4g39cKGFVe" in dead[2]["reason"] and "shard 2" in dead[2]["reason"]
    assert "not a shard file" in dead[3]["reason"]
    assert all("of block 107503704" in r["reason"] for r in dead.values())
    assert dead[2]["payload"] == other.shards[2].decode()


def test_shard_check_accepts_whitespace_and_a_missed_chunk() -> None:
    block, shards = read_block(fixture_folder(107503704))
    shards[1][1]["chunk"] = None  # a shard that missed its chunk carries no chunk hash
    raw = raw_from_objects(block, shards)
    raw.shards[0] = b"\n\t " + raw.shards[0] + b" \r\n"
    assert _shard_dead_letters(raw, "token.sweat") == {}


def test_shard_with_wrong_types_is_dead_lettered() -> None:
    block, shards = read_block(fixture_folder(107503704))
    shards[2][1]["receipt_execution_outcomes"][0]["execution_outcome"]["outcome"]["gas_burnt"] = "lots"
    decoded = decoder("token.sweat", "corn.v1.corn-staging.near").decode(raw_from_objects(block, shards))
    (dl,) = table(decoded.rows, "dead_letters")
    assert dl["kind"] == "shard" and dl["shard_id"] == 2
    assert {r["receiver_id"] for r in table(decoded.rows, "receipts")} == {"token.sweat"}


def _edit_tracked(height: int, receiver: str, fn) -> tuple[RawBlock, str]:
    block, shards = read_block(fixture_folder(height))
    for _, s in shards:
        for reo in s["receipt_execution_outcomes"]:
            if reo["receipt"]["receiver_id"] == receiver:
                fn(reo)
                return raw_from_objects(block, shards), reo["receipt"]["receipt_id"]
    raise AssertionError(receiver)


@pytest.mark.parametrize("damage", ["status", "args", "action"])
def test_undecodable_receipt_is_dead_lettered_and_the_rest_decoded(damage: str) -> None:
    def fn(reo: dict) -> None:
        if damage == "status":
            reo["execution_outcome"]["outcome"]["status"] = {"Pending": None}
        elif damage == "args":
            reo["receipt"]["receipt"]["Action"]["actions"][0]["FunctionCall"]["args"] = "%%%not base64"
        else:
            reo["receipt"]["receipt"]["Action"]["actions"] = [{"A": 1, "B": 2}]

    raw, rid = _edit_tracked(107503704, "token.sweat", fn)
    decoded = decoder("token.sweat").decode(raw)
    (dl,) = table(decoded.rows, "dead_letters")
    assert dl["kind"] == "receipt" and dl["receipt_id"] == rid and dl["contract_id"] == "token.sweat"
    assert dl["reason"].startswith("receipt undecodable")
    payload = json.loads(dl["payload"])
    assert set(payload) == {"receipt", "status", "logs"}
    assert payload["receipt"]["Action"]["signer_id"]
    receipts = table(decoded.rows, "receipts")
    assert rid not in {r["receipt_id"] for r in receipts}
    assert len(receipts) == len(expected_receipts(107503704, "token.sweat")) - 1


def test_malformed_event_log_is_dead_lettered_and_the_receipt_kept() -> None:
    bad = 'EVENT_JSON:{"standard":"nep141","event":'

    def fn(reo: dict) -> None:
        reo["execution_outcome"]["outcome"]["logs"].insert(0, bad)

    raw, rid = _edit_tracked(107503704, "token.sweat", fn)
    decoded = decoder("token.sweat").decode(raw)
    (dl,) = table(decoded.rows, "dead_letters")
    assert dl["kind"] == "log" and dl["receipt_id"] == rid and dl["payload"] == bad and "not JSON" in dl["reason"]
    receipts = {r["receipt_id"]: r for r in table(decoded.rows, "receipts")}
    original = {e["receipt_id"]: e for e in expected_receipts(107503704, "token.sweat")}
    assert receipts[rid]["logs_count"] == original[rid]["logs_count"] + 1
    events = [e for e in table(decoded.rows, "events") if e["receipt_id"] == rid]
    assert len(events) == len(original[rid]["_events"]) >= 1
    assert [e["log_index"] for e in events] == [i + 1 for i in range(len(events))]  # indexes of the real logs


def test_dead_letter_seq_numbers_within_a_block() -> None:
    def fn(reo: dict) -> None:
        reo["execution_outcome"]["outcome"]["logs"] += ["EVENT_JSON:[]", "EVENT_JSON:{}"]

    raw, _ = _edit_tracked(107503704, "token.sweat", fn)
    decoded = decoder("token.sweat").decode(raw)
    assert [d["seq"] for d in table(decoded.rows, "dead_letters")] == [0, 1]


def test_data_receipt_of_tracked_contract_gives_no_row() -> None:
    def fn(reo: dict) -> None:
        reo["receipt"]["receipt"] = {"Data": {"data_id": "x", "data": None}}

    raw, rid = _edit_tracked(107503704, "token.sweat", fn)
    decoded = decoder("token.sweat").decode(raw)
    assert rid not in {r["receipt_id"] for r in table(decoded.rows, "receipts")}
    assert decoded.rows.tables["dead_letters"] == []


# --- newer and older protocol shapes ----------------------------------------------------------

def _rows_of(raw: RawBlock, *specs: str) -> dict[str, list]:
    return decoder(*specs, resolve_all_tx=True).decode(raw).rows.tables


def test_newer_protocol_fields_added_and_deprecated_removed() -> None:
    block, shards = read_block(fixture_folder(115185108))
    baseline = _rows_of(raw_block(fixture_folder(115185108)), "token.sweat", "game.hot.tg", "users.kaiching")
    assert baseline["receipts"] and baseline["events"]

    newer = copy.deepcopy(block)
    for key in ("rent_paid", "validator_reward", "challenges_root"):
        newer["header"].pop(key, None)
    newer["header"]["chunk_endorsements"] = [[True, False]] * len(newer["chunks"])
    newer["header"]["block_body_hash"] = "BgeS4Guc4BybbJ6yxjDY3dTf7D6CfBybCUHVAvkSHQmR"
    for c in newer["chunks"]:
        c.pop("rent_paid", None)
        c.pop("validator_reward", None)
        c["congestion_info"] = {"allowed_shard": 0, "buffered_receipts_gas": "0", "delayed_receipts_gas": "0",
                                "receipt_bytes": 0}
        c["bandwidth_requests"] = {"V1": {"requests": []}}
    new_shards = copy.deepcopy(shards)
    for _, s in new_shards:
        for reo in s["receipt_execution_outcomes"]:
            reo["receipt"]["priority"] = 0
            if "Action" in reo["receipt"]["receipt"]:
                reo["receipt"]["receipt"]["Action"]["is_promise_yield"] = False
        for tx in (s.get("chunk") or {}).get("transactions", []):
            tx["transaction"]["priority_fee"] = 0
        if s.get("chunk"):
            s["chunk"]["header"]["congestion_info"] = None
    raw = raw_from_objects(newer, new_shards)
    assert b"rent_paid" not in raw.block and b"chunk_endorsements" in raw.block
    assert _rows_of(raw, "token.sweat", "game.hot.tg", "users.kaiching") == baseline


def test_older_protocol_without_newer_fields() -> None:
    # 93085141 is protocol 60: no block_body_hash, no is_promise_yield
    block, _ = read_block(fixture_folder(93085141))
    assert "block_body_hash" not in block["header"]
    rows = _rows_of(raw_block(fixture_folder(93085141)), "token.sweat")
    assert len(rows["receipts"]) == 2 and rows["dead_letters"] == []


def test_shard_without_chunk_is_tolerated() -> None:
    block, shards = read_block(fixture_folder(107503704))
    for _, s in shards:
        s["chunk"] = None
    decoded = decoder("token.sweat").decode(raw_from_objects(block, shards))
    assert len(table(decoded.rows, "receipts")) == len(expected_receipts(107503704, "token.sweat"))
    assert decoded.rows.tables["dead_letters"] == []


def test_tx_hash_resolved_only_within_lookback_of_the_transaction(chain: list[RawBlock]) -> None:
    # 3Fop... executes 5 blocks after the transaction, through a chain of receipts in between
    rows = _intents_receipts(_decode_chain(chain, decoder("intents.near:verifier", resolve_all_tx=True, lookback=5)))
    assert rows["3FopwNg5SEipqUJ5QLLJ7Mo8VAs6urkbwonBQMCABTaw"]["tx_hash"] == TX_HASH
    rows = _intents_receipts(_decode_chain(chain, decoder("intents.near:verifier", resolve_all_tx=True, lookback=4)))
    assert rows["3FopwNg5SEipqUJ5QLLJ7Mo8VAs6urkbwonBQMCABTaw"]["tx_hash"] == ""
    assert rows["CQFdgD2w9UcRnUBmv895pFc9uqrDE7ZVHnNZYojqoeev"]["tx_hash"] == TX_HASH  # 4 blocks after


# --- role wiring ------------------------------------------------------------------------------

def _reo(receipt_id: str, receiver: str, predecessor: str, method: str, args: dict, logs: list[str],
         status: dict) -> dict:
    return {
        "execution_outcome": {"block_hash": "x", "id": receipt_id, "outcome": {
            "executor_id": receiver, "gas_burnt": 2_428_000_000_000, "logs": logs, "metadata": {"version": 3},
            "receipt_ids": [], "status": status, "tokens_burnt": "242800000000000000000"}, "proof": []},
        "receipt": {"predecessor_id": predecessor, "receipt_id": receipt_id, "receiver_id": receiver, "receipt": {
            "Action": {"actions": [{"FunctionCall": {"args": base64.b64encode(json.dumps(args).encode()).decode(),
                                                     "deposit": "0", "gas": 100_000_000_000_000,
                                                     "method_name": method}}],
                       "gas_price": "100000000", "input_data_ids": [], "output_data_receivers": [],
                       "signer_id": "alice.near", "signer_public_key": "ed25519:x"}}},
    }


def test_workshop_roles_through_the_block_decoder() -> None:
    v, s = "verifier.workshop.near", "solver.workshop.near"
    intent = {"id": "w-1", "user_account": "alice.near", "action": "swap", "input_token": "wrap.near",
              "input_amount": "10", "output_token": "usdc.near", "min_output_amount": "9", "max_slippage": 1,
              "deadline": 1}
    raws = []
    for n, reo in enumerate([
        _reo("VR1", v, "alice.near", "verify_and_solve", {"intent": intent, "solver_account": s},
             [f"Verified intent w-1, calling solver at {s}"], {"SuccessReceiptId": "SR1"}),
        _reo("SR1", s, v, "solve_intent", {"intent_id": "w-1", "user": "alice.near", "input_amount": "10"},
             ["Executing intent w-1 for user alice.near"],
             {"SuccessValue": base64.b64encode(b'{"intent_id":"w-1","success":true,"output_amount":"9",'
                                               b'"fee_amount":"0"}').decode()}),
    ]):
        block, shards = read_block(fixture_folder(107503704))
        block["header"]["height"] = 300_000_000 + n
        block["header"]["timestamp"] = 1_777_000_000_000_000_000 + n * 1_500_000_000
        shards[0][1]["receipt_execution_outcomes"].append(reo)
        raws.append(raw_from_objects(block, shards))
    d = decoder(f"{v}:workshop-verifier", f"{s}:workshop-solver")
    first, second = (d.decode(r) for r in raws)
    assert [(u["intent_id"], u["status"]) for u in table(first.rows, "intent_updates")] == [
        ("w-1", "pending"), ("w-1", "verified")]
    assert [(u["status"], u["contract_id"]) for u in table(second.rows, "intent_updates")] == [("executing", v)]
    (e,) = table(second.rows, "solver_executions")
    assert (e["contract_id"], e["solver_id"], e["success"]) == (v, s, 1)
    assert e["latency_s"] == pytest.approx(1.5)
    assert [r["receipt_id"] for r in table(first.rows, "receipts")] == ["VR1"]


def test_role_decoder_crash_is_dead_lettered_and_the_receipt_kept(chain: list[RawBlock],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.decode import dip4

    def boom(*_: Any) -> None:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(dip4, "decode_receipt", boom)
    decoded = decoder("intents.near:verifier").decode(chain[0])
    assert [r["receipt_id"] for r in table(decoded.rows, "receipts")] == [MAIN_RECEIPT_ID]
    (dl,) = table(decoded.rows, "dead_letters")
    assert dl["kind"] == "receipt" and dl["receipt_id"] == MAIN_RECEIPT_ID
    assert "verifier decoder failed" in dl["reason"] and "decoder bug" in dl["reason"]
    assert json.loads(dl["payload"])["signed"]  # the call's arguments, for a later re-decode


def _receipt_rows(rows: Rows, receipt_id: str) -> dict[str, list[list[Any]]]:
    return {t: [r for r in rs if "receipt_id" in COLUMNS[t] and r[COLUMNS[t].index("receipt_id")] == receipt_id]
            for t, rs in rows.tables.items()}


def test_a_receipt_level_dead_letter_keeps_its_receipt_to_decode_again(chain: list[RawBlock],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.decode import dip4

    good = decoder("intents.near:verifier").decode(chain[0])
    with monkeypatch.context() as m:
        m.setattr(dip4, "decode_receipt", lambda *_: (_ for _ in ()).throw(RuntimeError("decoder bug")))
        broken = decoder("intents.near:verifier").decode(chain[0])
    (dl,) = table(broken.rows, "dead_letters")
    assert dl["context"] and dl["decoder_version"] >= 3 and dl["log_index"] == -1 and dl["retry_token"] == ""
    again = decoder("intents.near:verifier").redecode(dl["context"])  # the bug fixed: decodes as in its block
    assert _receipt_rows(again, MAIN_RECEIPT_ID) == _receipt_rows(good.rows, MAIN_RECEIPT_ID)
    assert again.tables["intent_updates"] and not again.tables["dead_letters"]


def test_a_log_dead_letter_names_its_log_and_block_level_ones_keep_no_receipt() -> None:
    bad = 'EVENT_JSON:{"standard":"nep141","event":'

    def fn(reo: dict) -> None:
        reo["execution_outcome"]["outcome"]["logs"].insert(0, bad)

    raw, rid = _edit_tracked(107503704, "token.sweat", fn)
    decoded = decoder("token.sweat").decode(raw)
    (dl,) = table(decoded.rows, "dead_letters")
    assert dl["log_index"] == 0 and json.loads(dl["context"])["outcome"]["receipt"]["receipt_id"] == rid
    again = decoder("token.sweat").redecode(dl["context"])
    assert _receipt_rows(again, rid) == _receipt_rows(decoded.rows, rid)  # still fails, the same way
    whole = raw_block(fixture_folder(107503704))
    whole.shards[3] = whole.shards[3][: len(whole.shards[3]) // 2]
    (shard_letter,) = table(decoder("token.sweat").decode(whole).rows, "dead_letters")
    assert shard_letter["kind"] == "shard" and shard_letter["context"] == "" and shard_letter["receipt_id"] == ""
