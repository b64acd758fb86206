"""A LeanRoute answers every request exactly as FastAPI's own route for the same endpoint would.

The incident intake's endpoint (``incidents.api.create_incident``) is declared twice on an app
that shares the real app's state and error handlers: once as ``web.lean.LeanRoute`` (as served at
``POST /api/v1/incidents``), once as an ordinary ``APIRoute``. Each request below goes to both and
must get the same status, error code, fields and headers — bad JSON, a missing body, a form, wrong
types, an over-long header, no or a bad credential, a cookie without its CSRF token, a role that may
not file, a good request and its replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.incidents import api as incidents_api
from eqian.web import errors
from eqian.web.deps import get_principal
from eqian.web.lean import LeanRoute
from tests.factories import open_cookie_session
from tests.incidents.helpers import make_inc_world

TEXT = "织里镇童装厂工人讨薪，老板拖欠三个月工资"


@pytest.fixture
async def twin(app: FastAPI, db: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """An app with the intake endpoint at /lean and at /plain, on the real app's state."""
    twin_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    twin_app.state = app.state
    errors.install(twin_app)
    kwargs: dict[str, Any] = {"methods": ["POST"], "status_code": 201}
    twin_app.router.add_api_route(
        "/lean", incidents_api.create_incident, route_class_override=LeanRoute, **kwargs
    )
    twin_app.router.add_api_route("/plain", incidents_api.create_incident, **kwargs)
    transport = httpx.ASGITransport(app=twin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    body = response.json()
    if response.status_code == 201:  # a new incident each time: compare what is not its own
        body = {k: v for k, v in body.items() if k not in {"id", "reported_at", "due_at"}}
    elif isinstance(body, dict) and "error" in body:
        body = {k: v for k, v in body["error"].items() if k != "request_id"}
    headers = {k: v for k, v in response.headers.items() if k in {"idempotent-replayed", "www-authenticate"}}
    return response.status_code, body, headers


async def _both(client: httpx.AsyncClient, **request: Any) -> tuple[int, Any, dict[str, str]]:
    lean = _comparable(await client.post("/lean", **request))
    plain = _comparable(await client.post("/plain", **request))
    assert lean == plain
    return lean


async def test_good_requests_and_replays_answer_alike(twin: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    officer = iw.headers["station_officer"]
    status, body, _ = await _both(twin, json={"description": TEXT}, headers=officer)
    assert status == 201
    assert body["category"] == "labor"
    for route in ("/lean", "/plain"):  # each key its own first answer, then replayed
        headers = {**officer, "Idempotency-Key": f"key-{route}"}
        first = await twin.post(route, json={"description": TEXT}, headers=headers)
        again = await twin.post(route, json={"description": TEXT}, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"json": {"description": TEXT}}, 401, "not_authenticated"),
        ({"json": {"description": TEXT}, "headers": {"Authorization": "Bearer not-a-token"}}, 401, None),
        ({"content": b'{"description": ', "headers": {"Content-Type": "application/json"}}, 422, None),
    ],
)
async def test_refusals_before_authentication_answer_alike(
    twin: httpx.AsyncClient, db: AsyncSession, request_kwargs: dict[str, Any], status: int, code: str | None
) -> None:
    got, body, _ = await _both(twin, **request_kwargs)
    assert got == status
    if code:
        assert body["code"] == code


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},  # no body at all
        {"content": b'{"description": "x"', "headers": {"Content-Type": "application/json"}},
        {"content": '{"description": "工人讨薪"}'.encode(), "headers": {"Content-Type": "text/plain"}},
        {"data": {"description": TEXT}},  # a form
        {"json": ["not", "an", "object"]},
        {"json": {"station_id": "x"}},  # description missing, station id not a number
        {"json": {"description": TEXT, "lat": 95, "severity": "apocalyptic"}},
        {"json": {"description": ""}, "headers": {"Idempotency-Key": "k" * 200}},  # header and body at once
        {"json": {"description": TEXT}, "headers": {"Idempotency-Key": "bad key/with spaces"}},
        {"json": {"description": TEXT, "unit_ref": "no-such-unit"}},
        {"content": b'{"description": "\xff"}', "headers": {"Content-Type": "application/json"}},
    ],
)
async def test_bad_requests_answer_alike(
    twin: httpx.AsyncClient, db: AsyncSession, request_kwargs: dict[str, Any]
) -> None:
    iw = await make_inc_world(db)
    request_kwargs = {
        **request_kwargs,
        "headers": {**iw.headers["station_officer"], **request_kwargs.get("headers", {})},
    }
    status, body, _ = await _both(twin, **request_kwargs)
    assert status in {400, 409, 422}, body
    assert body["code"]
    assert body["message"]


async def test_roles_and_cookies_answer_alike(
    app: FastAPI, twin: httpx.AsyncClient, db: AsyncSession
) -> None:
    iw = await make_inc_world(db)
    status, body, _ = await _both(twin, json={"description": TEXT}, headers=iw.headers["unit_security"])
    assert (status, body["code"]) == (403, "forbidden")
    issued = await open_cookie_session(db, twin, iw.world.users["station_officer"])
    status, body, _ = await _both(twin, json={"description": TEXT})
    assert (status, body["code"]) == (403, "csrf_failed")
    # An empty bearer header is no credential: the cookie still needs its CSRF token.
    status, body, _ = await _both(twin, json={"description": TEXT}, headers={"Authorization": "Bearer "})
    assert (status, body["code"]) == (403, "csrf_failed")
    status, _, _ = await _both(twin, json={"description": TEXT}, headers={"X-CSRF-Token": issued.csrf_token})
    assert status == 201


def test_an_endpoint_with_parameters_it_cannot_resolve_is_refused_when_declared() -> None:
    async def with_query(limit: int, actor: Principal = Depends(get_principal)) -> JSONResponse:
        return JSONResponse({})

    async def other_dependency(actor: str = Depends(lambda: "x")) -> JSONResponse:
        return JSONResponse({})

    for endpoint, reason in ((with_query, "query parameters"), (other_dependency, "dependency")):
        with pytest.raises(TypeError, match=reason):
            LeanRoute("/x", endpoint, methods=["POST"])


def test_the_served_intake_route_is_lean_and_nothing_is_declared_around_it(app: FastAPI) -> None:
    """Dependencies declared on the app or on an include would run for an ordinary route but not
    for a lean one, which resolves only its own parameters: the route as served (FastAPI's view of
    it through its include, ``effective_route_contexts``) must depend on exactly what it declares."""
    served = [
        context
        for included in app.router.routes
        if hasattr(included, "effective_route_contexts")
        for context in included.effective_route_contexts()
        if context.path == "/api/v1/incidents" and "POST" in context.methods
    ]
    assert len(served) == 1
    [context] = served
    assert isinstance(context.original_route, LeanRoute)
    declared = [d.call for d in context.original_route.dependant.dependencies]
    assert [d.call for d in context.dependant.dependencies] == declared
    assert not app.router.dependencies
