"""Issue 8 §4: scope, status, score, role and owner fields injected into a write are never stored.

Every JSON write route of the OpenAPI document is called with a valid body (the matrix's) plus
every field of ``INJECTED`` that its input model does not declare: the answer must be a 422 whose
details name each injected field, and no table may gain a row. Write routes are enumerated from
the app, so a new one is covered without an edit here; ``EXEMPT`` lists the ones that are not,
and why.

Where a route legitimately declares such a field (``station_id`` of a unit, ``unit_id`` of a
request, ``team_id`` of a case), ``DECLARED`` posts a value the role may not set and proves the
stored row does not carry it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eqian.core.ids import make_resident_id
from eqian.hazards.schemas import InspectionIn
from eqian.incidents.models import Incident
from eqian.mediation.models import MediationCase
from eqian.organizations.models import Unit
from eqian.requests.models import EnterpriseRequest
from eqian.workforce.models import Employment
from tests.security.authz_matrix import MATRIX
from tests.security.authz_world import OWN, AuthzWorld, shared_world
from tests.security.test_authz_matrix import row_counts

INJECTED: dict[str, Any] = {
    "id": 999,
    "station_id": 2,
    "unit_id": 4,
    "team_id": 2,
    "status": "closed",
    "score": 100,
    "grade": "excellent",
    "role": "bureau_admin",
    "owner_id": 1,
    "created_by": 1,
    "liaison_officer_id": 1,
    "is_active": True,
    "acknowledged_at": "2026-11-01T00:00:00+08:00",
    "user_id": 1,
    "zone_id": 1,
    "created_at": "2026-01-01T00:00:00+08:00",
}
# Write routes without a JSON body of their own model: nothing to inject into.
EXEMPT: dict[tuple[str, str], str] = {
    (
        "POST",
        "/api/v1/auth/token",
    ): "OAuth2 password form (username, password) read by FastAPI's own form model",
    ("POST", "/api/v1/workers/import"): "multipart: unit_id, file, dry_run; other form fields are never read",
    (
        "POST",
        "/api/v1/hazards/{hazard_id}/evidence",
    ): "multipart: note and photo; other form fields are never read",
    ("POST", "/api/v1/messaging/attachments"): "multipart: one file; other form fields are never read",
}
# Bodies parsed by the handler rather than declared to FastAPI (so absent from the document).
UNDOCUMENTED_JSON: dict[tuple[str, str], type[BaseModel]] = {("POST", "/api/v1/inspections"): InspectionIn}
# JSON writes the matrix calls with rules of their own (SPECIAL): their valid bodies.
SPECIAL_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/auth/password"): {"old_password": "Test-pass-365", "new_password": "Another-pass-2026"},
}
PARAM = re.compile(r"{(\w+)}")
BODIES = {r.key: r for r in MATRIX}


def json_write_routes(app: FastAPI) -> list[tuple[str, str, set[str]]]:
    """(method, path, declared fields) of every write whose body is a JSON object model."""
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    found: list[tuple[str, str, set[str]]] = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("post", "put", "patch", "delete"):
                continue
            content = op.get("requestBody", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref")
            if ref is None:
                continue
            model = schemas[ref.rsplit("/", 1)[-1]]
            found.append((method.upper(), path, set(model.get("properties", {}))))
    for (method, path), model_class in UNDOCUMENTED_JSON.items():
        found.append((method, path, set(model_class.model_fields)))
    return sorted(found)


def all_write_routes(app: FastAPI) -> set[tuple[str, str]]:
    spec = app.openapi()
    return {
        (m.upper(), p)
        for p, ops in spec["paths"].items()
        for m in ops
        if m in ("post", "put", "patch", "delete")
    }


@pytest.fixture
async def world(
    app: FastAPI, engine: AsyncEngine
) -> AsyncIterator[tuple[AuthzWorld, httpx.AsyncClient, AsyncSession]]:
    aw, client, db = await shared_world(engine, app)
    try:
        yield aw, client, db
    finally:
        await client.aclose()
        await db.close()


def test_every_api_write_is_covered_or_exempt(app: FastAPI) -> None:
    covered = {(m, p) for m, p, _ in json_write_routes(app)}
    bodyless = set()
    spec = app.openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in ("post", "put", "patch", "delete") and "requestBody" not in op:
                bodyless.add((method.upper(), path))
    uncovered = sorted(all_write_routes(app) - covered - set(EXEMPT) - bodyless)
    assert not uncovered, f"write routes with a body neither injected into nor exempt: {uncovered}"
    missing_body = sorted(
        k for k in covered if k not in SPECIAL_BODIES and (k not in BODIES or BODIES[k].body is None)
    )
    assert not missing_body, f"no valid body in authz_matrix for: {missing_body}"


def _url(aw: AuthzWorld, method: str, path: str, who: str) -> str:
    alias = BODIES[(method, path)].param_alias if (method, path) in BODIES else {}
    return PARAM.sub(lambda m: str(aw.param(alias.get(m.group(1), m.group(1)), OWN, who)), path)


async def test_injected_fields_are_refused_by_every_json_write(
    app: FastAPI, world: tuple[AuthzWorld, httpx.AsyncClient, AsyncSession]
) -> None:
    aw, client, db = world
    failures: list[str] = []
    for method, path, declared in json_write_routes(app):
        injected = {k: v for k, v in INJECTED.items() if k not in declared}
        if (method, path) in SPECIAL_BODIES:
            body = SPECIAL_BODIES[(method, path)]
        else:
            route = BODIES[(method, path)]
            assert route.body is not None
            body = dict(route.body(aw, OWN, "bureau_admin").json or {})
        before = await row_counts(db)
        resp = await client.request(
            method,
            _url(aw, method, path, "bureau_admin"),
            json={**body, **injected},
            headers=aw.headers["bureau_admin"],
        )
        after = await row_counts(db)
        cell = f"{method} {path} with {sorted(injected)}"
        if resp.status_code != 422:
            failures.append(f"{cell}: {resp.status_code} {resp.text[:200]}")
            continue
        error = resp.json()["error"]
        named = {d.get("field") for d in error["details"]}
        if unnamed := sorted(set(injected) - named):
            failures.append(f"{cell}: 422 does not name {unnamed}: {error}")
        if changed := {t: (before[t], after[t]) for t in before if before[t] != after[t]}:
            failures.append(f"{cell}: refused but rows changed {changed}")
    assert not failures, "\n".join(failures)


async def test_declared_scope_fields_cannot_reach_outside_the_callers_scope(
    world: tuple[AuthzWorld, httpx.AsyncClient, AsyncSession],
) -> None:
    """Fields a route accepts, set by a role to a value it may not: refused, and never stored."""
    aw, client, db = world
    h = aw.headers
    a, b = aw.ids["station_id"]
    a1, b1 = aw.ids["unit_id"]
    own_team, other_team = aw.teams["own"], aw.teams["other"]

    # A station officer moving its unit to another station.
    resp = await client.patch(f"/api/v1/units/{a1}", json={"station_id": b}, headers=h["station_officer"])
    assert resp.status_code in (403, 404, 422), resp.text
    assert await db.scalar(select(Unit.station_id).where(Unit.id == a1)) == a

    # A unit's security head filing a request in another unit's name.
    before = await db.scalar(
        select(func.count()).select_from(EnterpriseRequest).where(EnterpriseRequest.unit_id == b1)
    )
    resp = await client.post(
        "/api/v1/requests",
        json={"kind": "other", "title": "代提诉求", "body": "内容", "unit_id": b1},
        headers=h["unit_security"],
    )
    assert resp.status_code in (403, 404, 422), resp.text
    after = await db.scalar(
        select(func.count()).select_from(EnterpriseRequest).where(EnterpriseRequest.unit_id == b1)
    )
    assert after == before

    # A unit's security head opening a case at another station's unit.
    case_body = {
        "source": "unit",
        "dispute_type": "labor",
        "summary": "纠纷",
        "parties": [{"name": "甲", "role": "applicant"}],
    }
    before = await db.scalar(
        select(func.count()).select_from(MediationCase).where(MediationCase.unit_id == b1)
    )
    resp = await client.post(
        "/api/v1/mediation/cases",
        json={**case_body, "unit_id": b1, "station_id": b},
        headers=h["unit_security"],
    )
    assert resp.status_code in (403, 404, 422), resp.text
    after = await db.scalar(
        select(func.count()).select_from(MediationCase).where(MediationCase.unit_id == b1)
    )
    assert after == before

    # A mediator handing a new case to another team: refused, or kept in the mediator's own team.
    resp = await client.post(
        "/api/v1/mediation/cases",
        json={**case_body, "source": "walk_in", "station_id": a, "unit_id": a1, "team_id": other_team},
        headers=h["mediator"],
    )
    if resp.status_code == 201:
        stored = await db.scalar(select(MediationCase.team_id).where(MediationCase.id == resp.json()["id"]))
        assert stored == own_team, f"a mediator filed a case into team {stored}"
    else:
        assert resp.status_code in (403, 404, 422), resp.text

    # A station officer filing an incident for another station.
    before = await db.scalar(select(func.count()).select_from(Incident).where(Incident.station_id == b))
    resp = await client.post(
        "/api/v1/incidents",
        json={"description": "有人打架斗殴", "station_id": b},
        headers=h["station_officer"],
    )
    if resp.status_code == 201:
        assert resp.json()["station_id"] == a, resp.text
    else:
        assert resp.status_code in (403, 404, 422), resp.text
    after = await db.scalar(select(func.count()).select_from(Incident).where(Incident.station_id == b))
    assert after == before

    # A unit's security head hiring into another unit.
    before = await db.scalar(select(func.count()).select_from(Employment).where(Employment.unit_id == b1))
    resp = await client.post(
        "/api/v1/workers/hires",
        json={
            "unit_id": b1,
            "name": "某",
            "id_number": make_resident_id("330502", dt.date(1993, 3, 3), 901),
            "phone": "13900000000",
            "hired_on": "2026-01-01",
        },
        headers=h["unit_security"],
    )
    assert resp.status_code in (403, 404, 422), resp.text
    after = await db.scalar(select(func.count()).select_from(Employment).where(Employment.unit_id == b1))
    assert after == before
