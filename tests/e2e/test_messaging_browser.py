"""Two browsers, live over /ws: the station officer sends an instruction, the unit's security head
sees it arrive without reloading and acknowledges it with one click, and the officer's board moves
to 1 acknowledged on its own. Then the two talk in a direct conversation, and the unit's
connection is cut while the officer writes: after reconnecting it resumes and shows each missed
message exactly once."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
DESKTOP = {"width": 1280, "height": 900}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LIVE = "#mx-live.mx-live-on"


def _login(page: Any, server: str, username: str) -> None:
    page.goto(f"{server}/login?next=/messaging")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/messaging")
    page.wait_for_selector(LIVE)
    page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads


def _shot(page: Any, name: str) -> None:
    if os.environ.get("EQIAN_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"messaging-{name}.png"), full_page=True)


def _token(server: str, username: str) -> dict[str, str]:
    form = {"username": username, "password": DEMO_PASSWORD}
    token = httpx.post(f"{server}/api/v1/auth/token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_instruction_acknowledged_live_and_a_conversation_that_survives_a_cut(
    server: str, browser: Any
) -> None:
    officer_ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    unit_ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    officer, unit = officer_ctx.new_page(), unit_ctx.new_page()
    errors: list[str] = []
    for page in (officer, unit):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    _login(officer, server, "station_officer")
    _login(unit, server, "unit_security")
    # Unique texts: the demo data may hold instructions and requests of its own.
    tag = uuid.uuid4().hex[:6]
    title = f"做好居住证登记 {tag}"
    unit.locator("#mx-inbox .mx-inbox-item, #mx-inbox .mx-inbox-empty").first.wait_for()
    before = int(unit.locator(".mx-tab[data-pane=inbox] .mx-count").inner_text() or 0)

    # The officer sends an instruction to every unit of the station.
    officer.click(".mx-tab[data-pane=board]")
    form = officer.locator("#mx-instruction-form")
    form.locator("input[name=title]").fill(title)
    form.locator("textarea[name=body]").fill("请于本周五前完成新入职员工居住证登记，并回复登记人数。")
    station = form.locator("select[name=channel_id] option", has_text="全体单位").first
    form.locator("select[name=channel_id]").select_option(station.get_attribute("value"))
    form.locator("button[type=submit]").click()
    ratio = officer.locator("#mx-ack-ratio")
    officer.locator("#mx-ack-ratio, .mx-toast-error").first.wait_for(timeout=60_000)
    assert officer.locator(".mx-toast-error").all_inner_texts() == []
    total = int(ratio.get_attribute("data-total"))
    assert total > 10
    assert ratio.get_attribute("data-acked") == "0"
    expect(officer.locator("#mx-pending tbody tr")).to_have_count(total)

    # The unit sees it arrive live, and acknowledges with a reply.
    item = unit.locator(".mx-inbox-item", has_text=title)
    item.wait_for(timeout=20_000)
    expect(unit.locator(".mx-tab[data-pane=inbox] .mx-count")).to_have_text(str(before + 1))
    _shot(unit, "unit-inbox")
    item.locator(".mx-ack-text").fill("已登记 12 人")
    item.locator("button.mx-ack").click()
    item.locator(".mx-ack-done").wait_for()
    expect(unit.locator(".mx-tab[data-pane=inbox] .mx-count")).to_have_text(str(before or ""))

    # The officer's board moves by itself.
    officer.wait_for_function("document.querySelector('#mx-ack-ratio').dataset.acked === '1'", timeout=20_000)
    acked_row = officer.locator("#mx-acked tbody tr")
    acked_row.first.wait_for(timeout=20_000)
    assert "已登记 12 人" in acked_row.first.inner_text()
    expect(officer.locator("#mx-pending tbody tr")).to_have_count(total - 1)
    expect(officer.locator("#mx-instruction-list .mx-ratio").first).to_have_text(f"已确认 1/{total}")
    _shot(officer, "officer-board")
    receipts = httpx.get(
        f"{server}/api/v1/messaging/instructions/{_instruction_id(server)}/receipts",
        params={"status": "acknowledged"},
        headers=_token(server, "station_officer"),
    ).json()
    assert [r["ack_text"] for r in receipts["items"]] == ["已登记 12 人"]

    # A direct conversation: the unit writes, the officer answers, both live.
    unit.click(".mx-tab[data-pane=chat]")
    unit.locator("#mx-direct-form select[name=officer_id]").select_option(label=_officer_label(server))
    unit.click("#mx-direct-form button[type=submit]")
    unit.locator(".mx-channel.active .mx-kind-direct").wait_for()
    unit.fill("#mx-body", "警官您好，厂区东门监控坏了，能否帮忙联系维修？")
    unit.click("#mx-compose button[type=submit]")
    unit.locator(".mx-msg.mx-mine").wait_for()
    officer.click(".mx-tab[data-pane=chat]")
    direct = officer.locator(".mx-channel", has=officer.locator(".mx-kind-direct"))
    direct = direct.filter(has=officer.locator(".mx-unread")).first
    direct.wait_for(timeout=20_000)
    direct.click()
    officer.locator(".mx-msg:not(.mx-mine)", has_text="东门监控").wait_for()
    officer.locator(".mx-reply-btn").last.click()
    officer.fill("#mx-body", "收到，今天下午上门。")
    officer.click("#mx-compose button[type=submit]")
    unit.locator(".mx-msg:not(.mx-mine) .mx-quote").wait_for(timeout=20_000)

    # Cut the unit's connection; the officer writes twice; the unit resumes and shows each once.
    unit.evaluate("window.eqianMessaging.drop(60000)")
    unit.locator("#mx-live.mx-live-retry").wait_for()
    for text in ("第一条：维修师傅 14:00 到", "第二条：请安排人员陪同"):
        officer.fill("#mx-body", text)
        officer.click("#mx-compose button[type=submit]")
        officer.locator(".mx-msg.mx-mine", has_text=text).wait_for()
    assert unit.locator(".mx-msg", has_text="第一条").count() == 0  # still cut off
    unit.evaluate("window.eqianMessaging.reconnect()")
    unit.wait_for_selector(LIVE, timeout=15_000)
    for text in ("第一条", "第二条"):
        unit.locator(".mx-msg", has_text=text).wait_for(timeout=20_000)
    unit.wait_for_timeout(500)
    for text in ("第一条", "第二条"):
        assert unit.locator(".mx-msg", has_text=text).count() == 1
    seqs = unit.locator("#mx-messages .mx-msg").evaluate_all("ns => ns.map(n => Number(n.dataset.seq))")
    assert seqs == sorted(set(seqs))
    _shot(unit, "unit-chat")
    _shot(officer, "officer-chat")

    # An assistance request around the unit: it arrives live, the unit replies, the officer sees
    # the reply on the request's map page and closes it.
    where = _unit_location(server)
    officer.click(".mx-tab[data-pane=assist]")
    form = officer.locator("#mx-assist-form")
    form.locator("textarea[name=description]").fill(
        f"吾悦广场一楼走失男童，5岁，蓝色上衣，请协助查看监控（{tag}）"
    )
    form.locator("input[name=lat]").fill(str(where["lat"]))
    form.locator("input[name=lng]").fill(str(where["lng"]))
    form.locator("input[name=radius_m]").fill("500")
    officer.locator("#mx-assist-preview circle.mx-unit-in").first.wait_for()
    form.locator("button[type=submit]").click()
    officer.locator("#mx-assist-detail svg circle.mx-unit-in").first.wait_for(timeout=20_000)
    unit.click(".mx-tab[data-pane=assist]")
    request = unit.locator("#mx-assist-list .mx-item", has_text=tag)
    request.wait_for(timeout=20_000)
    request.click()
    unit.fill(".mx-assist-reply textarea", "我司监控显示男童往北门方向走去，已安排保安前往。")
    unit.click(".mx-assist-reply button[type=submit]")
    officer.locator("#mx-replies li[data-reply]", has_text="北门方向").wait_for(timeout=20_000)
    # On the map, the unit that replied stands out.
    officer.locator(f"#mx-assist-detail circle.mx-unit-replied[data-unit='{where['id']}']").wait_for()
    _shot(officer, "officer-assistance")
    officer.fill(".mx-assist-close input[name=outcome]", "男童已找到，交还家长")
    officer.click(".mx-assist-close button[type=submit]")
    officer.locator("#mx-assist-detail", has_text="男童已找到").wait_for()
    unit.locator("#mx-assist-detail", has_text="男童已找到").wait_for(timeout=20_000)
    assert unit.locator(".mx-assist-reply").count() == 0  # closed: no more replies
    _shot(unit, "unit-assistance")

    assert officer.evaluate("window.__sameDocument") is True
    assert unit.evaluate("window.__sameDocument") is True
    assert errors == []
    officer_ctx.close()
    unit_ctx.close()


def _instruction_id(server: str) -> int:
    listing = httpx.get(
        f"{server}/api/v1/messaging/instructions", headers=_token(server, "station_officer")
    ).json()
    return int(listing["items"][0]["id"])


def _unit_location(server: str) -> dict[str, Any]:
    headers = _token(server, "unit_security")
    unit_id = httpx.get(f"{server}/api/v1/auth/me", headers=headers).json()["unit_ids"][0]
    unit = httpx.get(f"{server}/api/v1/units/{unit_id}", headers=headers).json()
    return {"id": unit_id, "lat": unit["lat"], "lng": unit["lng"]}


def _officer_label(server: str) -> str:
    """The demo station officer's entry among the unit's officers (name · role)."""
    me = httpx.get(f"{server}/api/v1/auth/me", headers=_token(server, "station_officer")).json()
    return f"{me['display_name']} · {me['role_label']}"
