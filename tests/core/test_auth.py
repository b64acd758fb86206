"""Login, lockout, tokens, logout, password change — through the HTTP API."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import AuthSession, User
from eqian.core.audit import AuditLog
from eqian.core.passwords import verify_password
from tests.factories import PASSWORD, World, make_world


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


async def _token(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password})


async def test_password_flow_gives_an_expiring_bearer_token(client: httpx.AsyncClient, world: World) -> None:
    r = await _token(client, "station_officer")
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=7) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=8)
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["role"] == "station_officer"
    assert me.json()["scope"] == "stations"
    assert me.json()["station_ids"] == [world.station_a]


async def test_expired_token_is_refused(client: httpx.AsyncClient, db: AsyncSession, world: World) -> None:
    token = (await _token(client, "bureau_admin")).json()["access_token"]
    await db.execute(update(AuthSession).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    await db.commit()
    r = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")


async def test_five_failures_lock_the_account_for_fifteen_minutes(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    for _ in range(4):
        assert (await _token(client, "mediator", "wrong-password")).status_code == 401
    assert (await _token(client, "mediator")).status_code == 200  # success resets the counter
    for _ in range(5):
        r = await _token(client, "mediator", "wrong-password")
        assert r.status_code == 401
    # Locked: even the right password fails, with the same answer as a wrong one.
    locked = await _token(client, "mediator")
    assert locked.status_code == 401
    assert locked.json() == r.json()
    unknown = await _token(client, "no_such_user", "whatever")
    assert unknown.json() == r.json()  # does not reveal which accounts exist
    user = await db.scalar(select(User).where(User.username == "mediator"))
    assert user is not None
    await db.refresh(user)
    assert user.locked_until is not None
    remaining = user.locked_until - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=14) < remaining <= dt.timedelta(minutes=15)
    # After the lock runs out the right password works again.
    await db.execute(
        update(User)
        .where(User.id == user.id)
        .values(locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    await db.commit()
    assert (await _token(client, "mediator")).status_code == 200
    actions = (await db.scalars(select(AuditLog.action).where(AuditLog.actor_name == "mediator"))).all()
    assert actions.count("login.failed") == 10
    assert actions.count("login.success") == 2


async def test_inactive_account_cannot_log_in_and_its_tokens_die(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    token = (await _token(client, "unit_security")).json()["access_token"]
    await db.execute(update(User).where(User.username == "unit_security").values(is_active=False))
    await db.commit()
    assert (
        await client.get("/api/v1/units", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    assert (await _token(client, "unit_security")).status_code == 401


async def test_logout_revokes_the_token(client: httpx.AsyncClient, world: World) -> None:
    token = (await _token(client, "bureau_admin")).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/v1/auth/logout", headers=h)).status_code == 204
    assert (await client.get("/api/v1/units", headers=h)).status_code == 401


async def test_password_change_checks_policy_and_ends_other_sessions(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    t1 = (await _token(client, "station_officer")).json()["access_token"]
    t2 = (await _token(client, "station_officer")).json()["access_token"]
    h1, h2 = {"Authorization": f"Bearer {t1}"}, {"Authorization": f"Bearer {t2}"}
    r = await client.post(
        "/api/v1/auth/password", json={"old_password": "nope", "new_password": "Abcdef-12345"}, headers=h1
    )
    assert (r.status_code, r.json()["error"]["details"][0]["field"]) == (422, "old_password")
    r = await client.post(
        "/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "short"}, headers=h1
    )
    assert r.json()["error"]["details"][0]["code"] == "password_too_short"
    r = await client.post(
        "/api/v1/auth/password",
        json={"old_password": PASSWORD, "new_password": "alllowercaseletters"},
        headers=h1,
    )
    assert r.json()["error"]["details"][0]["code"] == "password_too_simple"
    r = await client.post(
        "/api/v1/auth/password", json={"old_password": PASSWORD, "new_password": "New-pass-2026"}, headers=h1
    )
    assert r.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=h1)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=h2)).status_code == 401
    assert (await _token(client, "station_officer")).status_code == 401
    assert (await _token(client, "station_officer", "New-pass-2026")).status_code == 200
    user = await db.scalar(select(User).where(User.username == "station_officer"))
    assert user is not None
    await db.refresh(user)
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "New-pass-2026")


async def test_token_form_validation_is_a_422_not_a_500(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post("/api/v1/auth/token", data={"username": "x"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "password"
    r = await client.post(
        "/api/v1/auth/token", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
