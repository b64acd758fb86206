"""Issue 8 §1: every route × every role × {own, other} object answers what the matrix says.

(a) The matrix and ``app.routes`` name the same routes: a new endpoint without an entry fails here
    with its method and path.
(b) Every cell runs against one world per backend (``authz_world``): a 2xx where the matrix says
    refuse is reported first as an unexpected success, with role, route and object; any other
    difference is reported with the cell too; a refused write must leave every table's row count
    unchanged.

``EQIAN_AUTHZ_FULL=1`` runs every cell on PostgreSQL too (by default it leaves out read-only
cells that SQLite runs). ``AUTHZ_RECORD=/path`` writes what every cell answered instead of
asserting, to review a new route's behaviour before writing its line in ``authz_matrix.EXPECT``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eqian.all_models import Base
from tests.factories import bearer
from tests.security.authz_matrix import EXCLUDED, EXPECT, MATRIX, SPECIAL, R
from tests.security.authz_world import OTHER, OWN, ROLES, AuthzWorld, shared_world

RECORD = os.environ.get("AUTHZ_RECORD", "")
# CI-sized by default: SQLite runs every cell; PostgreSQL leaves out cells that read only and
# cannot change what a later cell meets (anonymous requests, HTML pages that read, the own side of
# API reads), a quarter of them. EQIAN_AUTHZ_FULL=1 runs every cell on every backend.
FULL = os.environ.get("EQIAN_AUTHZ_FULL", "") not in ("", "0")
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PARAM = re.compile(r"{(\w+)}")


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if path in EXCLUDED:
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, path))
    return found


@pytest.fixture
async def fresh_world(
    app: FastAPI, engine: AsyncEngine
) -> AsyncIterator[tuple[AuthzWorld, httpx.AsyncClient, AsyncSession]]:
    world, client, db = await shared_world(engine, app, fresh=True)
    try:
        yield world, client, db
    finally:
        await client.aclose()
        await db.close()


@pytest.fixture
async def world(
    app: FastAPI, engine: AsyncEngine
) -> AsyncIterator[tuple[AuthzWorld, httpx.AsyncClient, AsyncSession]]:
    world, client, db = await shared_world(engine, app)
    try:
        yield world, client, db
    finally:
        await client.aclose()
        await db.close()


_RECORDED: dict[str, dict[str, str]] = {}


# A refusal is itself audited (``access.denied``, see web/app.py): that row is the refusal's trace,
# not a change, so it is left out of the counts.
def _count(table: str) -> str:
    where = " WHERE action <> 'access.denied'" if table == "audit_log" else ""
    return f"(SELECT count(*) FROM {table}{where})"  # noqa: S608 - names from our own metadata


_COUNT_SQL = "SELECT " + ", ".join(_count(t.name) for t in Base.metadata.sorted_tables)


async def row_counts(db: AsyncSession) -> dict[str, int]:
    row = (await db.execute(text(_COUNT_SQL))).one()
    return {t.name: int(v) for t, v in zip(Base.metadata.sorted_tables, row, strict=True)}


def expected_for(route: R, who: str) -> str:
    default, roles = EXPECT[route.key]
    if who in roles:
        return roles[who]
    if who == "anonymous":
        return "401" if route.path.startswith("/api/") else "303"  # pages send browsers to /login
    return default


def is_success(status: str) -> bool:
    return status.startswith("2")


async def call(
    client: httpx.AsyncClient, aw: AuthzWorld, route: R, who: str, side: str
) -> tuple[str, httpx.Response]:
    def fill(match: re.Match[str]) -> str:
        name = route.param_alias.get(match.group(1), match.group(1))
        return str(aw.param(name, side, who))

    url = PARAM.sub(fill, route.path)
    headers = dict(aw.headers[who])
    if not route.path.startswith("/api/"):
        headers["Accept"] = "text/html"
    kwargs: dict[str, Any] = {}
    if route.body is not None:
        c = route.body(aw, side, who)
        kwargs = {
            k: v
            for k, v in {"json": c.json, "data": c.data, "files": c.files, "params": c.params}.items()
            if v is not None
        }
    resp = await client.request(route.method, url, headers=headers, **kwargs)
    return url, resp


def observed(resp: httpx.Response, listing: bool) -> str:
    status = str(resp.status_code)
    if (
        listing
        and resp.status_code == 200
        and resp.headers.get("content-type", "").startswith("application/json")
    ):
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("total"), int):
            return f"{status}#{body['total']}"
        if isinstance(body, dict) and isinstance(body.get("items"), list):
            return f"{status}#{len(body['items'])}"
        if isinstance(body, list):
            return f"{status}#{len(body)}"
    return status


def skipped_on_light_profile(route: R, who: str, side: str) -> bool:
    if route.method in WRITES:
        return False
    return who == "anonymous" or not route.path.startswith("/api/") or (route.has_object and side == OWN)


async def run_route(
    client: httpx.AsyncClient, db: AsyncSession, aw: AuthzWorld, route: R, *, light: bool = False
) -> tuple[list[str], list[str], int]:
    """Runs the cells of one route; returns (unexpected successes, other differences, cells run)."""
    ran = 0
    worst: list[str] = []
    other: list[str] = []
    write = route.method in WRITES
    # Row counts before each write cell: the previous cell's "after" (one count per cell).
    counts = await row_counts(db) if write else {}
    record: dict[str, str] = {}
    for who in ROLES:
        got: list[str] = []
        # Anonymous requests stop at authentication, before any object is looked up: one side is enough.
        sides = (OWN, OTHER) if route.has_object and who != "anonymous" else (OWN,)
        for side in sides:
            if light and skipped_on_light_profile(route, who, side):
                continue
            ran += 1
            url, resp = await call(client, aw, route, who, side)
            status = observed(resp, listing=not route.has_object and route.method == "GET")
            got.append(status)
            if RECORD:
                if resp.status_code in (409, 422, 500):
                    _RECORDED.setdefault("_why", {})[f"{who} {route.method} {url}"] = resp.text[:300]
                continue
            want = (
                expected_for(route, who).split("/")[0 if side == OWN else 1]
                if route.has_object
                else expected_for(route, who)
            )
            cell = f"{who} {route.method} {route.path} [{side} → {url}]"
            if status.split("#")[0] == "500":
                other.append(f"500 {cell}: {resp.text[:200]}")
            if is_success(status) and not is_success(want):
                worst.append(f"UNEXPECTED SUCCESS {status} (matrix: {want}) {cell}: {resp.text[:200]}")
            elif status != want:
                other.append(f"{status} (matrix: {want}) {cell}: {resp.text[:160]}")
            if write:
                after = await row_counts(db)
                refused = (
                    who == "anonymous" or resp.status_code >= 400
                )  # pages send anonymous to /login (303)
                changed = {t: (counts[t], after[t]) for t in counts if counts[t] != after[t]}
                if refused and changed:
                    worst.append(f"REFUSED WRITE CHANGED ROWS {changed} {cell}")
                counts = after
    record[who] = "/".join(got)
    if RECORD:
        _RECORDED[f"{route.method} {route.path}"] = record
    return worst, other, ran


def save_recording(path: str) -> None:
    target = Path(path)
    previous = json.loads(target.read_text()) if target.exists() else {}
    previous.update(_RECORDED)
    target.write_text(json.dumps(previous, ensure_ascii=False, indent=1))


def test_every_route_has_a_matrix_entry_and_every_entry_a_route(app: FastAPI) -> None:
    routes = app_routes(app)
    in_matrix = [r.key for r in MATRIX]
    assert len(in_matrix) == len(set(in_matrix)), "a route is listed twice in MATRIX"
    known = set(in_matrix) | set(SPECIAL)
    missing = sorted(routes - known)
    assert not missing, f"routes without an authorization-matrix entry (add them to authz_matrix): {missing}"
    stale = sorted(known - routes)
    assert not stale, f"matrix entries naming no route of the app: {stale}"
    no_expectation = sorted(k for k in in_matrix if k not in EXPECT)
    assert not no_expectation, f"matrix routes without expectations in EXPECT: {no_expectation}"


async def test_every_cell_of_the_matrix(
    fresh_world: tuple[AuthzWorld, httpx.AsyncClient, AsyncSession],
) -> None:
    """One test for all cells: they share one world whose state earlier cells change, so they run
    in one process in matrix order (xdist would otherwise split them)."""
    aw, client, db = fresh_world
    light = db.bind.dialect.name == "postgresql" and not FULL and not RECORD
    worst: list[str] = []
    other: list[str] = []
    cells = 0
    for route in MATRIX:
        w, o, ran = await run_route(client, db, aw, route, light=light)
        worst += w
        other += o
        cells += ran
    print(f"authorization matrix: {len(MATRIX)} routes, {cells} cells on {db.bind.dialect.name}")
    if RECORD:
        save_recording(f"{RECORD}.{db.bind.dialect.name}.json")
        return
    assert not worst, "\n".join([*worst, *other])
    assert not other, "\n".join(other)


async def test_special_routes(world: tuple[AuthzWorld, httpx.AsyncClient, AsyncSession]) -> None:
    """Public routes answer everyone; self routes act on the caller's own session or account only."""
    aw, client, db = world
    for path in ("/openapi.json", "/api/docs", "/docs/oauth2-redirect", "/healthz", "/login", "/lang/en"):
        resp = await client.get(path)
        assert resp.status_code in (200, 303), (path, resp.status_code)
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 401
    for who in ROLES[1:]:
        resp = await client.get("/api/v1/auth/me", headers=aw.headers[who])
        assert resp.status_code == 200, (who, resp.text)
        assert resp.json()["username"] == who
    assert (await client.post("/api/v1/auth/logout")).status_code == 401
    assert (
        await client.post("/api/v1/auth/password", json={"old_password": "x", "new_password": "y"})
    ).status_code == 401
    assert (await client.post("/logout", headers={"Accept": "text/html"})).status_code in (303, 401)
    bad = await client.post(
        "/api/v1/auth/token", data={"username": "nobody-here", "password": "wrong-password-1"}
    )
    assert bad.status_code == 401
    for who in ROLES[1:]:
        # A throwaway session: logging it out must end it and leave the matrix's own session alive.
        headers = await bearer(db, aw.users[who])
        out = await client.post("/api/v1/auth/logout", headers=headers)
        assert out.status_code in (200, 204), (who, out.text)
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
        assert (await client.get("/api/v1/auth/me", headers=aw.headers[who])).status_code == 200
