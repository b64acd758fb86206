"""In the browser: service-point staff register a dispute, the team's mediator records a session
and the agreement; a unit submits a request, the station officer resolves it, the unit rates it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _login(context: Any, server: str, username: str, target: str) -> Any:
    page = context.new_page()
    page.goto(f"{server}/login?next={target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}{target}")
    return page


def _mediated_and_successful(html: str) -> tuple[int, int]:
    found = re.search(r"调解 ([\d,]+) 起，成功 ([\d,]+) 起", html)
    assert found, "the statistics line is missing"
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


def _shot(page: Any, name: str) -> None:
    if os.environ.get("EQIAN_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def test_dispute_to_agreement_and_request_to_rating(server: str, browser: Any) -> None:
    staff = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = _login(staff, server, "service_point_staff", "/mediation/new")
    page.select_option("select[name=dispute_type]", "labor")
    page.fill("textarea[name=summary]", "5 名车工反映童装加工厂拖欠两个月工资共 3.6 万元")
    page.fill("input[name=amount_in_dispute]", "36000")
    page.fill("input[name=applicant_name]", "王建国")
    page.fill("input[name=applicant_phone]", "13905721234")
    page.fill("input[name=respondent_name]", "织里某童装加工厂")
    _shot(page, "mediation-new")
    page.click("form[action='/mediation/new'] button[type=submit]")
    page.wait_for_url(f"{server}/mediation/cases/*")
    case_url = page.url
    assert "139****1234" in page.content()
    staff.close()

    mediator = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    mpage = _login(mediator, server, "mediator", "/mediation")
    assert case_url.removeprefix(server) in mpage.content()
    mpage.goto(f"{server}/mediation?tab=closed")
    before = _mediated_and_successful(mpage.content())  # the demo district has its own history
    mpage.goto(case_url)
    mpage.fill("input[name=place]", "大港路自治服务点")
    mpage.fill("textarea[name=note]", "召集双方到场，老板承认欠薪，同意分期支付")
    mpage.click("form[action$='/sessions'] button[type=submit]")
    mpage.wait_for_url(case_url)
    mpage.check("input[name=outcome][value=agreement]")
    mpage.fill("textarea[name=agreement_text]", "厂方于本月 25 日前付清 3.6 万元工资")
    mpage.fill("input[name=agreement_amount]", "36000")
    mpage.fill("input[name=amount_recovered]", "36000")
    mpage.fill("input[name=payment_schedule]", "一次性付清")
    _shot(mpage, "mediation-case")
    mpage.click("button.md-close")
    mpage.wait_for_url(case_url)
    content = mpage.content()
    assert "厂方于本月 25 日前付清 3.6 万元工资" in content
    assert "调解成功" in content
    mpage.goto(f"{server}/mediation?tab=closed")
    assert _mediated_and_successful(mpage.content()) == (before[0] + 1, before[1] + 1)
    _shot(mpage, "mediation-list")
    mediator.close()

    unit = browser.new_context(viewport=PHONE, locale="zh-CN")
    upage = _login(unit, server, "unit_security", "/requests")
    assert upage.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    upage.select_option("select[name=kind]", "fraud_training")
    upage.fill("input[name=title]", "申请反诈宣传培训")
    upage.fill("textarea[name=body]", "本月新进员工 60 人，希望安排一次电信网络诈骗防范讲座")
    _shot(upage, "requests-unit-form")
    upage.click("form[action='/requests'] button[type=submit]")
    upage.wait_for_url(f"{server}/requests/*")
    request_url = upage.url

    officer = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    opage = _login(officer, server, "station_officer", "/requests")
    assert request_url.removeprefix(server) in opage.content()
    _shot(opage, "requests-queue")
    opage.goto(request_url)
    opage.fill("textarea[name=text]", "已安排社区民警 3 月 12 日下午上门授课")
    opage.click("form[action$='/reply'] button[type=submit]")
    opage.wait_for_url(request_url)
    opage.fill("textarea[name=resolution]", "讲座已开展，62 人参加")
    opage.click("form[action$='/resolve'] button[type=submit]")
    opage.wait_for_url(request_url)
    officer.close()

    upage.goto(request_url)
    upage.check("input[name=rating][value='5']")
    upage.fill("input[name=comment]", "很及时")
    upage.click("form[action$='/rate'] button[type=submit]")
    upage.wait_for_url(request_url)
    assert "★★★★★" in upage.content()
    _shot(upage, "requests-detail")
    unit.close()
