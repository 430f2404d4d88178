"""GET /api/v1/ws: subscriptions, pushes of committed changes with a per-connection seq, resume,
limits and close codes, with a real aiohttp WebSocket client."""

from __future__ import annotations

from typing import Any

from apiserver import WsClient, commit, insert_updates, redis_server, redis_url, serve, update, wait_until  # noqa: F401


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """A reply without its session id (random)."""
    assert isinstance(message.get("session"), str) and len(message["session"]) >= 16
    return {k: v for k, v in message.items() if k != "session"}


def _hub(api: Any) -> Any:
    from indexer.api.app import HUB

    return api.runner.app[HUB]


def _index(store: Any, seq: int, height: int, intent_id: str, status: str) -> None:
    """One block of carol's intents indexed and committed."""
    insert_updates(store, [update(height, intent_id, status, contract="v.near", signer="carol.near")])
    commit(store, "s1", seq, ["v.near"], height, height)


def test_resume_by_seq_after_a_disconnect_misses_nothing_and_repeats_nothing(store, serve) -> None:  # type: ignore[no-untyped-def]
    _index(store, 1, 10, "a1", "pending")
    api = serve(store)
    hub = _hub(api)
    first = WsClient(api)
    first.send({"type": "subscribe", "account": "carol.near"})
    subscribed = first.receive()
    session, got = subscribed["session"], [subscribed]
    _index(store, 2, 11, "a1", "verified")
    got.append(first.receive())
    _index(store, 3, 12, "a2", "pending")
    # seq 3 is sent, but the client goes away before reading it: it is lost with the connection
    wait_until(lambda: any(c.id == session and c.seq == 3 for c in list(hub.connections)), what="seq 3 sent")
    first.close()
    wait_until(lambda: session in hub.detached, what="the session detached")
    # blocks indexed while the client is away are journaled in the session
    _index(store, 4, 13, "a1", "completed")
    _index(store, 5, 14, "a3", "pending")
    _index(store, 6, 15, "a2", "failed")
    wait_until(lambda: hub.detached[session].seq == 6, what="three changes journaled")
    second = WsClient(api)
    second.send({"type": "subscribe", "account": "carol.near", "session": session, "since_seq": got[-1]["seq"]})
    replayed = [second.receive() for _ in range(4)]  # seq 3 to 6
    resubscribed = second.receive()
    assert resubscribed["type"] == "subscribed" and resubscribed["session"] == session
    _index(store, 7, 16, "a3", "completed")  # and live pushes go on, numbered on
    live = second.receive()
    second.close()
    union = got + replayed + [resubscribed, live]
    assert [m["seq"] for m in union] == list(range(1, 9))  # gapless, no duplicate, in order
    updates = [(m["intent_hash"], m["status"], m["block_height"]) for m in union if m["type"] == "intent_update"]
    assert updates == [("a1", "verified", 11), ("a2", "pending", 12), ("a1", "completed", 13),
                       ("a3", "pending", 14), ("a2", "failed", 15), ("a3", "completed", 16)]


def test_a_resume_that_cannot_be_served_says_so(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    ws = WsClient(api)
    ws.send({"type": "subscribe", "account": "carol.near", "session": "no-such-session", "since_seq": 3})
    failed = ws.receive()
    assert failed["type"] == "error" and failed["code"] == "resume_failed" and "since_height" in failed["message"]
    first = WsClient(api)
    first.send({"type": "subscribe", "account": "carol.near"})
    session = first.receive()["session"]
    first.close()
    wait_until(lambda: session in _hub(api).detached, what="the session detached")
    ahead = WsClient(api)  # a seq the session never sent
    ahead.send({"type": "subscribe", "account": "carol.near", "session": session, "since_seq": 5})
    assert ahead.receive()["code"] == "resume_failed"
    again = WsClient(api)  # the session is still there for a right seq
    again.send({"type": "subscribe", "account": "carol.near", "session": session, "since_seq": 1})
    assert _plain(again.receive()) == {"type": "subscribed", "account": "carol.near", "seq": 2}


def test_push_after_commit_with_monotonic_seq(store, serve) -> None:  # type: ignore[no-untyped-def]
    insert_updates(store, [update(10, "intent-1", "pending", contract="v.near", signer="bob.near")])
    commit(store, "s1", 1, ["v.near"], 10, 10)
    api = serve(store)
    ws = WsClient(api)
    ws.send({"type": "subscribe", "intent_hash": "intent-1"})
    assert _plain(ws.receive()) == {"type": "subscribed", "intent_hash": "intent-1", "seq": 1}
    current = ws.receive()
    assert current["type"] == "intent_update" and current["status"] == "pending" and current["seq"] == 2
    ws.send({"type": "subscribe", "account": "bob.near"})
    assert _plain(ws.receive()) == {"type": "subscribed", "account": "bob.near", "seq": 3}
    # an update stored but not committed is not pushed; its commit is
    insert_updates(store, [update(11, "intent-1", "verified", contract="v.near", solver="sol.near")])
    commit(store, "s1", 2, ["v.near"], 11, 11)
    pushed = ws.receive()
    assert pushed["type"] == "intent_update" and pushed["status"] == "verified" and pushed["seq"] == 4
    assert pushed["block_height"] == 11 and pushed["details"]["solver_id"] == "sol.near"
    assert isinstance(pushed["timestamp"], float)
    # the pushed state is what a GET answers from then on (the caches were evicted first)
    assert api.get("/api/v1/intents/intent-1").json["status"] == "verified"
    ws.send({"type": "unsubscribe", "intent_hash": "intent-1"})
    assert _plain(ws.receive()) == {"type": "unsubscribed", "intent_hash": "intent-1", "seq": 5}
    insert_updates(store, [update(12, "intent-1", "completed", contract="v.near")])
    commit(store, "s1", 3, ["v.near"], 12, 12)
    pushed = ws.receive()  # still subscribed by account: exactly one push
    assert pushed["status"] == "completed" and pushed["seq"] == 6
    ws.close()


def test_resume_since_a_height_replays_what_was_missed(store, serve) -> None:  # type: ignore[no-untyped-def]
    insert_updates(store, [update(10, "a1", "executed", signer="carol.near"),
                           update(20, "a2", "failed", signer="carol.near"),
                           update(30, "a3", "executed", signer="carol.near"),
                           update(31, "other", "executed", signer="dave.near")])
    api = serve(store)
    ws = WsClient(api)
    ws.send({"type": "subscribe", "account": "carol.near", "since_height": 10})
    assert ws.receive()["type"] == "subscribed"
    replay = [ws.receive(), ws.receive()]
    assert [(m["intent_hash"], m["block_height"], m["seq"]) for m in replay] == [("a2", 20, 2), ("a3", 30, 3)]
    ws.send({"type": "subscribe", "intent_hash": "a1", "since_height": 10})
    assert ws.receive()["seq"] == 4  # subscribed; a1 did not change above 10: nothing replayed
    ws.send({"type": "subscribe", "intent_hash": "a1"})
    assert ws.receive()["type"] == "subscribed"
    assert ws.receive()["intent_hash"] == "a1"
    ws.close()


def test_bad_messages_get_errors_then_a_1008(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    ws = WsClient(api)
    for bad in ("not json", {"type": "dance"}, {"type": "subscribe"},
                {"type": "subscribe", "intent_hash": "x", "account": "bob.near"},
                {"type": "subscribe", "account": "Not_Valid"}, {"type": "subscribe", "intent_hash": "a b"},
                {"type": "subscribe", "account": "bob.near", "since_height": -1}):
        ws.send(bad)
        assert ws.receive()["type"] == "error"
    for _ in range(3):
        ws.send("nope")
        assert ws.receive()["type"] == "error"
    assert ws.receive() == ("closed", 1008, "too many invalid messages")


def test_subscription_and_message_size_limits(store, serve) -> None:  # type: ignore[no-untyped-def]
    from indexer.api.live import MAX_SUBSCRIPTIONS

    api = serve(store)
    ws = WsClient(api)
    for n in range(MAX_SUBSCRIPTIONS + 1):
        ws.send({"type": "subscribe", "intent_hash": f"i{n}"})
        if n < MAX_SUBSCRIPTIONS:
            assert ws.receive()["type"] == "subscribed"
    assert ws.receive() == ("closed", 1008, f"more than {MAX_SUBSCRIPTIONS} subscriptions")
    big = WsClient(api)
    big.send({"type": "subscribe", "intent_hash": "x" * 10_000})
    assert big.receive() == ("closed", 1009, "messages are at most 4096 bytes")


def test_connections_and_pushes_in_metrics(store, serve) -> None:  # type: ignore[no-untyped-def]
    from test_api_limits import _metric

    api = serve(store)
    before = _metric(api, "near_intents_api_websocket_connections")
    ws = WsClient(api)
    ws.send({"type": "subscribe", "account": "bob.near"})
    ws.receive()
    assert _metric(api, "near_intents_api_websocket_connections") == before + 1
    ws.close()


def test_a_plain_get_is_a_400_problem(store, serve) -> None:  # type: ignore[no-untyped-def]
    r = serve(store).get("/api/v1/ws")
    assert r.status == 400 and r.headers["Content-Type"].startswith("application/problem+json")


def test_replicas_share_one_feed_follower_over_redis(store, serve, redis_url) -> None:  # type: ignore[no-untyped-def]
    import redis

    from apiserver import wait_until
    from indexer.api import fanout

    insert_updates(store, [update(10, "intent-1", "pending", contract="v.near", signer="bob.near")])
    commit(store, "s1", 1, ["v.near"], 10, 10)
    a = serve(store, redis_url=redis_url, api_local_cache_ttl=3600, api_cache_ttl=3600)
    b = serve(store, redis_url=redis_url, api_local_cache_ttl=3600, api_cache_ttl=3600)
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: client.get(fanout.LEADER), what="a feed leader")
    subscribers = []
    for api in (a, b):
        ws = WsClient(api)
        ws.send({"type": "subscribe", "intent_hash": "intent-1"})
        assert ws.receive()["type"] == "subscribed" and ws.receive()["status"] == "pending"
        subscribers.append(ws)
    assert b.get("/api/v1/intents/intent-1").json["status"] == "pending"  # now in b's LRU
    insert_updates(store, [update(11, "intent-1", "completed", contract="v.near")])
    commit(store, "s1", 2, ["v.near"], 11, 11)
    for ws in subscribers:  # whichever replica follows the feed, both push, exactly once
        pushed = ws.receive()
        assert pushed["status"] == "completed" and pushed["seq"] == 3
    for api in (a, b):  # and both caches were evicted (hour-long TTLs)
        assert api.get("/api/v1/intents/intent-1").json["status"] == "completed"
    assert client.get(fanout.CURSOR) is not None
    client.close()


def test_a_resume_takes_over_a_connection_the_client_gave_up_on(store, serve) -> None:  # type: ignore[no-untyped-def]
    _index(store, 1, 10, "a1", "pending")
    api = serve(store)
    stale = WsClient(api)  # half-open as far as the client knows: it reconnects without closing it
    stale.send({"type": "subscribe", "account": "carol.near"})
    session = stale.receive()["session"]
    _index(store, 2, 11, "a1", "verified")
    assert stale.receive()["seq"] == 2
    fresh = WsClient(api)
    fresh.send({"type": "subscribe", "account": "carol.near", "session": session, "since_seq": 1})
    assert (fresh.receive()["seq"], fresh.receive()["type"]) == (2, "subscribed")  # the replay, then the reply
    import aiohttp

    frame = api._run(stale.ws.receive(timeout=30))  # the close frame says why
    assert (frame.type, frame.data, frame.extra) == (aiohttp.WSMsgType.CLOSE, 1000,
                                                     "session resumed on another connection")
    _index(store, 3, 12, "a1", "completed")
    pushed = fresh.receive()
    assert (pushed["seq"], pushed["status"]) == (4, "completed")
    assert _hub(api).detached == {}  # the old socket's end did not detach the session it lost


def test_the_journal_keeps_the_newest_messages_within_its_bound() -> None:
    import asyncio

    from indexer.api.live import JOURNAL_BYTES, Connection

    conn = Connection(None)  # detached: messages go to the journal only
    for n in range(8):
        asyncio.run(conn.send({"type": "intent_update", "n": n, "pad": "x" * (JOURNAL_BYTES // 4)}))
    assert conn.seq == 8 and conn.journal_bytes <= JOURNAL_BYTES
    kept = [seq for seq, _ in conn.journal]
    assert kept == list(range(8 - len(kept) + 1, 9)) and 1 <= len(kept) < 8
    assert conn.replayable(8) and conn.replayable(kept[0] - 1) and not conn.replayable(kept[0] - 2)
    assert not conn.replayable(9)


def test_a_commit_of_this_process_is_pushed_without_waiting_for_the_next_feed_read(store, serve) -> None:  # type: ignore[no-untyped-def]
    # The API inside the daemon (run --api-port) shares its Store: writing a stream's state wakes
    # the feed follower, so the push does not wait out --api-feed-interval (an hour here).
    _index(store, 1, 10, "w1", "pending")
    api = serve(store, api_feed_interval=3600)
    ws = WsClient(api)
    ws.send({"type": "subscribe", "intent_hash": "w1"})
    assert ws.receive()["type"] == "subscribed"
    assert ws.receive()["status"] == "pending"
    _index(store, 2, 11, "w1", "verified")
    pushed = ws.receive(timeout=60)
    ws.close()
    assert (pushed["type"], pushed["status"], pushed["block_height"]) == ("intent_update", "verified", 11)
