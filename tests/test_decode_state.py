"""indexer.decode.state.ExpiringMap: memory forgotten by block age, rebuilt exactly by replay."""

from __future__ import annotations

import random

from indexer.decode.state import ExpiringMap


def test_entry_lives_lookback_blocks() -> None:
    m: ExpiringMap[str] = ExpiringMap(3)
    m.begin_block(10)
    m.set("a", "tx-a")
    for h in (11, 12, 13):
        m.begin_block(h)
        assert m.get("a") == "tx-a" and "a" in m
    m.begin_block(14)
    assert m.get("a") is None and "a" not in m and len(m) == 0
    assert m.get("a", "dflt") == "dflt"


def test_expiry_by_height_not_by_count_of_blocks_seen() -> None:
    m: ExpiringMap[int] = ExpiringMap(100)
    m.begin_block(1000)
    m.set("k", 1)
    m.begin_block(1100)  # 99 skipped heights in between: still within 100 blocks
    assert m.get("k") == 1
    m.begin_block(1101)
    assert "k" not in m


def test_many_blocks_within_age_are_kept() -> None:
    m: ExpiringMap[int] = ExpiringMap(5)
    m.begin_block(1)
    m.set("k", 1)
    for _ in range(50):  # many begin_block calls at the same height never age an entry
        m.begin_block(6)
    assert m.get("k") == 1


def test_zero_lookback_keeps_only_the_current_block() -> None:
    m: ExpiringMap[int] = ExpiringMap(0)
    m.begin_block(5)
    m.set("a", 1)
    assert m.get("a") == 1
    m.begin_block(6)
    assert "a" not in m


def test_value_update_keeps_latest_value() -> None:
    m: ExpiringMap[str] = ExpiringMap(10)
    m.begin_block(1)
    m.set("a", "x")
    m.set("a", "y")
    assert m.get("a") == "y" and len(m) == 1


def _run(lookback: int, ops: list[tuple[int, list[tuple[str, int]]]], start_index: int = 0) -> dict[str, int]:
    m: ExpiringMap[int] = ExpiringMap(lookback)
    for height, sets in ops[start_index:]:
        m.begin_block(height)
        for k, v in sets:
            m.set(k, v)
    return {k: m.get(k) for k in {k for _, s in ops for k, _ in s} if k in m}


def _ops(seed: int, n: int = 300) -> list[tuple[int, list[tuple[str, int]]]]:
    rnd = random.Random(seed)
    ops, height = [], 1000
    for _ in range(n):
        height += rnd.choice([1, 1, 1, 2, 5])  # skipped heights
        ops.append((height, [(f"k{rnd.randrange(60)}", rnd.randrange(10_000)) for _ in range(rnd.randrange(4))]))
    return ops


def test_replay_of_lookback_blocks_rebuilds_identical_state() -> None:
    """A run resumed at H that replays heights H-lookback..H-1 equals a clean run at H,
    even when keys are set again in later blocks."""
    lookback = 20
    for seed in range(20):
        ops = _ops(seed)
        for cut in (30, 150, 299):
            resume_height = ops[cut][0]
            clean = _run(lookback, ops[: cut + 1])
            first = next(i for i, (h, _) in enumerate(ops) if h >= resume_height - lookback)
            replayed = _run(lookback, ops[: cut + 1], start_index=first)
            assert replayed == clean, (seed, cut)


def test_key_set_again_lives_from_its_last_set() -> None:
    m: ExpiringMap[str] = ExpiringMap(3)
    m.begin_block(1)
    m.set("a", "first")
    m.begin_block(3)
    m.set("a", "second")
    m.begin_block(5)  # 4 blocks after the first set, 2 after the last
    assert m.get("a") == "second"
    m.begin_block(6)
    assert m.get("a") == "second"
    m.begin_block(7)
    assert "a" not in m


def test_derived_entry_expires_with_its_origin() -> None:
    m: ExpiringMap[str] = ExpiringMap(3)
    m.begin_block(10)
    m.set("tx-receipt", "TX")
    m.begin_block(12)
    born, value = m.entry("tx-receipt")
    assert (born, value) == (10, "TX")
    m.set("child", value, born=born)  # a child receipt inherits its transaction
    assert m.entry("child") == (10, "TX")
    m.begin_block(13)
    assert m.get("child") == "TX"
    m.begin_block(14)  # 4 blocks after the transaction, 2 after the child was set
    assert m.get("child") is None and "child" not in m and m.entry("child") is None
    assert len(m) == 0


def test_born_cannot_be_in_the_future() -> None:
    m: ExpiringMap[str] = ExpiringMap(2)
    m.begin_block(5)
    m.set("k", "v", born=50)
    assert m.entry("k") == (5, "v")


def _run_chains(lookback: int, blocks: list[tuple[int, list[str], list[tuple[str, str]]]],
                start_index: int = 0) -> dict[str, str]:
    """blocks: (height, new transactions' receipt ids, (parent, child) links executed)."""
    m: ExpiringMap[str] = ExpiringMap(lookback)
    for height, txs, links in blocks[start_index:]:
        m.begin_block(height)
        for rid in txs:
            m.set(rid, f"tx-{rid}")
        for parent, child in links:
            e = m.entry(parent)
            if e is not None:
                m.set(child, e[1], born=e[0])
    keys = {k for _, t, links in blocks for k in t + [c for _, c in links]}
    return {k: m.get(k) for k in keys if k in m}


def test_replay_rebuilds_chains_of_derived_entries() -> None:
    lookback = 6
    for seed in range(30):
        rnd = random.Random(seed)
        blocks, height, known = [], 0, []
        for n in range(120):
            height += rnd.choice([1, 1, 2, 3])
            txs = [f"r{n}_{i}" for i in range(rnd.randrange(3))]
            links = []
            for _ in range(rnd.randrange(4)):
                if known:
                    links.append((rnd.choice(known[-15:]), f"c{n}_{len(links)}"))
            known += txs + [c for _, c in links]
            blocks.append((height, txs, links))
        for cut in (20, 60, 119):
            resume = blocks[cut][0]
            first = next(i for i, (h, _, _) in enumerate(blocks) if h >= resume - lookback)
            assert _run_chains(lookback, blocks[: cut + 1], first) == _run_chains(lookback, blocks[: cut + 1]), seed
