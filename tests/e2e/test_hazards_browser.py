"""On a phone-sized browser: an officer inspects a unit, a failed item becomes a hazard, the unit
submits its fix, the officer verifies it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _login(page: Any, server: str, username: str, target: str) -> None:
    page.goto(f"{server}/login?next={target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}{target}")


def test_inspection_fix_and_verification_on_a_phone(server: str, browser: Any) -> None:
    token = httpx.post(
        f"{server}/api/v1/auth/token", data={"username": "unit_security", "password": DEMO_PASSWORD}
    ).json()["access_token"]
    unit_id = httpx.get(f"{server}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()[
        "unit_ids"
    ][0]

    officer = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = officer.new_page()
    _login(page, server, "station_officer", f"/hazards/inspect/{unit_id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    items = page.locator("input[type=radio][value=pass]")
    assert items.count() >= 3
    for i in range(items.count()):
        items.nth(i).check(force=True)
    page.locator("input[type=radio][value=fail]").first.check(force=True)
    if os.environ.get("EQIAN_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / "hazards-inspect-phone.png"), full_page=True)
    page.click("button.hz-submit")
    page.wait_for_url(f"{server}/hazards/inspections/*")
    hazard_link = page.locator("a[href^='/hazards/']", has_text="#").first
    hazard_url = server + hazard_link.get_attribute("href")

    unit = browser.new_context(viewport=PHONE, locale="zh-CN")
    upage = unit.new_page()
    _login(upage, server, "unit_security", hazard_url.removeprefix(server))
    upage.fill("textarea[name=note]", "已疏通安全出口并张贴标识")
    upage.click("form[action$='/evidence'] button[type=submit]")
    upage.wait_for_url(hazard_url)
    assert "已疏通安全出口并张贴标识" in upage.content()

    page.goto(hazard_url)
    page.click("button[name=decision][value=verify]")
    page.wait_for_url(hazard_url)
    api = httpx.get(
        f"{server}/api/v1/hazards/{hazard_url.rsplit('/', 1)[1]}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert api["status"] == "verified"
    officer.close()
    unit.close()
