"""The cockpit in headless Chromium on the seeded demo: its figures equal the hazards domain's own
count, a figure drills down to the rows behind it, the charts and the map draw, and the big
screen fills a 1920x1080 command-room display. Screenshots go to docs/screenshots/cockpit-*.png."""

from __future__ import annotations

import calendar
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
API = "/api/v1/cockpit"


def _token(server: str, username: str) -> dict[str, str]:
    token = httpx.post(
        f"{server}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    ).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _login(page: Any, server: str, username: str, target: str) -> None:
    page.goto(f"{server}/cockpit")  # the login's ``next`` keeps the path, not the query
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/cockpit", wait_until="commit")
    page.goto(f"{server}{target}")


def _hazards_found(server: str, headers: dict[str, str], month: str) -> int:
    """The hazards domain's own count of the month's finds (its stats API, local days inclusive)."""
    year, mon = (int(x) for x in month.split("-"))
    last = calendar.monthrange(year, mon)[1]
    rows = httpx.get(
        f"{server}/api/v1/hazards/stats",
        params={"group": "station", "from": f"{month}-01", "to": f"{month}-{last:02d}"},
        headers=headers,
        timeout=30,
    ).json()["items"]
    return sum(int(r["found"]) for r in rows)


def test_cockpit_figures_drill_down_and_big_screen(server: str, browser: Any) -> None:
    headers = _token(server, "bureau_admin")
    first = httpx.get(f"{server}{API}/summary", headers=headers, timeout=30).json()
    month = first["month"]
    months = [month, first["month_before"], first["year_before"]]
    refreshed = httpx.post(f"{server}{API}/refresh", json={"months": months}, headers=headers, timeout=120)
    assert refreshed.status_code == 200, refreshed.text
    summary = httpx.get(f"{server}{API}/summary", params={"month": month}, headers=headers, timeout=30).json()
    assert summary["freshness"]["pending"] == []
    kpis = {k["code"]: k for k in summary["kpis"]}
    found = _hazards_found(server, headers, month)
    assert found > 0
    assert kpis["hazards_found"]["value"] == found

    DOCS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    try:
        _login(page, server, "bureau_admin", f"/cockpit?month={month}")
        card = page.locator(".ck-kpi[data-kpi=hazards_found]")
        assert card.locator(".ck-value").inner_text().replace(",", "") == str(found)
        page.wait_for_selector("#ck-map canvas")
        page.wait_for_selector("#ck-trend canvas")
        page.wait_for_function("document.querySelector('#ck-feed li') !== null")
        page.wait_for_timeout(800)  # the charts' entry animation
        page.screenshot(path=str(DOCS / "cockpit-dashboard.png"), full_page=True)

        card.click()
        page.wait_for_url("**/cockpit/drill?kpi=hazards_found*")
        total = page.locator(".ck-drill-total strong").inner_text().replace(",", "")
        assert total == str(found)
        assert page.locator("table.list tbody tr").count() >= 1
        page.screenshot(path=str(DOCS / "cockpit-drill.png"))

        page.set_viewport_size({"width": 1920, "height": 1080})
        page.goto(f"{server}/cockpit/big-screen?month={month}")
        page.wait_for_selector("#ck-map canvas")
        page.wait_for_timeout(1200)
        # A command-room screen does not scroll: everything fits in the window.
        assert page.evaluate("document.documentElement.scrollHeight") <= 1080 + 2
        page.screenshot(path=str(DOCS / "cockpit-big-screen.png"))
    finally:
        context.close()

    # A station officer sees their own station only; a unit's security head is refused.
    officer = httpx.get(
        f"{server}{API}/summary", params={"month": month}, headers=_token(server, "station_officer")
    )
    assert officer.status_code == 200
    officer_found = next(k["value"] for k in officer.json()["kpis"] if k["code"] == "hazards_found")
    assert officer_found <= found
    refused = httpx.get(f"{server}{API}/summary", headers=_token(server, "unit_security"))
    assert refused.status_code == 403
