"""Rate limits: each class answers 429 with Retry-After above its limit (never a 500), counts per
credential or address, and the Redis-backed limiter shares counts between workers and fails open."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.audit import AuditLog
from eqian.core.config import Settings
from eqian.core.ratelimit import MemoryLimiter, RedisLimiter, Rule, write_class
from eqian.web.app import create_app
from tests.factories import PASSWORD, World, bearer, make_world

REDIS = "redis://127.0.0.1:6379/0"
FROZEN = 1_000_000.0  # 20 s before a minute's end, so Retry-After is 20
LOW = {
    "rate_limit_write_per_minute": 3,
    "rate_limit_intake_per_minute": 2,
    "rate_limit_reveal_per_hour": 2,
    "rate_limit_login_per_user_per_minute": 3,
    "rate_limit_login_per_ip_per_minute": 5,
    "rate_limit_denied_per_minute": 4,
}


async def _client(database_url: str, tmp: Any, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        env="test",
        database_url=database_url,
        var_dir=tmp,
        secret_key="test-secret",
        outbox_poll_seconds=0,
        **(LOW | overrides),
    )
    app: FastAPI = create_app(settings)
    # Time stands still for the limiter: a test that straddles a minute boundary would otherwise
    # see its counts reset half-way.
    app.state.rate_limiter.clock = lambda: FROZEN
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await app.state.rate_limiter.close()
        await app.state.engine.dispose()


@pytest.fixture
async def limited(
    database_url: str, db: AsyncSession, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """An application of its own with low limits, so its counters start at zero."""
    async for client in _client(database_url, tmp_path_factory.mktemp("var")):
        yield client


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


def assert_429(r: httpx.Response, retry_after: int = 20) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert "秒后重试" in r.json()["error"]["message"]
    assert int(r.headers["Retry-After"]) == retry_after
    assert r.headers["Cache-Control"] == "no-store"  # the header middleware still wraps a 429


async def _rename(client: httpx.AsyncClient, headers: dict[str, str], user_id: int, n: int) -> httpx.Response:
    return await client.patch(f"/api/v1/users/{user_id}", json={"display_name": f"改名{n}"}, headers=headers)


async def test_writes_are_limited_per_credential(
    limited: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    target = world.users["mediator"].id
    for n in range(3):
        assert (await _rename(limited, admin, target, n)).status_code == 200
    refused = await _rename(limited, admin, target, 3)
    assert_429(refused)
    # Refused before the application ran: the name stayed at the third change.
    assert (await limited.get(f"/api/v1/users/{target}", headers=admin)).json()["display_name"] == "改名2"
    # Reads are not limited, and another session of the same user has a budget of its own.
    assert (await limited.get("/api/v1/users", headers=admin)).status_code == 200
    other = await bearer(db, world.users["bureau_admin"])
    assert (await _rename(limited, other, target, 4)).status_code == 200


async def test_intake_and_reveal_have_their_own_limits(
    limited: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    officer = await bearer(db, world.users["station_officer"])
    # Invalid bodies still count: the limit protects the server's work, not only stored rows.
    for _ in range(2):
        assert (await limited.post("/api/v1/incidents", json={}, headers=officer)).status_code == 422
    assert_429(await limited.post("/api/v1/incidents", json={}, headers=officer))
    reveal = "/api/v1/workers/persons/999999/reveal"
    for _ in range(2):
        assert (await limited.post(reveal, headers=officer)).status_code == 404
    assert_429(await limited.post(reveal, headers=officer), retry_after=800)  # to the end of the hour
    # The general write budget of the same credential is untouched by both.
    admin_target = world.users["mediator"].id
    admin = await bearer(db, world.users["bureau_admin"])
    assert (await _rename(limited, admin, admin_target, 0)).status_code == 200


def test_requests_are_classified_by_method_and_path() -> None:
    assert write_class("GET", "/api/v1/incidents") is None
    assert write_class("POST", "/api/v1/auth/token") is None  # logins are counted apart
    assert write_class("POST", "/api/v1/incidents") == "intake"
    assert write_class("POST", "/api/v1/incidents/7/transition") == "write"
    assert write_class("POST", "/api/v1/incidents/7/reveal-phone") == "reveal"
    assert write_class("POST", "/api/v1/units/1/contacts/2/reveal") == "reveal"
    assert write_class("DELETE", "/api/v1/messaging/channels/3") == "write"


async def test_failed_logins_are_limited_per_username_and_per_address(
    limited: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    async def login(username: str, password: str) -> httpx.Response:
        return await limited.post("/api/v1/auth/token", data={"username": username, "password": password})

    # Successful logins never count (were they counted, the address would be over its limit of
    # 5 at the second liaison failure below): an office behind one address keeps working.
    for _ in range(2):
        assert (await login("bureau_admin", PASSWORD)).status_code == 200
    for _ in range(3):
        assert (await login("station_officer", "Wrong-pass-1")).status_code == 401
    before = await db.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "login.failed")
    )
    # Above the per-username limit even the right password is refused, without a password check.
    assert_429(await login("Station_Officer", PASSWORD))
    after = await db.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "login.failed")
    )
    assert after == before
    # Another account from the same address: two more failures reach the per-address limit.
    for _ in range(2):
        assert (await login("liaison_officer", "Wrong-pass-1")).status_code == 401
    assert_429(await login("mediator", PASSWORD))


async def test_denials_are_bounded_per_address_before_any_work(
    limited: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    async def denied() -> int:
        query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "access.denied")
        return await db.scalar(query) or 0

    for n in range(4):
        assert (
            await limited.get("/api/v1/units", headers={"Authorization": f"Bearer forged-{n}"})
        ).status_code == 401
    assert await denied() == 4
    # A flood with ever new forged tokens is still one address: refused, and the chain stops growing.
    assert_429(await limited.get("/api/v1/units", headers={"Authorization": "Bearer forged-x"}))
    assert_429(await limited.get("/api/v1/units"))
    assert await denied() == 4


async def test_the_redis_limiter_shares_counts_between_workers() -> None:
    prefix = f"eqian:test-h4-{uuid.uuid4().hex[:12]}:"
    one, two = (
        RedisLimiter(REDIS, prefix, clock=lambda: FROZEN),
        RedisLimiter(REDIS, prefix, clock=lambda: FROZEN),
    )
    rule = Rule("write", 3, 60)
    try:
        results = [await one.hit(rule, "k"), await two.hit(rule, "k"), await one.hit(rule, "k")]
        assert [allowed for allowed, _ in results] == [True, True, True]
        allowed, retry = await two.hit(rule, "k")
        assert (allowed, retry) == (False, 20)
        assert await one.over([(rule, "k")]) >= 1
        assert await one.over([(rule, "other")]) == 0
        assert (await one.hit(rule, "other"))[0] is True
        # Each key expires with its window: nothing is left behind in a shared Redis.
        keys = [k async for k in one.client.scan_iter(match=f"{prefix}*")]
        assert keys
        assert all(0 < ttl <= 61 for ttl in [await one.client.ttl(k) for k in keys])
    finally:
        client = aioredis.from_url(REDIS)
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()
        await one.close()
        await two.close()


async def test_the_application_limits_through_redis(
    database_url: str, db: AsyncSession, world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    name = f"test-h4-{uuid.uuid4().hex[:12]}"
    admin = await bearer(db, world.users["bureau_admin"])
    target = world.users["mediator"].id
    try:
        async for client in _client(
            database_url, tmp_path_factory.mktemp("var"), redis_url=f"{REDIS}?prefix={name}"
        ):
            for n in range(3):
                assert (await _rename(client, admin, target, n)).status_code == 200
            assert_429(await _rename(client, admin, target, 3))
    finally:
        redis = aioredis.from_url(REDIS)
        keys = [k async for k in redis.scan_iter(match=f"eqian:{name}:*")]
        assert keys  # the counts really lived in Redis
        await redis.delete(*keys)
        await redis.aclose()


async def test_redis_down_lets_requests_through_with_a_warning(
    database_url: str,
    db: AsyncSession,
    world: World,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    target = world.users["mediator"].id
    caplog.set_level(logging.WARNING, logger="eqian.ratelimit")
    # Nothing listens on port 1: every Redis call fails at once.
    async for client in _client(
        database_url, tmp_path_factory.mktemp("var"), redis_url="redis://127.0.0.1:1/0"
    ):
        statuses = [(await _rename(client, admin, target, n)).status_code for n in range(5)]
    assert statuses == [200] * 5  # above the limit of 3, yet neither 429 nor 500
    assert "Redis unavailable" in caplog.text


async def test_memory_windows_reopen_when_they_end() -> None:
    now = [1_000_000.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    rule = Rule("write", 2, 60)
    assert [(await limiter.hit(rule, "k"))[0] for _ in range(3)] == [True, True, False]
    now[0] += 60
    assert (await limiter.hit(rule, "k"))[0] is True
