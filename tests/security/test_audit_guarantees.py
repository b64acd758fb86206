"""Audit guarantees: denials are recorded with who, route and address; the database refuses edits
(and on PostgreSQL deletions) of audit rows; no route or command of the application edits or
deletes them; retention cannot be configured below 180 days; a tampered row is found."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit
from eqian.core.audit import AuditLog
from eqian.core.config import Settings
from tests.factories import World, audit_guard_lifted, bearer, make_world

SRC = Path(__file__).resolve().parents[2] / "src" / "eqian"


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


async def _denied(db: AsyncSession) -> list[AuditLog]:
    query = select(AuditLog).where(AuditLog.action == "access.denied").order_by(AuditLog.seq)
    return list(await db.scalars(query))


async def test_denials_are_recorded_with_who_what_and_where(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    assert (await client.get("/api/v1/units", headers={"Authorization": "Bearer forged"})).status_code == 401
    unit = await bearer(db, world.users["unit_security"])
    assert (await client.get("/api/v1/users", headers=unit)).status_code == 403
    anonymous, forbidden = await _denied(db)
    assert (anonymous.actor_id, anonymous.actor_name, anonymous.ip) == (None, "anonymous", "127.0.0.1")
    assert anonymous.entity_id == "GET /api/v1/units"
    assert anonymous.changes == {"status": 401, "method": "GET", "path": "/api/v1/units"}
    assert (forbidden.actor_id, forbidden.actor_name) == (world.users["unit_security"].id, "unit_security")
    assert forbidden.entity_id == "GET /api/v1/users"
    assert forbidden.changes is not None
    assert forbidden.changes["status"] == 403
    assert forbidden.ts is not None
    # A 2xx or a 404 is no denial.
    assert (await client.get("/api/v1/units", headers=unit)).status_code == 200
    assert len(await _denied(db)) == 2
    assert (await audit.verify(db)).ok


async def test_the_database_refuses_to_edit_audit_rows(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    mediator = world.users["mediator"].id
    assert (
        await client.patch(f"/api/v1/users/{mediator}", json={"display_name": "调解员甲"}, headers=admin)
    ).status_code == 200
    with pytest.raises(DBAPIError, match="append-only"):
        await db.execute(update(AuditLog).values(actor_name="someone_else"))
    # Not even the newest rows, whose deletion would leave no gap in the chain to find.
    newest = select(func.max(AuditLog.seq)).scalar_subquery()
    for rows in (AuditLog.seq == newest, AuditLog.seq > 0):
        with pytest.raises(DBAPIError, match="append-only"):
            await db.execute(delete(AuditLog).where(rows))
    [row] = await db.scalars(select(AuditLog).where(AuditLog.action == "user.update"))
    assert row.actor_name == "bureau_admin"
    assert (await audit.verify(db)).ok


async def test_a_tampered_row_is_found_after_the_guard_is_lifted(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    admin = await bearer(db, world.users["bureau_admin"])
    for n in range(3):
        uid = world.users["mediator"].id
        r = await client.patch(f"/api/v1/users/{uid}", json={"display_name": f"调解员{n}"}, headers=admin)
        assert r.status_code == 200
    await client.get("/api/v1/units")  # and a denial, in the same chain
    before = await audit.verify(db)
    assert (before.ok, before.rows) == (True, 5)  # the login, three changes, the denial
    target = await db.scalar(
        select(AuditLog.seq).where(AuditLog.action == "user.update").order_by(AuditLog.seq)
    )
    assert target is not None
    # Someone with the database owner's rights switches the guard off and hides who acted.
    async with audit_guard_lifted(db):
        await db.execute(update(AuditLog).where(AuditLog.seq == target).values(ip="10.9.9.9"))
    db.expunge_all()
    after = await audit.verify(db)
    assert [(p.seq, p.reason) for p in after.problems] == [(target, "row content does not match its hash")]


def test_no_route_or_command_edits_or_deletes_audit_rows(app: FastAPI) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and "audit" in route.path:
            assert route.methods <= {"GET", "HEAD"}, route.path
    statements = re.compile(
        r"(update|delete)\(\s*AuditLog\b|(UPDATE|DELETE\s+FROM|TRUNCATE)\s+(TABLE\s+)?audit_log",
        re.IGNORECASE,
    )
    offenders = []
    for path in SRC.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if statements.search(line) and "BEFORE UPDATE" not in line:
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []


def test_retention_cannot_be_set_below_180_days() -> None:
    assert Settings(env="test").audit_retention_days == 180
    assert Settings(env="test", audit_retention_days=365).audit_retention_days == 365
    with pytest.raises(ValidationError, match="audit_retention_days"):
        Settings(env="test", audit_retention_days=90)
