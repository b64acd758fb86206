"""Login and sessions: lockout that reveals no account, the password policy and common list, idle
and absolute timeouts, a new session id at every login, logout and disabling ending HTTP and
WebSocket sessions before their next use, the WebSocket Origin check, and no-store and security
headers on pages and personal data."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from eqian.core import auth
from eqian.core.accounts import AuthSession, User
from eqian.core.config import Settings
from eqian.core.db import utcnow
from eqian.core.errors import ValidationFailed
from eqian.core.passwords import check_policy, is_common
from eqian.web.app import create_app
from eqian.web.deps import SESSION_COOKIE
from tests.factories import PASSWORD, World, bearer, make_world
from tests.servers import closed_with, serving

TIMEOUT = 10


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


async def _token(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password})


async def _cookie(db: AsyncSession, user: User) -> str:
    issued = await auth.open_session(db, Settings(env="test"), user, kind="cookie", ip="test")
    return issued.token


# --- login ---------------------------------------------------------------------------------------


async def test_lockout_answers_the_same_for_unknown_wrong_locked_and_disabled(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    officer = world.users["station_officer"]
    answers = [await _token(client, "no_such_user", "Wrong-pass-1")]
    for _ in range(5):  # the fifth failure locks the account
        answers.append(await _token(client, officer.username, "Wrong-pass-1"))
    locked = await _token(client, officer.username, PASSWORD)  # the right password, while locked
    answers.append(locked)
    await db.execute(update(User).where(User.id == world.users["mediator"].id).values(is_active=False))
    answers.append(await _token(client, "mediator", PASSWORD))
    shapes = {(r.status_code, r.text, r.headers.get("www-authenticate")) for r in answers}
    assert len(shapes) == 1, shapes
    status, body, _ = shapes.pop()
    assert status == 401
    assert json.loads(body)["error"]["code"] == "login_failed"
    row = await db.scalar(select(User).where(User.id == officer.id))
    assert row is not None
    assert row.locked_until is not None
    assert row.locked_until > utcnow() + dt.timedelta(minutes=14)


@pytest.mark.parametrize(
    "password",
    [
        "P@ssw0rd2024!",
        "Woaini1314!",
        "Qwe123456!!",
        "Zhangwei@1988",
        "Admin#12345",
        "Aa123456789",
        "WOAINI520@@",
    ],
)
def test_common_passwords_are_refused_even_when_they_pass_the_character_rules(password: str) -> None:
    assert len(password) >= 10
    assert is_common(password)
    with pytest.raises(ValidationFailed) as caught:
        check_policy(password)
    assert caught.value.details[0]["code"] == "password_common"


@pytest.mark.parametrize("password", ["Zhili-safe-365", "Huzhou#Tongzhuang7", "qing-shui-Lake-42"])
def test_uncommon_passwords_pass(password: str) -> None:
    assert not is_common(password)
    check_policy(password)


async def test_every_login_gets_a_new_session_id(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    first = (await _token(client, "station_officer", PASSWORD)).json()["access_token"]
    second = (await _token(client, "station_officer", PASSWORD)).json()["access_token"]
    assert first != second
    # A session id planted before the form login (fixation) is replaced, never adopted.
    planted = await _cookie(db, world.users["unit_security"])
    client.cookies.set(SESSION_COOKIE, planted)
    form = await client.get("/login")
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = await client.post(
        "/login", data={"username": "station_officer", "password": PASSWORD, "csrf_token": csrf, "next": "/"}
    )
    assert r.status_code == 303
    issued = r.cookies.get(SESSION_COOKIE)
    assert issued
    assert issued != planted
    row = await db.scalar(select(AuthSession).where(AuthSession.token_hash == auth.token_digest(issued)))
    assert row is not None
    assert row.user_id == world.users["station_officer"].id
    client.cookies.clear()


# --- timeouts ------------------------------------------------------------------------------------


async def test_sessions_end_after_thirty_idle_minutes_and_at_their_absolute_limit(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    token = await _cookie(db, world.users["station_officer"])
    client.cookies.set(SESSION_COOKIE, token)
    digest = auth.token_digest(token)

    async def idle(minutes: int) -> int:
        seen = utcnow() - dt.timedelta(minutes=minutes)
        await db.execute(
            update(AuthSession).where(AuthSession.token_hash == digest).values(last_seen_at=seen)
        )
        auth.resolved_sessions.clear()  # minutes pass: nothing resolved seconds ago is still kept
        r = await client.get("/api/v1/auth/me")
        return r.status_code

    assert await idle(29) == 200  # and this use touches the session again
    row = await db.scalar(select(AuthSession.last_seen_at).where(AuthSession.token_hash == digest))
    assert row is not None
    assert row > utcnow() - dt.timedelta(minutes=1)
    assert await idle(31) == 401

    # Absolute limits, however active the session.
    settings = Settings(env="test")
    headers = await bearer(db, world.users["station_officer"])
    token = headers["Authorization"].removeprefix("Bearer ")
    cookie = await _cookie(db, world.users["station_officer"])
    rows = {r.kind: r for r in await db.scalars(select(AuthSession).where(AuthSession.token_hash != digest))}
    # Bearer tokens live 8 h, cookie sessions 12 h, from the login.
    for kind, minutes in (
        ("bearer", settings.token_ttl_minutes),
        ("cookie", settings.session_absolute_minutes),
    ):
        lifetime = rows[kind].expires_at - rows[kind].created_at
        assert abs(lifetime - dt.timedelta(minutes=minutes)) < dt.timedelta(seconds=5)
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    past = utcnow() - dt.timedelta(seconds=1)
    await db.execute(update(AuthSession).values(expires_at=past, last_seen_at=utcnow()))
    auth.resolved_sessions.clear()  # the hours pass
    assert (
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    client.cookies.set(SESSION_COOKIE, cookie)
    assert (await client.get("/api/v1/auth/me")).status_code == 401


# --- ending sessions over HTTP -------------------------------------------------------------------


async def test_logout_and_disabling_end_http_sessions_at_the_next_request(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    officer = await bearer(db, world.users["station_officer"])
    assert (await client.post("/api/v1/auth/logout", headers=officer)).status_code == 204
    assert (await client.get("/api/v1/units", headers=officer)).status_code == 401

    unit = world.users["unit_security"]
    unit_bearer = await bearer(db, unit)
    unit_cookie = await _cookie(db, unit)
    admin = await bearer(db, world.users["bureau_admin"])
    r = await client.patch(f"/api/v1/users/{unit.id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/units", headers=unit_bearer)).status_code == 401
    client.cookies.set(SESSION_COOKIE, unit_cookie)
    assert (await client.get("/api/v1/units")).status_code == 401
    client.cookies.clear()
    # Re-enabling does not bring the ended sessions back.
    r = await client.patch(f"/api/v1/users/{unit.id}", json={"is_active": True}, headers=admin)
    assert r.status_code == 200
    assert (await client.get("/api/v1/units", headers=unit_bearer)).status_code == 401


# --- WebSocket -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real server in this event loop (the WebSocket needs one), on the test database."""
    settings = Settings(
        env="test",
        database_url=database_url,
        var_dir=tmp_path_factory.mktemp("var"),
        secret_key="test-secret",
        outbox_poll_seconds=0,
    )
    app = create_app(settings)
    try:
        async with serving(app, lifespan="on") as addr:
            yield addr
    finally:
        await app.state.engine.dispose()


async def _ws(addr: str, token: str, **kwargs: Any) -> ClientConnection:
    ws = await connect(f"ws://{addr}/ws", **kwargs)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if frame["type"] == "ready":
            return ws


async def test_websockets_close_when_their_session_ends(live: str, db: AsyncSession, world: World) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    tokens = {
        name: (await bearer(db, world.users[name]))["Authorization"].removeprefix("Bearer ")
        for name in ("unit_security", "station_officer", "liaison_officer", "mediator")
    }
    sockets = {name: await _ws(live, token) for name, token in tokens.items()}
    async with httpx.AsyncClient(base_url=f"http://{live}", timeout=30) as http:
        # Logout, a disable, a role change, a password reset: each socket closes at once (4001),
        # before the client sends anything, well inside the 15 s sweep.
        bearer_of = {"Authorization": f"Bearer {tokens['unit_security']}"}
        assert (await http.post("/api/v1/auth/logout", headers=bearer_of)).status_code == 204
        assert await closed_with(sockets["unit_security"]) == 4001
        uid = world.users["station_officer"].id
        assert (
            await http.patch(f"/api/v1/users/{uid}", json={"is_active": False}, headers=admin)
        ).status_code == 200
        assert await closed_with(sockets["station_officer"]) == 4001
        uid = world.users["liaison_officer"].id
        r = await http.patch(
            f"/api/v1/users/{uid}",
            json={"role": "station_officer", "station_id": world.station_b},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert await closed_with(sockets["liaison_officer"]) == 4001
        uid = world.users["mediator"].id
        r = await http.post(
            f"/api/v1/users/{uid}/reset-password", json={"new_password": "Qing-shui-2026"}, headers=admin
        )
        assert r.status_code == 204
        assert await closed_with(sockets["mediator"]) == 4001
        # And a renamed user keeps their socket: only changes of rights end sessions.
        keep = await _ws(live, (await bearer(db, world.users["service_point_staff"]))["Authorization"][7:])
        uid = world.users["service_point_staff"].id
        r = await http.patch(f"/api/v1/users/{uid}", json={"display_name": "服务点小王"}, headers=admin)
        assert r.status_code == 200
        await keep.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(keep.recv(), TIMEOUT))["type"] == "pong"
        await keep.close()


async def test_websocket_from_another_origin_is_refused(live: str, db: AsyncSession, world: World) -> None:
    token = (await bearer(db, world.users["station_officer"]))["Authorization"][7:]
    ws = await connect(f"ws://{live}/ws", origin="http://evil.example")  # type: ignore[arg-type]
    assert await closed_with(ws) == 4403  # before any credential is even asked for
    same = await _ws(live, token, origin=f"http://{live}")  # type: ignore[arg-type]
    await same.close()


# --- headers -------------------------------------------------------------------------------------


async def test_pages_and_personal_data_are_not_cached_and_carry_security_headers(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    officer = await bearer(db, world.users["station_officer"])
    unit, contact = world.units["a1"], world.contacts["a1"]
    cookie = await _cookie(db, world.users["station_officer"])
    answers = {
        "login page": await client.get("/login"),
        "home page": await client.get(
            "/", headers={"Accept": "text/html", "Cookie": f"{SESSION_COOKIE}={cookie}"}
        ),
        "contact reveal": await client.post(
            f"/api/v1/units/{unit}/contacts/{contact}/reveal", headers=officer
        ),
        "own account": await client.get("/api/v1/auth/me", headers=officer),
        "an error": await client.get("/api/v1/units/999999", headers=officer),
    }
    for name, r in answers.items():
        assert r.status_code < 500, name
        assert r.headers["Cache-Control"] == "no-store", name
        assert r.headers["X-Content-Type-Options"] == "nosniff", name
        assert r.headers["X-Frame-Options"] == "DENY", name
        assert "default-src 'self'" in r.headers["Content-Security-Policy"], name
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], name
    assert answers["contact reveal"].status_code == 200
    assert answers["home page"].status_code == 200
    static = await client.get("/static/css/eqian.css")
    assert static.status_code == 200
    assert static.headers.get("Cache-Control") != "no-store"  # only shared assets may be cached
