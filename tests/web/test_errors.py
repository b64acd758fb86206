"""One error shape for the API, 4xx for anything a client can send (never a 500), health and OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian import __version__
from eqian.core.config import Settings
from eqian.organizations.models import Unit
from eqian.web.app import create_app
from tests.factories import World, bearer, credit_code, make_world

ERROR_KEYS = {"code", "message", "details"}
HTML = {"Accept": "text/html"}


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


@pytest.fixture
async def admin(db: AsyncSession, world: World) -> dict[str, str]:
    return await bearer(db, world.users["bureau_admin"])


@pytest.fixture
async def raw(app: FastAPI, db: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``client``, but a server error comes back as the 500 a real client would see."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def on_postgresql(database_url: str) -> bool:
    return database_url.startswith("postgresql")


def error_of(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The error object of an API answer, after checking its status and its exact shape."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert set(err) == ERROR_KEYS
    assert isinstance(err["message"], str)
    assert err["message"]
    assert isinstance(err["details"], list)
    if code is not None:
        assert err["code"] == code
    return err


def fields_of(err: dict[str, Any]) -> set[str]:
    return {d["field"] for d in err["details"]}


async def unit_count(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(Unit)) or 0)


def new_unit(world: World) -> dict[str, object]:
    return {
        "name": "新开童装厂",
        "credit_code": credit_code(),
        "category_code": "garment",
        "station_id": world.station_a,
        "address": "织里镇大港路8号",
        "employee_count": 30,
    }


# --- routing errors ------------------------------------------------------------------------------


async def test_unknown_api_path_is_a_json_404(raw: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for path in ("/api/v1/nope", "/api/v2/units", "/api/v1/units/1/nope"):
        err = error_of(await raw.get(path, headers=admin), 404, "not_found")
        assert err["details"] == []
    # Even when a browser asks for HTML, the API answers JSON.
    error_of(await raw.get("/api/v1/nope", headers={"Accept": "text/html"}), 404, "not_found")


async def test_unknown_page_is_a_friendly_404_for_a_browser(raw: httpx.AsyncClient) -> None:
    r = await raw.get("/no-such-page", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "返回首页" in r.text
    assert "<code>not_found</code>" in r.text


async def test_wrong_method_is_a_json_405(raw: httpx.AsyncClient, admin: dict[str, str]) -> None:
    error_of(await raw.delete("/api/v1/units", headers=admin), 405, "method_not_allowed")
    error_of(await raw.put("/api/v1/auth/token"), 405, "method_not_allowed")
    error_of(await raw.post("/healthz"), 405, "method_not_allowed")


async def test_a_405_names_the_allowed_methods(raw: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await raw.delete("/api/v1/units", headers=admin)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "POST"}


async def test_missing_credentials_are_a_401_with_a_bearer_challenge(raw: httpx.AsyncClient) -> None:
    r = await raw.get("/api/v1/units")
    error_of(r, 401, "not_authenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    r = await raw.get("/api/v1/units", headers={"Authorization": "Bearer not-a-token"})
    error_of(r, 401, "invalid_token")


# --- request bodies ------------------------------------------------------------------------------


async def test_malformed_json_is_a_422_with_details(
    raw: httpx.AsyncClient, db: AsyncSession, admin: dict[str, str]
) -> None:
    for body in (b'{"name": ', b"{'name': 'x'}", b"[]", b"null", b'"unit"', b"", b"\xff\xfe{}"):
        r = await raw.post(
            "/api/v1/units", content=body, headers=admin | {"Content-Type": "application/json"}
        )
        err = error_of(r, 422, "validation_error")
        assert err["details"], body
        assert all(set(d) == {"field", "code", "message"} for d in err["details"]), body
    assert await unit_count(db) == 5


async def test_malformed_json_names_the_problem(raw: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await raw.post(
        "/api/v1/units", content=b'{"name": ', headers=admin | {"Content-Type": "application/json"}
    )
    err = error_of(r, 422, "validation_error")
    assert [d["code"] for d in err["details"]] == ["json_invalid"]


BAD_FIELDS: list[tuple[str, object]] = [
    ("station_id", "abc"),
    ("station_id", 1.5),
    ("employee_count", -1),
    ("employee_count", 10**30),
    ("lat", 91),
    ("lng", -181),
    ("lat", "north"),
    ("name", "厂"),
    ("name", "厂" * 10_240),
    ("name", None),
    ("address", "路" * 201),
    ("status", "bankrupt"),
    ("above_scale", "maybe"),
]


async def test_a_bad_field_is_a_422_naming_it_and_nothing_is_written(
    raw: httpx.AsyncClient, db: AsyncSession, world: World, admin: dict[str, str]
) -> None:
    for field, value in BAD_FIELDS:
        r = await raw.post("/api/v1/units", json=new_unit(world) | {field: value}, headers=admin)
        err = error_of(r, 422, "validation_error")
        assert fields_of(err) == {field}, (field, value)
        assert field in err["message"]
    assert await unit_count(db) == 5


async def test_every_bad_field_is_reported_at_once(
    raw: httpx.AsyncClient, db: AsyncSession, world: World, admin: dict[str, str]
) -> None:
    body = new_unit(world) | {"station_id": "abc", "employee_count": -1, "lat": 91, "name": "厂"}
    err = error_of(await raw.post("/api/v1/units", json=body, headers=admin), 422, "validation_error")
    assert fields_of(err) == {"station_id", "employee_count", "lat", "name"}
    assert await unit_count(db) == 5
    # A huge body is refused the same way, not stored and not a 500.
    body = new_unit(world) | {"name": "x" * 10_240, "address": "y" * 100_000}
    err = error_of(await raw.post("/api/v1/units", json=body, headers=admin), 422, "validation_error")
    assert fields_of(err) == {"name", "address"}
    assert await unit_count(db) == 5


async def test_a_bad_patch_writes_nothing(
    raw: httpx.AsyncClient, db: AsyncSession, world: World, admin: dict[str, str]
) -> None:
    a1 = world.units["a1"]
    r = await raw.patch(f"/api/v1/units/{a1}", json={"employee_count": 9, "lat": 91}, headers=admin)
    assert fields_of(error_of(r, 422, "validation_error")) == {"lat"}
    assert await db.scalar(select(Unit.employee_count).where(Unit.id == a1)) == 50


# --- query parameters ----------------------------------------------------------------------------


BAD_LIST_PARAMS: list[tuple[dict[str, str], str]] = [
    ({"limit": str(10**30)}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"station_id": "abc"}, "station_id"),
    ({"status": "bankrupt"}, "status"),
    ({"above_scale": "maybe"}, "above_scale"),
    ({"q": "织" * 101}, "q"),
    ({"sort": "password"}, "sort"),
]


async def test_bad_list_parameters_are_a_422_naming_them(
    raw: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    for params, field in BAD_LIST_PARAMS:
        err = error_of(await raw.get("/api/v1/units", params=params, headers=admin), 422)
        assert fields_of(err) == {field}, params


async def test_a_huge_offset_is_not_a_500(
    raw: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    r = await raw.get("/api/v1/units", params={"offset": str(10**30)}, headers=admin)
    assert r.status_code in (200, 422)


async def test_a_huge_id_is_not_a_500(raw: httpx.AsyncClient, world: World, admin: dict[str, str]) -> None:
    huge = str(10**30)
    assert (await raw.get(f"/api/v1/units/{huge}", headers=admin)).status_code in (404, 422)
    assert (await raw.get("/api/v1/units", params={"station_id": huge}, headers=admin)).status_code in (
        200,
        422,
    )


async def test_an_id_beyond_32_bits_is_not_a_500(
    raw: httpx.AsyncClient,
    world: World,
    admin: dict[str, str],
) -> None:
    big = str(2**31)
    assert (await raw.get(f"/api/v1/units/{big}", headers=admin)).status_code in (404, 422)
    assert (await raw.get("/api/v1/units", params={"station_id": big}, headers=admin)).status_code in (
        200,
        422,
    )
    # The pages take the same ids (a bearer token works there too).
    assert (await raw.get(f"/units/{big}", headers=admin | HTML)).status_code in (404, 422)
    assert (await raw.get(f"/stations/{big}", headers=admin | HTML)).status_code in (404, 422)
    assert (await raw.get("/units", params={"station_id": big}, headers=admin | HTML)).status_code in (
        200,
        422,
    )


async def test_any_text_search_is_answered(
    raw: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    searches = {"织里": 5, "童装": 2, "童装👶🏻": 0, "\u202eevil": 0, "'; DROP TABLE units; --": 0, "\\": 0}
    searches |= {"_": 0, "%%": 0, "Ω≈ç√": 0, "　": 5}  # blank (an ideographic space) is no filter
    for q, expected in searches.items():
        r = await raw.get("/api/v1/units", params={"q": q}, headers=admin)
        assert r.status_code == 200, q
        assert r.json()["total"] == expected, q  # every address is in 织里镇
    r = await raw.get("/api/v1/units?q=%FF%FE%80", headers=admin)  # not UTF-8 at all
    assert r.status_code in (200, 422)


async def test_a_nul_byte_in_a_search_is_not_a_500(
    raw: httpx.AsyncClient,
    world: World,
    admin: dict[str, str],
) -> None:
    for q in ("\x00", "a\x00b"):
        r = await raw.get("/api/v1/units", params={"q": q}, headers=admin)
        assert r.status_code in (200, 422), repr(q)
        r = await raw.get("/units", params={"q": q}, headers=admin | HTML)
        assert r.status_code in (200, 422), repr(q)


# --- health and OpenAPI --------------------------------------------------------------------------


async def test_healthz_reports_the_database(raw: httpx.AsyncClient) -> None:
    r = await raw.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "version": __version__}
    assert r.headers["cache-control"] == "no-store"


async def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        env="test",
        database_url="sqlite+aiosqlite:////nonexistent-dir/x.db",
        var_dir=tmp_path,
        secret_key="test-secret",
    )
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get("/healthz")
    finally:
        await app.state.engine.dispose()
    assert r.status_code == 503
    assert r.json() == {"status": "error", "database": "unreachable"}


async def test_openapi_lists_the_api(raw: httpx.AsyncClient) -> None:
    r = await raw.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/units"])
    assert "post" in paths["/api/v1/auth/token"]
    assert "/api/v1/units/{unit_id}/contacts/{contact_id}/reveal" in paths
    assert not [p for p in paths if not p.startswith("/api/") and p != "/healthz"]  # pages stay out


# --- one shape for every error -------------------------------------------------------------------


async def test_every_api_error_has_exactly_code_message_details(
    raw: httpx.AsyncClient, db: AsyncSession, world: World, admin: dict[str, str]
) -> None:
    security = await bearer(db, world.users["unit_security"])
    officer_b = await bearer(db, world.users["station_officer_b"])
    a1 = world.units["a1"]
    cases: list[tuple[httpx.Response, int, str]] = [
        (await raw.get("/api/v1/units"), 401, "not_authenticated"),
        (await raw.post("/api/v1/auth/token", data={"username": "x", "password": "y"}), 401, "login_failed"),
        (await raw.patch(f"/api/v1/units/{a1}", json={"name": "新名称"}, headers=security), 403, "forbidden"),
        (await raw.get(f"/api/v1/units/{a1}", headers=officer_b), 404, "not_found"),
        (await raw.get("/api/v1/nope", headers=admin), 404, "not_found"),
        (await raw.delete("/api/v1/units", headers=admin), 405, "method_not_allowed"),
        (await raw.get("/api/v1/units", params={"limit": 0}, headers=admin), 422, "validation_error"),
        (await raw.get("/api/v1/units", params={"sort": "x"}, headers=admin), 422, "validation_error"),
        (
            await raw.post(
                "/api/v1/units", json=new_unit(world) | {"category_code": "casino"}, headers=admin
            ),
            422,
            "validation_error",
        ),
        (await raw.post("/api/v1/auth/token", data={}), 422, "validation_error"),
    ]
    for r, status, code in cases:
        err = error_of(r, status, code)
        for detail in err["details"]:
            assert {"field", "code"} <= set(detail), detail
