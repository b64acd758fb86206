"""A station officer logs in with headless Chromium and sees only their station's units."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _api_total(server: str, username: str) -> tuple[int, set[str]]:
    token = httpx.post(
        f"{server}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    ).json()
    h = {"Authorization": f"Bearer {token['access_token']}"}
    stations = httpx.get(f"{server}/api/v1/stations", headers=h).json()["items"]
    units = httpx.get(f"{server}/api/v1/units", params={"limit": 1}, headers=h).json()
    return units["total"], {s["name"] for s in stations}


def _login(page: Any, server: str, username: str) -> None:
    page.goto(f"{server}/units")
    assert "/login" in page.url  # not logged in: sent to the login page
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/units")


def test_station_officer_sees_only_their_station(server: str, browser: Any, tmp_path: Path) -> None:
    api_total, station_names = _api_total(server, "station_officer")
    assert station_names == {"织北派出所"}
    admin_total, _ = _api_total(server, "bureau_admin")
    assert 0 < api_total < admin_total

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    _login(page, server, "station_officer")
    assert page.locator("h1").inner_text() == "单位台账"
    assert int(page.locator("#result-total").inner_text()) == api_total
    stations_shown = set(page.locator("#unit-table tbody td.station").all_inner_texts())
    assert stations_shown == {"织北派出所"}
    assert page.locator("#unit-table tbody tr").count() == min(50, api_total)
    # The station filter offers only the officer's own station.
    options = page.locator("select[name=station_id] option").all_inner_texts()
    assert options == ["全部派出所", "织北派出所"]
    # Search narrows the list through HTMX without leaving the page.
    first_name = page.locator("#unit-table tbody tr td a").first.inner_text()
    page.fill("input[name=q]", first_name)
    page.locator("#unit-table tbody tr td a", has_text=first_name).first.wait_for()
    page.wait_for_function(
        "(prev) => document.querySelector('#result-total').innerText !== prev", arg=str(api_total)
    )
    assert int(page.locator("#result-total").inner_text()) >= 1
    page.screenshot(path=str(tmp_path / "units.png"), full_page=False)
    if os.environ.get("EQIAN_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.goto(f"{server}/units")
        page.screenshot(path=str(DOCS / "units.png"))
    context.close()


def test_unit_detail_masks_phones_and_reveal_is_explicit(server: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")  # a phone
    page = context.new_page()
    _login(page, server, "station_officer")
    page.locator("#unit-table tbody tr td a").first.click()
    page.wait_for_selector("text=联系人")
    phone_cell = page.locator("td[id^=phone-]").first
    assert "****" in phone_cell.inner_text()
    phone_cell.locator("button").click()
    page.wait_for_selector(".revealed")
    assert "****" not in page.locator(".revealed").first.inner_text()
    # The layout holds on a phone: nothing wider than the screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    if os.environ.get("EQIAN_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / "unit-detail-phone.png"), full_page=True)
    context.close()


def test_english_switch_and_logout(server: str, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    _login(page, server, "unit_security")
    assert page.locator("#unit-table tbody tr").count() == 1
    page.click("text=English")
    page.wait_for_selector("h1:has-text('Unit registry')")
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{server}/login")
    page.goto(f"{server}/units")
    assert "/login" in page.url
    context.close()
