"""User administration: only the bureau changes accounts (a station reads its own), every change
is audited as [old, new], the password policy holds, and a change of rights, a disable or a
password reset ends every session of that user at its next request."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import auth
from eqian.core.accounts import AuthSession, User
from eqian.core.audit import AuditLog
from eqian.core.config import Settings
from eqian.core.db import utcnow
from eqian.core.passwords import verify_password
from eqian.web.deps import SESSION_COOKIE
from tests.factories import PASSWORD, World, bearer, make_world

API = "/api/v1/users"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


def error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    body: dict[str, object] = r.json()["error"]
    assert body["code"] == code, body
    return body


async def _audit(db: AsyncSession, action: str) -> list[AuditLog]:
    return list(await db.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.seq)))


async def test_who_may_read_and_administer_accounts(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    r = await client.get(API, headers=admin)
    listed = r.json()
    assert listed["total"] == len(world.users)
    assert "$argon2" not in r.text
    assert not any("password_hash" in item for item in listed["items"])

    # A station officer reads the accounts of its station (its officers, units, service point) only.
    station = await bearer(db, world.users["station_officer"])
    r = await client.get(API, headers=station)
    assert r.status_code == 200
    names = {u["username"] for u in r.json()["items"]}
    assert names == {"station_officer", "liaison_officer", "unit_security", "service_point_staff"}
    other = world.users["station_officer_b"].id
    error(await client.get(f"{API}/{other}", headers=station), 404, "not_found")
    mine = world.users["unit_security"].id
    assert (await client.get(f"{API}/{mine}", headers=station)).status_code == 200
    # ... and changes nothing, not even within its station.
    error(await client.patch(f"{API}/{mine}", json={"display_name": "x"}, headers=station), 403, "forbidden")
    error(await client.patch(f"{API}/{other}", json={"display_name": "x"}, headers=station), 404, "not_found")
    body = {"new_password": "Qing-shui-2026"}
    error(await client.post(f"{API}/{mine}/reset-password", json=body, headers=station), 403, "forbidden")
    for role in ("unit_security", "liaison_officer", "mediator", "service_point_staff"):
        headers = await bearer(db, world.users[role])
        error(await client.get(API, headers=headers), 403, "forbidden")
        error(await client.get(f"{API}/{mine}", headers=headers), 403, "forbidden")
    error(await client.get(API), 401, "not_authenticated")


async def test_creating_a_user_applies_the_policy_and_is_audited(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    good = {
        "username": "officer_zhou",
        "display_name": "周警官",
        "password": "Qing-shui-2026",
        "role": "station_officer",
        "station_id": world.station_b,
    }
    cases = [
        ({"password": "Woaini1314!"}, 422, "password"),
        ({"password": "short"}, 422, "password"),
        ({"station_id": None}, 422, "station_id"),
        ({"role": "superuser"}, 422, "role"),
        ({"is_active": False}, 422, "is_active"),  # not a field of the input: refused, not ignored
        ({"username": "bureau_admin"}, 422, "username"),
        ({"username": "周 警官"}, 422, "username"),
    ]
    for change, status, field in cases:
        r = await client.post(API, json=good | change, headers=admin)
        assert r.status_code == status, (change, r.text)
        assert field in {d.get("field") for d in r.json()["error"]["details"]}, (change, r.json())
    r = await client.post(API, json=good | {"station_id": 999999}, headers=admin)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_reference")
    assert await db.scalar(select(User).where(User.username == "officer_zhou")) is None

    station = await bearer(db, world.users["station_officer"])
    error(await client.post(API, json=good, headers=station), 403, "forbidden")
    r = await client.post(API, json=good, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["role"], created["station_id"], created["is_active"]) == (
        "station_officer",
        world.station_b,
        True,
    )
    assert created["role_label"] == "派出所民警"
    row = await db.scalar(select(User).where(User.username == "officer_zhou"))
    assert row is not None
    assert verify_password(row.password_hash, "Qing-shui-2026")
    [entry] = await _audit(db, "user.create")
    assert entry.actor_name == "bureau_admin"
    assert entry.changes == {
        "username": "officer_zhou",
        "role": "station_officer",
        "station_id": world.station_b,
    }
    assert "Qing-shui-2026" not in str(entry.changes)


async def test_a_change_of_rights_ends_every_session_and_is_audited(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    target = world.users["station_officer"]
    token = await bearer(db, target)
    cookie = await auth.open_session(db, Settings(env="test"), target, kind="cookie", ip="test")

    # A new display name changes no rights: the sessions go on.
    r = await client.patch(f"{API}/{target.id}", json={"display_name": "李警官"}, headers=admin)
    assert r.status_code == 200
    assert r.json()["live_sessions"] == 2
    assert (await client.get("/api/v1/auth/me", headers=token)).json()["display_name"] == "李警官"

    r = await client.patch(f"{API}/{target.id}", json={"station_id": world.station_b}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["station_id"], r.json()["live_sessions"]) == (world.station_b, 0)
    assert (await client.get("/api/v1/units", headers=token)).status_code == 401
    client.cookies.set(SESSION_COOKIE, cookie.token)
    assert (await client.get("/api/v1/units")).status_code == 401
    client.cookies.clear()
    revoked = await db.scalars(select(AuthSession.revoked_at).where(AuthSession.user_id == target.id))
    assert all(at is not None for at in revoked)

    renamed, moved = await _audit(db, "user.update")
    assert renamed.changes == {"display_name": ["station_officer", "李警官"]}
    assert moved.changes == {"station_id": [world.station_a, world.station_b], "sessions_revoked": 2}
    assert (moved.actor_name, moved.entity_id) == ("bureau_admin", str(target.id))

    # A role needs its anchor; a dangling anchor is a 4xx, never a 500.
    r = await client.patch(f"{API}/{target.id}", json={"role": "unit_security"}, headers=admin)
    assert error(r, 422, "validation_error")["details"][0]["field"] == "unit_id"  # type: ignore[index]
    r = await client.patch(f"{API}/{target.id}", json={"station_id": 999999}, headers=admin)
    error(r, 400, "invalid_reference")
    r = await client.patch(
        f"{API}/{target.id}", json={"role": "unit_security", "unit_id": world.units["b1"]}, headers=admin
    )
    assert (r.status_code, r.json()["role"]) == (200, "unit_security")
    error(
        await client.patch(f"{API}/{target.id}", json={"role": None}, headers=admin), 422, "validation_error"
    )
    error(
        await client.patch(f"{API}/{target.id}", json={"password_hash": "x"}, headers=admin),
        422,
        "validation_error",
    )
    error(await client.patch(f"{API}/999999", json={"display_name": "x"}, headers=admin), 404, "not_found")


async def test_an_administrator_cannot_lock_themselves_out(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    me = world.users["bureau_admin"]
    admin = await bearer(db, me)
    for change in ({"is_active": False}, {"role": "station_officer", "station_id": world.station_a}):
        r = await client.patch(f"{API}/{me.id}", json=change, headers=admin)
        assert error(r, 422, "validation_error")["details"][0]["code"] == "self_lockout"  # type: ignore[index]
    error(
        await client.post(
            f"{API}/{me.id}/reset-password", json={"new_password": "Qing-shui-2026"}, headers=admin
        ),
        403,
        "use_password_change",
    )
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 200


async def test_a_password_reset_lifts_the_lock_and_ends_every_session(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    target = world.users["liaison_officer"]
    token = await bearer(db, target)
    url = f"{API}/{target.id}/reset-password"
    r = await client.post(url, json={"new_password": "Qwe123456!!"}, headers=admin)
    assert error(r, 422, "validation_error")["details"][0]["code"] == "password_common"  # type: ignore[index]
    assert (await client.get("/api/v1/auth/me", headers=token)).status_code == 200  # nothing changed

    # Locked out by someone guessing (five failures; set directly, as argon2 is slow on purpose).
    until = utcnow() + dt.timedelta(minutes=15)
    await db.execute(update(User).where(User.id == target.id).values(locked_until=until, failed_logins=0))
    assert (await client.get(f"{API}/{target.id}", headers=admin)).json()["locked"] is True
    assert (await client.post(url, json={"new_password": "Qing-shui-2026"}, headers=admin)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=token)).status_code == 401
    assert (await client.get(f"{API}/{target.id}", headers=admin)).json()["locked"] is False
    r = await client.post(
        "/api/v1/auth/token", data={"username": target.username, "password": "Qing-shui-2026"}
    )
    assert r.status_code == 200
    [entry] = await _audit(db, "user.password_reset")
    assert entry.changes == {"sessions_revoked": 1}
    assert entry.actor_name == "bureau_admin"


async def test_a_disabled_account_cannot_log_in_until_enabled(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    target = world.users["mediator"]
    r = await client.patch(f"{API}/{target.id}", json={"is_active": False}, headers=admin)
    assert (r.status_code, r.json()["is_active"]) == (200, False)
    listed = await client.get(API, params={"is_active": "false"}, headers=admin)
    assert [u["username"] for u in listed.json()["items"]] == ["mediator"]
    form = {"username": "mediator", "password": PASSWORD}
    assert (await client.post("/api/v1/auth/token", data=form)).status_code == 401
    assert (
        await client.patch(f"{API}/{target.id}", json={"is_active": True}, headers=admin)
    ).status_code == 200
    assert (await client.post("/api/v1/auth/token", data=form)).status_code == 200
    disabled, enabled = await _audit(db, "user.update")
    assert disabled.changes == {"is_active": [True, False], "sessions_revoked": 0}
    assert enabled.changes == {"is_active": [False, True]}
