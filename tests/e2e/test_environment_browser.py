"""Eco-policing in headless Chromium on the seeded demo: the board flags the dumping smelters, the
drill-down explains one, the map draws the 乔溇 joint zone; on a desktop and on a phone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def _token(server: str, username: str) -> dict[str, str]:
    token = httpx.post(
        f"{server}/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    ).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _red_by_api(server: str, username: str, period: str) -> set[str]:
    """Names of the smelters red in ``period``, as the JSON API tells this user."""
    rows = httpx.get(
        f"{server}/api/v1/environment/balance",
        params={"period": period, "limit": 500},
        headers=_token(server, username),
    ).json()["items"]
    return {r["unit_name"] for r in rows if r["status"] == "red"}


def _board_period(page: Any) -> str:
    """The month the board shows (by default the last full one)."""
    period: str = page.locator("select[name=period] option[selected]").get_attribute("value")
    return period


def _login(page: Any, server: str, username: str, target: str) -> None:
    page.goto(f"{server}{target}")
    assert "/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}{target}")


def _fits(page: Any, width: int) -> None:
    """Nothing wider than the screen: tables scroll inside their own box."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _red_rows(page: Any) -> list[str]:
    return page.locator("#balance-table tbody tr[data-status=red] td.unit-col a").all_inner_texts()  # type: ignore[no-any-return]


def test_the_board_flags_exactly_the_two_dumping_smelters(server: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    _login(page, server, "bureau_admin", "/environment")
    assert page.locator("h1").inner_text() == "铝灰全流程监管"
    red = _red_rows(page)
    assert len(red) == 2
    assert set(red) == _red_by_api(server, "bureau_admin", _board_period(page))
    assert page.locator("#count-red strong").inner_text() == "2"
    assert page.locator("#count-amber strong").inner_text() == "0"
    green = page.locator("#balance-table tbody tr[data-status=green]").count()
    assert green == 16  # 18 smelters: the two that dump, and the rest well inside the tolerance
    context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_station_officer_board_drill_down_and_map(
    server: str, browser: Any, tmp_path: Path, size: str
) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    _login(page, server, "station_officer", "/environment")

    # The board: red first, exactly the red smelters the API reports for this officer.
    red = _red_rows(page)
    expected = _red_by_api(server, "station_officer", _board_period(page))
    assert red
    assert set(red) == expected
    statuses = page.locator("#balance-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses[: len(red)] == ["red"] * len(red)
    assert page.locator("#count-red strong").inner_text() == str(len(red))
    _fits(page, width)
    page.screenshot(path=str(tmp_path / f"environment-board-{size}.png"), full_page=True)
    if size == "desktop" and os.environ.get("EQIAN_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / "environment-board.png"))

    # The drill-down of the first red smelter: the arithmetic, the trend and the entries behind it.
    page.locator("#balance-table tbody tr[data-status=red] td.unit-col a").first.click()
    page.wait_for_selector("#balance")
    assert page.locator("h1").inner_text().startswith(red[0])
    assert "去向不明超过容差的两倍" in page.locator("#balance").inner_text()
    assert page.locator("#trend-chart g.month").count() == 6
    assert page.locator("#ledger-table tbody tr[data-kind=production]").count() >= 20
    assert page.locator("#ledger-table tbody tr[data-kind=manifest]").count() >= 1
    _fits(page, width)
    page.screenshot(path=str(tmp_path / f"environment-smelter-{size}.png"), full_page=True)

    # The eco map: the joint-zone polygon, smelter dots by status, incidents and patrols.
    page.goto(f"{server}/environment/map")
    zone = page.locator("#eco-map polygon.zone")
    assert zone.count() == 1
    assert len(zone.first.get_attribute("points").split()) >= 3
    assert "乔溇" in page.locator("#eco-map text.zone-label").first.text_content()
    assert page.locator("#eco-map circle.dot-red").count() == len(red)
    assert (
        page.locator("#eco-map circle.dot").count() == page.locator("#eco-map a.smelter").count() > len(red)
    )
    assert page.locator("#eco-map polygon.incident").count() > 0
    assert page.locator("#eco-map polygon.patrol").count() > 0
    assert page.locator("#incident-list li").count() > 0
    _fits(page, width)
    page.screenshot(path=str(tmp_path / f"environment-map-{size}.png"), full_page=True)
    if size == "desktop" and os.environ.get("EQIAN_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / "environment-map.png"))
    context.close()


def test_partner_officer_sees_only_the_joint_zone(server: str, browser: Any) -> None:
    h = _token(server, "partner_officer")
    zoned = httpx.get(f"{server}/api/v1/environment/smelters", params={"limit": 500}, headers=h).json()
    assert 0 < zoned["total"] < 18
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    _login(page, server, "partner_officer", "/environment")
    names = page.locator("#balance-table tbody td.unit-col a").all_inner_texts()
    assert set(names) == {s["name"] for s in zoned["items"]}
    assert len(_red_rows(page)) == 1  # one of the two dumpers works inside the zone
    page.goto(f"{server}/environment/map")
    assert page.locator("#eco-map polygon.zone").count() == 1
    assert page.locator("#eco-map a.smelter").count() == zoned["total"]
    context.close()


def test_a_smelters_own_staff_reach_the_ledger_form(server: str, browser: Any) -> None:
    """Officers open the entry form from the drill-down; it posts with the page's CSRF token."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    _login(page, server, "station_officer", "/environment")
    page.locator("#balance-table tbody td.unit-col a").first.click()
    page.click("text=台账录入")
    page.wait_for_selector("#form-stock")
    form = page.locator("#form-stock form")
    form.locator("input[name=ash_t]").fill("-1")
    form.locator("button[type=submit]").click()
    # The browser's own check stops a negative number before it is sent.
    assert page.locator("#notice").count() == 0
    form.locator("input[name=ash_t]").fill("3.5")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#notice")
    assert "已登记 库存盘点 #" in page.locator("#notice").inner_text()
    _fits(page, 390)
    context.close()
