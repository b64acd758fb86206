"""The observer's own parts: the identifier scanners find what is unmasked and nothing else, XLSX
cells are read, routes are named by their templates, answers are held to the OpenAPI document, and
a reveal only passes with its audit row."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable, Iterator

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.ids import make_resident_id, mask_mobile, mask_resident_id
from tests.factories import bearer, make_world
from tests.security import observer
from tests.security.leaks import XLSX_TYPE, body_text, scan_text

VALID_ID = make_resident_id("330502", dt.date(1990, 5, 17), 123)


def _bad_check_digit(rid: str) -> str:
    return rid[:17] + ("0" if rid[17] != "0" else "1")


def test_a_valid_id_number_is_found_and_its_masked_form_is_not() -> None:
    hits = scan_text(f"身份证号：{VALID_ID}，住址织里镇")
    assert [(h.kind, h.value) for h in hits] == [("resident_id", VALID_ID)]
    assert VALID_ID not in str(hits[0])  # the report itself must not repeat the number
    assert scan_text(f"身份证号：{mask_resident_id(VALID_ID)}") == []


def test_eighteen_digits_that_are_not_an_id_number_are_not_reported() -> None:
    assert scan_text(f"编号 {_bad_check_digit(VALID_ID)}") == []
    assert scan_text("流水 330502199013401234") == []  # month 13: no such birth date
    assert scan_text(f"单号 9{VALID_ID}") == []  # part of a longer number
    lower_x = make_resident_id("330502", dt.date(1990, 5, 17), 1)
    if lower_x.endswith("X"):
        assert [h.value for h in scan_text(lower_x.lower())] == [lower_x.lower()]


def test_mobile_numbers_are_found_only_when_whole_and_unmasked() -> None:
    assert [h.value for h in scan_text('{"phone": "13812345678"}')] == ["13812345678"]
    assert [h.value for h in scan_text("联系人张三13912340077")] == ["13912340077"]
    assert scan_text(f'{{"phone": "{mask_mobile("13812345678")}"}}') == []
    assert scan_text("订单 138123456789") == []  # twelve digits: not a phone
    assert scan_text("座机 12345678901") == []  # 12…: no mainland mobile prefix
    assert scan_text('{"lng": 120.13812345678}') == []  # a coordinate's decimals
    assert scan_text("token=ab13812345678cd") == []  # inside a token or hex digest


def test_xlsx_cells_are_read_as_text() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机号", "身份证号"])
    sheet.append(["钱七", "13912340077", VALID_ID])
    buf = io.BytesIO()
    book.save(buf)
    text = body_text(XLSX_TYPE, buf.getvalue())
    assert text is not None
    assert {h.kind for h in scan_text(text)} == {"mobile", "resident_id"}
    assert body_text("image/png", b"\x89PNG13812345678") is None


@pytest.fixture
def isolated_records() -> Iterator[observer.Records]:
    """The observer's tallies while a test feeds it deliberate leaks, restored afterwards so the
    deliberate ones do not fail the run."""
    saved = observer.RECORDS
    observer.RECORDS = observer.Records()
    try:
        yield observer.RECORDS
    finally:
        observer.RECORDS = saved


async def _observe(app: FastAPI, method: str, url: str, **kwargs: object) -> httpx.Response:
    request = httpx.Request(method, f"http://testserver{url}", **kwargs)  # type: ignore[arg-type]
    response = await observer._observed_request(httpx.ASGITransport(app=app), request)
    await response.aread()
    return response


async def test_routes_are_recorded_by_template_and_answers_checked_against_the_document(
    app: FastAPI, db: AsyncSession, isolated_records: observer.Records
) -> None:
    w = await make_world(db)
    h = await bearer(db, w.users["station_officer"])
    a1 = w.units["a1"]
    assert (await _observe(app, "GET", f"/api/v1/units/{a1}", headers=h)).status_code == 200
    bad = await _observe(app, "PATCH", f"/api/v1/units/{a1}", headers=h, json={"employee_count": "many"})
    assert bad.status_code == 422
    assert (await _observe(app, "GET", "/units", headers=h)).status_code == 200  # a page: not in the document
    assert {
        "GET /api/v1/units/{unit_id}",
        "GET /units",
        "WS /ws",
        "GET /static/{path}",
    } <= isolated_records.routes
    assert isolated_records.exercised == {"GET /api/v1/units/{unit_id}", "GET /units"}
    assert isolated_records.validated == 2
    assert isolated_records.violations == []
    assert isolated_records.responses == isolated_records.scanned == 3


class _Answer:
    """What the observer reads of a Playwright response."""

    def __init__(self, method: str, url: str, status: int, body: object) -> None:
        self.request = type("Request", (), {"method": method})()
        self.url, self.status = url, status
        self.headers = {"content-type": "application/json"}
        self._body = json.dumps(body).encode()

    def body(self) -> bytes:
        return self._body


class _Browser:
    def __init__(self) -> None:
        self.listeners: list[Callable[[_Answer], None]] = []

    def new_context(self) -> _Browser:
        return self

    def on(self, event: str, listener: Callable[[_Answer], None]) -> None:
        self.listeners.append(listener)


def test_json_the_browser_loads_is_held_to_the_document(
    app: FastAPI, isolated_records: observer.Records
) -> None:
    browser = observer.watch_browser(_Browser(), app)
    context = browser.new_context()
    unit = {"id": 1, "name": "贝贝童装"}  # a unit answer without most of its documented fields
    context.listeners[0](_Answer("GET", "http://127.0.0.1:8000/api/v1/units/1", 200, unit))
    context.listeners[0](_Answer("GET", "http://127.0.0.1:8000/api/v1/units/1", 404, {"detail": "x"}))
    assert isolated_records.validated == 2
    assert len(isolated_records.violations) == 2
    assert "browser GET /api/v1/units/{unit_id} → 200" in isolated_records.violations[0]
    assert "not the error envelope" in isolated_records.violations[1]


def test_the_published_422_is_the_error_envelope_the_app_sends(app: FastAPI) -> None:
    doc = app.openapi()
    schema = doc["paths"]["/api/v1/units/{unit_id}"]["patch"]["responses"]["422"]["content"][
        "application/json"
    ]
    validator = jsonschema_rs.Draft202012Validator({**schema["schema"], "components": doc["components"]})
    assert validator.is_valid(
        {"error": {"code": "validation_error", "message": "请求参数有误: x", "details": []}}
    )
    assert not validator.is_valid({"detail": [{"loc": ["body"], "msg": "x", "type": "y"}]})


def test_a_refusal_outside_the_envelope_is_a_violation() -> None:
    assert observer._envelope_problem({"detail": "Not Found"}) is not None
    assert observer._envelope_problem({"error": {"code": "x", "message": "y"}}) == (
        "error.details missing or not a list"
    )
    assert observer._envelope_problem({"error": {"code": "x", "message": "y", "details": []}}) is None


async def test_a_leak_outside_a_reveal_is_reported_and_a_reveal_needs_its_audit_row(
    app: FastAPI, db: AsyncSession, isolated_records: observer.Records
) -> None:
    leaky = FastAPI()

    @leaky.get("/api/v1/echo")
    async def echo() -> dict[str, str]:
        return {"phone": "13812345678"}

    @leaky.post("/api/v1/things/{thing_id}/reveal")
    async def unaudited_reveal(thing_id: int) -> dict[str, str]:
        return {"phone": "13812345678"}

    await _observe(leaky, "GET", "/api/v1/echo")
    assert len(isolated_records.leaks) == 1
    assert "mobile 138****5678" in isolated_records.leaks[0]
    await _observe(leaky, "POST", "/api/v1/things/7/reveal")
    assert len(isolated_records.leaks) == 1  # a reveal may show the number …
    assert isolated_records.reveals == 1
    assert isolated_records.reveals_audited == 0  # … but only with its audit row
    assert len(isolated_records.unaudited) == 1

    w = await make_world(db)
    h = await bearer(db, w.users["station_officer"])
    url = f"/api/v1/units/{w.units['a1']}/contacts/{w.contacts['a1']}/reveal"
    r = await _observe(app, "POST", url, headers=h)
    assert r.json()["phone"] == "13812345678"
    assert (isolated_records.reveals, isolated_records.reveals_audited) == (2, 1)
    assert len(isolated_records.leaks) == 1


def test_merged_worker_records_add_up() -> None:
    a = observer.Records(routes={"GET /a", "GET /b"}, exercised={"GET /a"}, responses=2, leaks=["x"])
    b = observer.Records(routes={"GET /a", "GET /b"}, exercised={"GET /b"}, responses=3)
    merged = observer.Records()
    for part in (a, b):
        merged.merge(part.to_json())
    assert merged.exercised == {"GET /a", "GET /b"}
    assert (merged.responses, merged.leaks) == (5, ["x"])
    assert dataclasses.asdict(merged)["routes"] == {"GET /a", "GET /b"}
