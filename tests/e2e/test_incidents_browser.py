"""In the browser: a station officer triages a new incident from the queue in one step, the unit's
security head finds it in the unit's queue, starts and finishes it; the timeline shows each step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIMEOUT = 60


def _token(server: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{server}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _login(page: Any, server: str, username: str, target: str) -> None:
    page.goto(f"{server}/login?next={target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}{target}")


def _shot(page: Any, name: str) -> None:
    if os.environ.get("EQIAN_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"incidents-{name}.png"), full_page=True)


def test_officer_triages_and_unit_handles(server: str, browser: Any) -> None:
    unit_head = _token(server, "unit_security")
    unit_id = httpx.get(f"{server}/api/v1/auth/me", headers=unit_head).json()["unit_ids"][0]
    station_id = httpx.get(f"{server}/api/v1/units/{unit_id}", headers=_token(server, "bureau_admin")).json()[
        "station_id"
    ]
    officer_station = httpx.get(f"{server}/api/v1/auth/me", headers=_token(server, "station_officer")).json()[
        "station_ids"
    ]
    triager = "station_officer" if station_id in officer_station else "bureau_admin"
    created = httpx.post(  # the first classification in a fresh server loads the lexicon and jieba
        f"{server}/api/v1/incidents",
        timeout=TIMEOUT,
        json={
            "description": "厂里十几名工人报警称老板拖欠工资三个月，要求结清工资",
            "caller_phone": "13912345678",
            "unit_ref": str(unit_id),
        },
        headers=_token(server, triager),
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["route"] == "self_governance"

    officer = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = officer.new_page()
    _login(page, server, triager, f"/incidents?station_id={station_id}")
    card = page.locator(f"#incident-{incident['id']}")
    assert "劳资纠纷" in card.inner_text()
    assert "精确匹配" in card.inner_text()
    _shot(page, "triage-queue")
    card.locator("button.inc-accept").click()
    page.wait_for_url(f"{server}/incidents?tab=queue")
    assert page.locator(f"#incident-{incident['id']}").count() == 0

    unit = browser.new_context(viewport=PHONE, locale="zh-CN")
    upage = unit.new_page()
    _login(upage, server, "unit_security", "/incidents")
    assert upage.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(upage, "unit-queue-phone")
    upage.click(f"a[href='/incidents/{incident['id']}']")
    upage.wait_for_url(f"{server}/incidents/{incident['id']}")
    upage.fill("form[action$='/transition'] input[name=note]", "已约老板和工人当面协商")
    upage.click("button[value=start]")
    upage.wait_for_url(f"{server}/incidents/{incident['id']}")
    upage.click("button[value=resolve]")
    upage.wait_for_url(f"{server}/incidents/{incident['id']}")
    timeline = upage.locator(".inc-timeline").inner_text()
    for step in ("接警", "分流", "移交", "开始处置", "处置完毕", "已约老板和工人当面协商"):
        assert step in timeline
    assert upage.locator("button[value=close]").count() == 0  # closing is the officer's
    _shot(upage, "detail-phone")

    page.goto(f"{server}/incidents/{incident['id']}")
    page.click("button[value=close]")
    page.wait_for_url(f"{server}/incidents/{incident['id']}")
    assert "已办结" in page.locator("h1").inner_text()
    _shot(page, "detail")
    officer.close()
    unit.close()
