"""Resolved tokens kept per worker for a moment (core.session_cache), and dropped when sessions end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import auth, pubsub, session_cache
from eqian.core.session_cache import SessionCache
from tests.factories import World, bearer, make_world

REDIS_URL = os.environ.get("EQIAN_TEST_REDIS_URL", "")


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def one_broker() -> Callable[[], pubsub.Broker]:
    broker = pubsub.Broker()
    return lambda: broker


def listening(cache: SessionCache[str]) -> SessionCache[str]:
    """A cache that has subscribed (its first use empties it: nothing is kept from before)."""
    cache.get(("", ""), 1.0)
    return cache


def test_kept_for_its_seconds_then_asked_again() -> None:
    clock = Clock()
    cache = listening(SessionCache("t", clock=clock, broker=one_broker()))
    cache.put(("d", "bearer"), "alice", cache.generation)
    assert cache.get(("d", "bearer"), 2.0) == "alice"
    assert cache.get(("d", "cookie"), 2.0) is None
    clock.now += 1.9
    assert cache.get(("d", "bearer"), 2.0) == "alice"
    clock.now += 0.2
    assert cache.get(("d", "bearer"), 2.0) is None


def test_a_lookup_that_straddles_a_session_end_is_not_kept() -> None:
    cache = listening(SessionCache("t", broker=one_broker()))
    started = cache.generation
    cache.clear()  # sessions ended while the lookup was reading the old rows
    cache.put(("d", "bearer"), "stale", started)
    assert cache.get(("d", "bearer"), 2.0) is None


def test_the_least_recently_used_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_cache, "MAX_ENTRIES", 3)
    cache: SessionCache[int] = SessionCache("t", broker=one_broker())
    cache.get(("", ""), 1.0)
    for n in range(3):
        cache.put((str(n), "bearer"), n, cache.generation)
    assert cache.get(("0", "bearer"), 2.0) == 0
    cache.put(("3", "bearer"), 3, cache.generation)
    assert [k[0] for k in cache.entries] == ["2", "0", "3"]


async def test_emptied_by_a_session_end_published_on_its_broker() -> None:
    broker = pubsub.Broker()
    cache: SessionCache[str] = SessionCache("ends", broker=lambda: broker)
    assert cache.get(("d", "bearer"), 2.0) is None  # subscribes
    cache.put(("d", "bearer"), "alice", cache.generation)
    await broker.publish("ends", {"auth_id": 1})
    assert cache.get(("d", "bearer"), 2.0) is None


@pytest.mark.skipif(not REDIS_URL, reason="EQIAN_TEST_REDIS_URL not set")
async def test_another_worker_ending_sessions_empties_this_one_through_redis() -> None:
    sep = "&" if "?" in REDIS_URL else "?"
    url = f"{REDIS_URL}{sep}prefix=t-{uuid.uuid4().hex[:10]}"
    here, there = pubsub.RedisBroker(url), pubsub.RedisBroker(url)
    await here.start()
    await there.start()
    try:
        cache: SessionCache[str] = SessionCache(auth.SESSIONS_TOPIC, broker=lambda: here)
        cache.get(("d", "bearer"), 2.0)
        await here.wait_subscribed()
        cache.put(("d", "bearer"), "alice", cache.generation)
        await there.publish(auth.SESSIONS_TOPIC, {"user_id": 7, "except_auth_id": None})
        for _ in range(100):
            if cache.get(("d", "bearer"), 60.0) is None:
                break
            await asyncio.sleep(0.02)
        assert cache.get(("d", "bearer"), 60.0) is None
    finally:
        await here.stop()
        await there.stop()


def _session_lookups(app: FastAPI) -> list[str]:
    seen: list[str] = []

    @event.listens_for(app.state.engine.sync_engine, "before_cursor_execute")
    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM auth_sessions" in statement:
            seen.append(statement)

    return seen


@pytest.mark.parametrize(("seconds", "lookups"), [(2.0, 1), (0.0, 3)], ids=["kept", "turned-off"])
async def test_a_token_used_again_within_seconds_is_looked_up_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    db: AsyncSession,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    seconds: float,
    lookups: int,
) -> None:
    """Three requests with one token: one session lookup, or three with the cache turned off."""
    monkeypatch.setattr(app.state.settings, "auth_cache_seconds", seconds)
    headers = await bearer(db, world.users["station_officer"])
    await db.commit()
    seen = _session_lookups(app)
    for _ in range(3):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert len(seen) == lookups


async def test_logout_and_an_account_disabled_end_a_kept_token_at_once(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    mine = await bearer(db, world.users["station_officer"])
    theirs = await bearer(db, world.users["mediator"])
    admin = await bearer(db, world.users["bureau_admin"])
    await db.commit()
    for headers in (mine, theirs):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert (await client.post("/api/v1/auth/logout", headers=mine)).status_code in (200, 204)
    assert (await client.get("/api/v1/auth/me", headers=mine)).status_code == 401
    r = await client.patch(
        f"/api/v1/users/{world.users['mediator'].id}", headers=admin, json={"is_active": False}
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/auth/me", headers=theirs)).status_code == 401
