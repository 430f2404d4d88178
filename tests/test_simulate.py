"""The simulator: Lake layout and shapes, chain properties, determinism, truth consistency, CLI.

Lakes here are small (a couple of hundred heights, little noise) to keep the suite fast; speed
is measured by ``benchmarks/simulate.py``, not here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import base58
import orjson
import pytest
from click.testing import CliRunner

from indexer.decode import dip4, intent_hash
from indexer.gas import bucket_label
from indexer.simulate import SimConfig, generate
from indexer.simulate.command import simulate
from indexer.simulate.options import SolverCollapse, Window
from lakebuild import MAINNET, RPC, TX_FILE

SMALL: dict[str, Any] = {
    "blocks": 160,
    "noise_bytes_per_block": 4000,
    "skip_rate": 0.05,
    "missing_chunk_rate": 0.02,
    "malformed_rate": 0.05,
    "intents_per_block": 3.0,
    "workshop_intents_per_block": 1.0,
}


def _lake(root: Path, **overrides: Any) -> tuple[Path, dict[str, Any]]:
    cfg = SimConfig(out=root, **{**SMALL, **overrides})
    generate(cfg)
    return root, json.loads((root / "truth.json").read_text())


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return _lake(tmp_path_factory.mktemp("sim") / "lake")


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


# --- layout and shapes ---


def test_layout_is_exactly_lake(lake: tuple[Path, dict[str, Any]]) -> None:
    root, truth = lake
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == ["truth.json"]
    folders = _folders(root)
    assert len(folders) == truth["blocks"]["count"]
    for folder in folders:
        assert len(folder.name) == 12 and folder.name.isdigit()
        block = orjson.loads((folder / "block.json").read_bytes())
        assert block["header"]["height"] == int(folder.name)
        expected = {"block.json"} | {f"shard_{c['shard_id']}.json" for c in block["chunks"]}
        assert {p.name for p in folder.iterdir()} == expected


def test_near_lake_framework_decodes_every_file(lake: tuple[Path, dict[str, Any]]) -> None:
    from near_lake_framework.near_primitives import Block, IndexerShard  # logs at import; harmless

    logging.getLogger().setLevel(logging.WARNING)
    root, _ = lake
    shards = 0
    for folder in _folders(root):
        block = Block.from_json((folder / "block.json").read_text())
        assert block.header.height == int(folder.name)
        for chunk in block.chunks:
            shard = IndexerShard.from_json((folder / f"shard_{chunk.shard_id}.json").read_text())
            assert shard.shard_id == chunk.shard_id
            shards += 1
    assert shards == len(_folders(root)) * 9


def test_shapes_match_the_mainnet_fixtures(lake: tuple[Path, dict[str, Any]]) -> None:
    """Every field the real files have is present, nested the same way."""
    root, _ = lake
    rpc = json.loads((RPC / "block_169553183_protocol80.json").read_text())
    rpc = rpc.get("result", rpc)
    tx_fixture = json.loads(TX_FILE.read_text())
    real_shard = json.loads((MAINNET / "000115185108" / "shard_2.json").read_text())

    block = orjson.loads((_folders(root)[1] / "block.json").read_bytes())
    assert set(rpc) == set(block)
    assert set(rpc["header"]) <= set(block["header"])
    assert set(rpc["chunks"][0]) <= set(block["chunks"][0])
    found = defaultdict(int)
    for folder in _folders(root):
        for path in folder.glob("shard_*.json"):
            shard = orjson.loads(path.read_bytes())
            assert set(shard) == set(real_shard)
            if shard["chunk"] is None:
                continue
            assert set(shard["chunk"]) == set(real_shard["chunk"])
            for tx in shard["chunk"]["transactions"]:
                assert set(tx) == set(real_shard["chunk"]["transactions"][0])
                assert set(tx["transaction"]) == set(tx_fixture["transaction"])
                tx_outcome = tx["outcome"]["execution_outcome"]["outcome"]
                assert set(tx_outcome) == set(tx_fixture["transaction_outcome"]["outcome"])
                found["tx"] += 1
            for reo in shard["receipt_execution_outcomes"]:
                assert set(reo) == {"execution_outcome", "receipt"}
                assert set(reo["execution_outcome"]) == set(tx_fixture["receipts_outcome"][0])
                assert set(reo["execution_outcome"]["outcome"]) == set(tx_fixture["receipts_outcome"][0]["outcome"])
                assert set(reo["receipt"]) == set(tx_fixture["receipts"][0])
                action = reo["receipt"]["receipt"].get("Action")
                if action is not None:
                    assert set(action) == set(tx_fixture["receipts"][0]["receipt"]["Action"])
                found["outcome"] += 1
                status = reo["execution_outcome"]["outcome"]["status"]
                if "Failure" in status:
                    assert set(status["Failure"]["ActionError"]["kind"]["FunctionCallError"]) == {"ExecutionError"}
                    found["failure"] += 1
    assert found["tx"] and found["outcome"] and found["failure"]


def _intent_receipts(root: Path):
    """(signed payloads, outcome) of every intents.near receipt that carried signed payloads."""
    for folder in _folders(root):
        for path in folder.glob("shard_*.json"):
            for reo in orjson.loads(path.read_bytes())["receipt_execution_outcomes"]:
                receipt = reo["receipt"]
                action = receipt["receipt"].get("Action")
                if receipt["receiver_id"] != "intents.near" or action is None:
                    continue
                for a in action["actions"]:
                    call = a.get("FunctionCall") if isinstance(a, dict) else None
                    if call is None or call["method_name"] not in dip4.INTENT_METHODS:
                        continue
                    try:
                        signed = dip4.signed_payloads(call["method_name"], orjson.loads(base64.b64decode(call["args"])))
                    except ValueError:
                        continue  # a malformed-args batch (--malformed-rate)
                    if signed:
                        yield signed, reo["execution_outcome"]["outcome"]


def _b64url_sha256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def _assert_shape(signed: dict[str, Any]) -> None:
    """A MultiPayload as intents.near deserializes it, per standard."""
    std = signed["standard"]
    if std == "bip322":  # rides along in batches that fail to deserialize
        assert set(signed) == {"standard", "address", "message", "signature"}
        assert set(orjson.loads(signed["message"])) == {"signer_id", "verifying_contract", "deadline", "nonce",
                                                         "intents"}
        return
    if std == "nep413":
        assert set(signed) == {"standard", "payload", "public_key", "signature"}
        assert set(signed["payload"]) == {"message", "nonce", "recipient"}
        assert signed["payload"]["recipient"] == "intents.near"
        assert len(base64.b64decode(signed["payload"]["nonce"])) == 32
        message = orjson.loads(signed["payload"]["message"])
        assert set(message) == {"signer_id", "deadline", "intents"} and message["deadline"].endswith("Z")
        assert signed["public_key"].startswith("ed25519:") and signed["signature"].startswith("ed25519:")
        return
    text = signed["payload"]["text"] if std == "ton_connect" else signed["payload"]
    message = orjson.loads(text)
    assert list(message) == ["signer_id", "verifying_contract", "deadline", "nonce", "intents"]
    assert message["verifying_contract"] == "intents.near" and len(base64.b64decode(message["nonce"])) == 32
    signer = message["signer_id"]
    if std in ("erc191", "tip191"):
        assert set(signed) == {"standard", "payload", "signature"}
        assert signed["signature"].startswith("secp256k1:") and len(base58.b58decode(signed["signature"][10:])) == 65
        assert signer.startswith("0x") and len(signer) == 42
    elif std == "webauthn":
        assert set(signed) == {"standard", "payload", "public_key", "signature", "client_data_json",
                               "authenticator_data"}
        assert signed["public_key"].startswith("p256:") and signed["signature"].startswith("p256:")
        # the passkey signed client data whose challenge is the SHA-256 of the payload
        assert orjson.loads(signed["client_data_json"])["challenge"] == _b64url_sha256(text)
        assert signer.startswith("0x")
    elif std == "ton_connect":
        assert set(signed) == {"standard", "address", "domain", "timestamp", "payload", "public_key", "signature"}
        assert signed["payload"]["type"] == "text" and signed["address"].startswith("0:")
        assert isinstance(signed["timestamp"], int) and len(signer) == 64
    else:
        assert std in ("raw_ed25519", "sep53"), std
        assert set(signed) == {"standard", "payload", "public_key", "signature"} and len(signer) == 64


def test_signed_payloads_follow_their_standard(lake: tuple[Path, dict[str, Any]]) -> None:
    root, _ = lake
    seen: defaultdict[str, int] = defaultdict(int)
    for signed_list, _ in _intent_receipts(root):
        for signed in signed_list:
            _assert_shape(signed)
            seen[signed["standard"]] += 1
    assert set(seen) == intent_hash.STANDARDS | {"bip322"}  # every standard intents.near accepts, and one it never did
    assert seen["nep413"] > sum(seen.values()) / 2


def test_intent_hashes_are_the_hashes_of_the_signed_payloads(lake: tuple[Path, dict[str, Any]]) -> None:
    root, truth = lake
    status_of = {row[1]: row[2] for row in truth["details"]["intents"] if row[0] == "intents.near"}
    executed = failed = undeployed = 0
    for signed_list, outcome in _intent_receipts(root):
        if any(s["standard"] == "bip322" for s in signed_list):
            assert outcome["status"] == {"Failure": {"ActionError": {"index": 0, "kind": {"FunctionCallError": {
                "ExecutionError": "Smart contract panicked: Failed to deserialize input from JSON."}}}}}
            undeployed += 1
            signed_list = [s for s in signed_list if s["standard"] != "bip322"]
        hashes = [intent_hash.intent_hash(s) for s in signed_list]
        if "Failure" in outcome["status"]:
            assert all(status_of[h] == "failed" for h in hashes)  # truth names failed intents by their hash
            failed += len(hashes)
            continue
        logged = [item for line in outcome["logs"] if '"intents_executed"' in line
                  for item in orjson.loads(line[len("EVENT_JSON:"):])["data"]]
        assert [item["intent_hash"] for item in logged] == hashes
        assert all(status_of[h] == "executed" for h in hashes)
        executed += len(hashes)
    assert executed > 50 and failed > 5 and undeployed > 0
    assert len(status_of) == executed + failed
    # one dead letter per payload without a hash, one per batch that is not JSON at all
    assert 0 < undeployed <= truth["dead_letters"]["by_kind"]["args"]


# --- chain ---


def test_chain_continuity_skips_and_timestamps(lake: tuple[Path, dict[str, Any]]) -> None:
    root, truth = lake
    b = truth["blocks"]
    headers = [orjson.loads((f / "block.json").read_bytes())["header"] for f in _folders(root)]
    heights = [h["height"] for h in headers]
    assert heights[0] == b["first_height"] and heights[-1] == b["last_height"]
    assert b["last_height"] - b["first_height"] + 1 == b["heights"] == SMALL["blocks"]
    all_heights = set(range(b["first_height"], b["last_height"] + 1))
    assert sorted(all_heights - set(heights)) == b["skipped_heights"] and b["skipped_heights"]
    assert headers[0]["prev_hash"] == b["first_prev_hash"] and headers[0]["prev_height"] == b["first_prev_height"]
    for prev, cur in zip(headers, headers[1:]):
        assert cur["prev_hash"] == prev["hash"]
        assert cur["prev_height"] == prev["height"]
        assert cur["timestamp"] > prev["timestamp"]
    hashes = [h["hash"] for h in headers]
    assert len(set(hashes)) == len(hashes)
    for h in headers:
        assert h["timestamp"] == int(h["timestamp_nanosec"])
        assert h["latest_protocol_version"] >= 83
        assert len(base58_decode(h["hash"])) == 32


def base58_decode(text: str) -> bytes:
    import base58

    return base58.b58decode(text)


def test_shard_ids_and_missing_chunks(lake: tuple[Path, dict[str, Any]]) -> None:
    root, truth = lake
    missing = {tuple(m) for m in truth["blocks"]["missing_chunks"]}
    assert missing, "the small lake should miss a few chunks"
    for folder in _folders(root):
        block = orjson.loads((folder / "block.json").read_bytes())
        ids = [c["shard_id"] for c in block["chunks"]]
        assert ids == truth["blocks"]["shard_ids"]
        assert sorted(ids) != list(range(len(ids)))  # not contiguous, not 0..n-1
        height = block["header"]["height"]
        for i, chunk in enumerate(block["chunks"]):
            shard = orjson.loads((folder / f"shard_{chunk['shard_id']}.json").read_bytes())
            is_missing = (height, chunk["shard_id"]) in missing
            assert block["header"]["chunk_mask"][i] is (not is_missing)
            assert (shard["chunk"] is None) is is_missing
            if is_missing:
                assert chunk["height_included"] < height and not shard["receipt_execution_outcomes"]
            else:
                assert shard["chunk"]["header"] == chunk
        assert block["header"]["chunks_included"] == sum(block["header"]["chunk_mask"])


def test_shards_mention_tracked_accounts_only_where_declared(lake: tuple[Path, dict[str, Any]]) -> None:
    root, truth = lake
    needles = [c.split(":")[0].encode() for c in truth["contracts"]]
    mentioning = 0
    for folder in _folders(root):
        for path in folder.glob("shard_*.json"):
            data = path.read_bytes()
            mentioning += any(n in data for n in needles)
    assert mentioning == truth["blocks"]["shard_files_mentioning_tracked"]
    assert truth["blocks"]["shard_files"] == len(_folders(root)) * 9


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_tracked_shard_fraction(tmp_path: Path, fraction: float) -> None:
    _, truth = _lake(tmp_path / "lake", blocks=40, missing_chunk_rate=0, malformed_rate=0,
                     tracked_shard_fraction=fraction)
    b = truth["blocks"]
    share = b["shard_files_mentioning_tracked"] / b["shard_files"]
    homes = len(set(b["home_shards"].values()))
    assert share == pytest.approx(homes / 9 if fraction == 0 else 1.0)


def test_gas_never_above_attached_and_within_limit(lake: tuple[Path, dict[str, Any]]) -> None:
    root, _ = lake
    for folder in _folders(root):
        for path in folder.glob("shard_*.json"):
            shard = orjson.loads(path.read_bytes())
            for reo in shard["receipt_execution_outcomes"]:
                action = reo["receipt"]["receipt"].get("Action")
                calls = [a["FunctionCall"] for a in action["actions"] if isinstance(a, dict) and "FunctionCall" in a]
                if calls:
                    gas = reo["execution_outcome"]["outcome"]["gas_burnt"]
                    assert gas <= sum(c["gas"] for c in calls) <= 10**15


# --- determinism ---


def test_same_options_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    opts = {"blocks": 30, "noise_bytes_per_block": 3000, "malformed_rate": 0.1, "missing_chunk_rate": 0.05}
    generate(SimConfig(out=tmp_path / "a", **opts))
    generate(SimConfig(out=tmp_path / "b", **opts))
    generate(SimConfig(out=tmp_path / "c", seed=1, **opts))
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")


def test_noise_size_does_not_change_the_truth_of_tracked_traffic(tmp_path: Path) -> None:
    _, small = _lake(tmp_path / "a", blocks=40, noise_bytes_per_block=1000)
    _, big = _lake(tmp_path / "b", blocks=40, noise_bytes_per_block=30000)
    for key in ("receipts", "events", "solver_executions", "intents", "totals"):
        assert small[key] == big[key]


# --- truth ---


def test_truth_is_internally_consistent(lake: tuple[Path, dict[str, Any]]) -> None:
    _, t = lake
    totals = t["totals"]
    assert totals["unfinished_receipts"] == 0
    assert totals["tracked_receipts"] == sum(r["count"] for r in t["receipts"].values())
    for r in t["receipts"].values():
        assert r["success"] + r["failure"] == r["count"]
        assert sum(sum(m.values()) for m in r["by_method"].values()) == r["count"]
        assert sum(r["failures"].values()) == r["failure"]
        assert sum(r["per_block"].values()) == r["count"]
    assert totals["events"] == sum(sum(v.values()) for ev in t["events"].values() for v in ev.values())
    n_exec = 0
    for per in t["solver_executions"].values():
        for s in per.values():
            n_exec += s["executions"]
            assert s["successes"] + sum(s["failures"].values()) == s["executions"]
            assert sum(s["gas_buckets"].values()) == s["executions"]
            assert s["latency_s"] is None or s["latency_s"]["count"] == s["executions"]
    assert totals["solver_executions"] == n_exec
    assert totals["intents"] == sum(sum(i["by_status"].values()) for i in t["intents"].values())
    for i in t["intents"].values():
        terminal = {k: v for k, v in i["by_status"].items() if k in ("executed", "failed", "completed", "expired")}
        per_minute: dict[str, int] = defaultdict(int)
        for counts in i["per_minute"].values():
            for status, n in counts.items():
                per_minute[status] += n
        assert dict(per_minute) == terminal
    assert totals["dead_letters"] == t["dead_letters"]["total"] == sum(t["dead_letters"]["by_kind"].values()) > 0
    # details agree with the aggregates
    d = t["details"]
    assert len(d["intents"]) == totals["intents"] and len(d["solver_executions"]) == n_exec
    gas: dict[str, int] = defaultdict(int)
    for contract, solver, _rid, success, failure, g, _h, _lat, tx_hash in d["solver_executions"]:
        gas[solver] += g
        assert tx_hash
        assert bool(success) == (failure == "")
        assert bucket_label(g) in t["solver_executions"][contract][solver]["gas_buckets"]
    assert dict(gas) == {s: v["gas_burnt"] for per in t["solver_executions"].values() for s, v in per.items()}
    assert t["contracts"][0] == "intents.near:verifier"
    assert set(t["solver_accounts"]) < set(t["solvers"]["intents.near"])


def _read_back(root: Path, tracked: set[str]) -> dict[str, Any]:
    """An independent recount from the written files (not how the truth was made)."""
    receipts: dict[str, dict[str, Any]] = {c: {"count": 0, "success": 0, "failure": 0, "gas_burnt": 0,
                                               "per_block": defaultdict(int)} for c in tracked}
    events: dict[str, dict[str, dict[str, int]]] = {c: {} for c in tracked}
    malformed_logs = 0
    solves: dict[str, int] = defaultdict(int)
    for folder in _folders(root):
        height = int(folder.name)
        for path in folder.glob("shard_*.json"):
            for reo in orjson.loads(path.read_bytes())["receipt_execution_outcomes"]:
                receiver = reo["receipt"]["receiver_id"]
                if receiver not in tracked:
                    continue
                outcome = reo["execution_outcome"]["outcome"]
                label = "failure" if "Failure" in outcome["status"] else "success"
                r = receipts[receiver]
                r["count"] += 1
                r[label] += 1
                r["gas_burnt"] += outcome["gas_burnt"]
                r["per_block"][str(height)] += 1
                for line in outcome["logs"]:
                    if not line.startswith("EVENT_JSON:"):
                        continue
                    try:
                        ev = orjson.loads(line[len("EVENT_JSON:"):])
                    except orjson.JSONDecodeError:
                        malformed_logs += 1
                        continue
                    key = f"{ev['standard']}:{ev['event']}"
                    events[receiver].setdefault(key, {"success": 0, "failure": 0})[label] += 1
                calls = [a["FunctionCall"] for a in reo["receipt"]["receipt"]["Action"]["actions"]
                         if isinstance(a, dict) and "FunctionCall" in a]
                if calls and calls[0]["method_name"] == "solve_intent":
                    solves[reo["receipt"]["predecessor_id"]] += 1
    for r in receipts.values():
        r["per_block"] = dict(sorted(r["per_block"].items(), key=lambda kv: int(kv[0])))
    return {"receipts": receipts, "events": events, "malformed_logs": malformed_logs, "solves": dict(solves)}


def test_truth_agrees_with_a_recount_of_the_files(lake: tuple[Path, dict[str, Any]]) -> None:
    root, t = lake
    tracked = {c.split(":")[0] for c in t["contracts"]}
    got = _read_back(root, tracked)
    for c in tracked:
        want = {k: t["receipts"][c][k] for k in ("count", "success", "failure", "gas_burnt", "per_block")}
        assert got["receipts"][c] == want, c
        assert got["events"][c] == t["events"][c], c
    assert got["malformed_logs"] == t["dead_letters"]["by_kind"].get("log", 0) > 0
    workshop = t["solver_executions"]["verifier.workshop.near"]
    assert got["solves"] == {"verifier.workshop.near": sum(s["executions"] for s in workshop.values())}


def test_failures_follow_the_documented_forms(lake: tuple[Path, dict[str, Any]]) -> None:
    _, t = lake
    intents_failures = set(t["receipts"]["intents.near"]["failures"])
    panics = ("deadline has expired", "nonce was already used", "invalid signature",
              "invariant violated: unmatched deltas", "insufficient balance or overflow",
              "Failed to deserialize input from JSON.")
    allowed = {f"Smart contract panicked: {p}" for p in panics} | {"Exceeded the prepaid gas."}
    assert intents_failures <= allowed and intents_failures
    ws = t["intents"]["verifier.workshop.near"]
    assert set(ws["by_status"]) <= {"completed", "failed", "expired"}
    assert set(ws["failures"]) <= {"execution failed at solver", "Smart contract panicked: Intent expired"}


# --- incidents ---


def test_verifier_pause_leaves_a_gap_and_then_catches_up(tmp_path: Path) -> None:
    _, t = _lake(tmp_path / "lake", blocks=120, skip_rate=0, missing_chunk_rate=0,
                 verifier_pauses=(Window(40, 59),))
    start = t["blocks"]["first_height"]
    for contract in ("intents.near", "verifier.workshop.near"):
        heights = {int(h) for h in t["receipts"][contract]["per_block"]}
        assert not heights & set(range(start + 40, start + 60)), contract
        assert start + 60 in heights  # the held receipts run right after the pause
    assert t["incidents"] == [{"kind": "verifier_pause", "from_offset": 40, "to_offset": 59,
                               "from_height": start + 40, "to_height": start + 59}]


def test_solver_collapse_and_gas_spike(tmp_path: Path) -> None:
    _, t = _lake(tmp_path / "lake", blocks=200, intents_per_block=4, malformed_rate=0,
                 solver_collapses=(SolverCollapse("solver-priv-liq.near", 100, 0.0),),
                 gas_spikes=(Window(20, 60, 40.0),))
    start = t["blocks"]["first_height"]
    rows = [r for r in t["details"]["solver_executions"] if r[1] == "solver-priv-liq.near"]
    after = [r for r in rows if r[6] > start + 101]
    before = [r for r in rows if r[6] <= start + 100 and not start + 20 <= r[6] <= start + 62]  # outside the spike
    assert after and not any(r[3] for r in after)  # success rate 0 after the collapse
    assert sum(r[3] for r in before) > 0.8 * len(before)
    spiked = [r for r in t["details"]["solver_executions"]
              if start + 20 <= r[6] <= start + 60 and r[0] == "intents.near"]
    assert any(r[4] == "Exceeded the prepaid gas." for r in spiked)
    assert min(r[5] for r in spiked) > 40 * 10**12


def test_solver_collapse_with_an_end_recovers(tmp_path: Path) -> None:
    _, t = _lake(tmp_path / "lake", blocks=240, intents_per_block=4, malformed_rate=0,
                 solver_collapses=(SolverCollapse("solver-priv-liq.near", 60, 0.0, end=139),))
    start = t["blocks"]["first_height"]
    rows = [r for r in t["details"]["solver_executions"] if r[1] == "solver-priv-liq.near"]
    # Executions land a block or two after their batch starts: stay clear of the edges.
    during = [r for r in rows if start + 62 <= r[6] <= start + 139]
    after = [r for r in rows if r[6] >= start + 145]
    assert during and not any(r[3] for r in during)
    assert after and sum(r[3] for r in after) > 0.8 * len(after)
    assert t["incidents"] == [{"kind": "solver_collapse", "solver": "solver-priv-liq.near", "from_offset": 60,
                               "from_height": start + 60, "success_rate": 0.0, "to_offset": 139,
                               "to_height": start + 139}]


# --- CLI ---


def test_cli_writes_lake_and_prints_backfill_command(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    result = CliRunner().invoke(simulate, ["--out", str(out), "--blocks", "25", "--noise-bytes-per-block", "1000",
                                           "--incident-gas-spike", "3:5x2", "--incident-solver-collapse", "2@10"])
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "truth.json").read_text())
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("intents-indexer backfill --source files:")
    assert f"--from {truth['blocks']['first_height']} --to {truth['blocks']['last_height']}" in line
    assert all(f"--contract {c}" in line for c in truth["contracts"])
    assert [i["kind"] for i in truth["incidents"]] == ["solver_collapse", "gas_spike"]
    # a second run into the same folder needs --force
    again = CliRunner().invoke(simulate, ["--out", str(out), "--blocks", "25"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = CliRunner().invoke(simulate, ["--out", str(out), "--blocks", "25", "--force", "--quiet"])
    assert forced.exit_code == 0 and forced.output == ""


@pytest.mark.parametrize("args, message", [
    (["--incident-gas-spike", "9"], "FROM:TO"),
    (["--incident-verifier-pause", "5:2"], "TO must not be before FROM"),
    (["--incident-solver-collapse", "nobody.near@3"], "no such solver"),
    (["--incident-solver-collapse", "1@999"], "after the last block"),
    (["--incident-solver-collapse", "1@9-3"], "END must not be before OFFSET"),
    (["--shard-ids", "a,b"], "comma-separated integers"),
    (["--protocol-version", "80"], "83"),
    (["--unlisted-solvers", "8"], "unlisted-solvers"),
])
def test_cli_rejects_bad_options_with_a_hint(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(simulate, ["--out", str(tmp_path / "x"), "--blocks", "20", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_help_explains_every_option() -> None:
    result = CliRunner().invoke(simulate, ["--help"])
    assert result.exit_code == 0
    for param in simulate.params:
        if isinstance(param, __import__("click").Option) and param.name != "help":
            assert param.help, f"--{param.name} has no help text"
