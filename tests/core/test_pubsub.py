"""The pub/sub broker: in-process for one worker, Redis between workers (two brokers here are two
workers: each has its own connections), with topics namespaced per deployment."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest

from eqian.core import pubsub

REDIS_URL = os.environ.get("EQIAN_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(
    not REDIS_URL and os.environ.get("EQIAN_REQUIRE_REDIS") != "1", reason="EQIAN_TEST_REDIS_URL not set"
)


async def test_local_broker_delivers_to_current_subscribers_once() -> None:
    broker = pubsub.Broker()
    got: list[tuple[str, dict[str, Any]]] = []
    done = asyncio.Event()

    async def slow(topic: str, message: dict[str, Any]) -> None:
        got.append((f"async:{topic}", message))
        done.set()

    sub = broker.subscribe("feed", lambda t, m: got.append((t, m)))
    broker.subscribe("feed", slow)
    broker.subscribe("other", lambda t, m: got.append((t, m)))
    await broker.publish("feed", {"n": 1, "at": object.__name__})
    await asyncio.wait_for(done.wait(), 1)
    assert got == [("feed", {"n": 1, "at": "object"}), ("async:feed", {"n": 1, "at": "object"})]
    sub.close()
    sub.close()  # closing twice is harmless
    assert broker.subscriber_count("feed") == 1
    got.clear()
    await broker.publish("feed", {"n": 2})
    await asyncio.sleep(0)
    assert got == [("async:feed", {"n": 2})]


def test_prefix_from_url_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQIAN_PUBSUB_PREFIX", raising=False)
    assert pubsub.split_prefix("redis://h:6379/0") == ("redis://h:6379/0", "eqian:")
    assert pubsub.split_prefix("redis://h:6379/0?prefix=zhili&x=1") == (
        "redis://h:6379/0?x=1",
        "eqian:zhili:",
    )
    monkeypatch.setenv("EQIAN_PUBSUB_PREFIX", "huzhou")
    assert pubsub.split_prefix("redis://h:6379/0")[1] == "eqian:huzhou:"


@needs_redis
async def test_redis_brokers_share_topics_and_deliver_exactly_once() -> None:
    sep = "&" if "?" in REDIS_URL else "?"
    url = f"{REDIS_URL}{sep}prefix=t-{uuid.uuid4().hex[:10]}"
    a, b = pubsub.RedisBroker(url), pubsub.RedisBroker(url)
    stranger = pubsub.RedisBroker(f"{REDIS_URL}{sep}prefix=t-{uuid.uuid4().hex[:10]}")
    for broker in (a, b, stranger):
        await broker.start()
    try:
        got: dict[str, list[int]] = {"a": [], "b": [], "stranger": []}
        arrived = asyncio.Event()

        def collect(name: str) -> pubsub.Callback:
            def cb(topic: str, message: dict[str, Any]) -> None:
                got[name].append(int(message["n"]))
                if len(got["a"]) == 20 and len(got["b"]) == 20:
                    arrived.set()

            return cb

        a.subscribe("channel:1", collect("a"))
        b.subscribe("channel:1", collect("b"))
        stranger.subscribe("channel:1", collect("stranger"))
        for broker in (a, b, stranger):
            await broker.wait_subscribed()
        for n in range(20):  # from both workers, alternately
            await (a if n % 2 else b).publish("channel:1", {"n": n})
        await asyncio.wait_for(arrived.wait(), 5)
        await asyncio.sleep(0.1)
        assert got["a"] == got["b"] == list(range(20))
        assert got["stranger"] == []  # another deployment's prefix hears nothing
    finally:
        for broker in (a, b, stranger):
            await broker.stop()


async def test_start_broker_keeps_earlier_subscriptions() -> None:
    got: list[int] = []
    pubsub.get_broker().subscribe("x", lambda t, m: got.append(int(m["n"])))
    try:
        broker = await pubsub.start_broker(None)
        assert broker.kind == "local"
        await pubsub.publish("x", {"n": 7})
        assert got == [7]
    finally:
        await pubsub.stop_broker()
