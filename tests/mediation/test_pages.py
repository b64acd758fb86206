"""The pages, posted as a browser would (session cookie, CSRF): the mediator's case list with
team statistics, the case page with a session and the outcome; a unit's request form and history,
the officer's queue, reply and resolve, and the unit's rating."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.audit import AuditLog
from eqian.mediation.models import MediationCase, MediationParty
from eqian.requests.models import EnterpriseRequest
from tests.factories import sign_in
from tests.mediation.helpers import add_case, make_med_world

HTML = {"Accept": "text/html"}


async def test_mediator_pages(browser: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    w = mw.world
    at = dt.datetime(2026, 3, 2, 2, tzinfo=dt.UTC)
    mine = await add_case(
        db, station_id=w.station_a, team_id=mw.teams["dajie"], unit_id=w.units["a1"], opened_at=at
    )
    theirs = await add_case(db, station_id=w.station_b, team_id=mw.teams["veterans"], opened_at=at)
    await add_case(
        db,
        station_id=w.station_a,
        team_id=mw.teams["dajie"],
        opened_at=at,
        closed_at=at,
        outcome="agreement",
        recovered_fen=120000,
    )
    csrf = await sign_in(db, browser, w.users["mediator"])
    page = await browser.get("/mediation")
    assert page.status_code == 200
    assert f'href="/mediation/cases/{mine}"' in page.text
    assert f'href="/mediation/cases/{theirs}"' not in page.text
    assert "调解 1 起，成功 1 起" in page.text
    assert "100.0%" in page.text
    assert "1,200.00" in page.text
    assert (await browser.get(f"/mediation/cases/{theirs}")).status_code == 404

    case_page = await browser.get(f"/mediation/cases/{mine}")
    assert case_page.status_code == 200
    assert "138****5678" in case_page.text
    assert "13812345678" not in case_page.text
    assert f'action="/mediation/cases/{mine}/outcome"' in case_page.text
    assert f'action="/mediation/cases/{mine}/assign"' not in case_page.text  # the station reassigns
    # The full phone, only through the audited reveal.
    party = await db.scalar(select(MediationParty).where(MediationParty.case_id == mine))
    assert party is not None
    shown = await browser.post(
        f"/mediation/cases/{mine}/parties/{party.id}/reveal", data={"csrf_token": csrf}
    )
    assert shown.status_code == 200
    assert "13812345678" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    audit_row = await db.scalar(select(AuditLog).where(AuditLog.action == "personal_data.reveal"))
    assert audit_row is not None
    assert audit_row.entity_id == str(party.id)
    # The statistics for a period: nothing concluded in February.
    feb = await browser.get("/mediation", params={"from": "2026-02-01", "to": "2026-02-28"})
    assert "调解 0 起，成功 0 起" in feb.text
    # Without CSRF: refused.
    refused = await browser.post(f"/mediation/cases/{mine}/sessions", data={"note": "x"})
    assert refused.status_code == 403
    resp = await browser.post(
        f"/mediation/cases/{mine}/sessions", data={"note": "双方到场", "place": "服务点", "csrf_token": csrf}
    )
    assert resp.status_code == 303
    # A settlement without its text is refused with the reason on the page.
    resp = await browser.post(
        f"/mediation/cases/{mine}/outcome", data={"outcome": "agreement", "csrf_token": csrf}
    )
    assert resp.status_code == 422
    assert "调解成功须填写协议内容" in resp.text
    resp = await browser.post(
        f"/mediation/cases/{mine}/outcome",
        data={
            "outcome": "agreement",
            "agreement_text": "一次性支付工资 8000 元",
            "agreement_amount": "8,000",
            "amount_recovered": "8000",
            "payment_schedule": "当场支付",
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 303, resp.text
    row = await db.get(MediationCase, mine)
    assert row is not None
    await db.refresh(row)
    assert (row.status, row.outcome, row.amount_recovered_fen) == ("closed", "agreement", 800000)
    done = await browser.get(f"/mediation/cases/{mine}")
    assert "一次性支付工资 8000 元" in done.text
    assert "双方到场" in done.text
    assert f'action="/mediation/cases/{mine}/outcome"' not in done.text

    # Service-point staff register a dispute through the form.
    csrf = await sign_in(db, browser, w.users["service_point_staff"])
    form = await browser.get("/mediation/new")
    assert form.status_code == 200
    resp = await browser.post(
        "/mediation/new",
        data={
            "dispute_type": "neighbor",
            "summary": "楼上漏水",
            "applicant_name": "陈六",
            "applicant_phone": "1390000",  # not a mobile number
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 422
    assert "陈六" in resp.text  # the form keeps what was typed
    resp = await browser.post(
        "/mediation/new",
        data={
            "dispute_type": "neighbor",
            "summary": "楼上漏水",
            "applicant_name": "陈六",
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 303
    new = await db.scalar(select(MediationCase).where(MediationCase.summary == "楼上漏水"))
    assert new is not None
    assert (new.source, new.service_point_id, new.team_id) == ("service_point", w.sp_a, mw.teams["dajie"])

    # English interface.
    browser.cookies.set("eqian_lang", "en")
    english = await browser.get("/mediation")
    assert "Mediation team" in english.text


async def test_request_pages(browser: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    w = mw.world
    csrf = await sign_in(db, browser, w.users["unit_security"])
    home = await browser.get("/requests")
    assert home.status_code == 200
    assert 'action="/requests"' in home.text
    assert 'name="kind"' in home.text
    resp = await browser.post(
        "/requests", data={"kind": "traffic", "title": "", "body": "x", "csrf_token": csrf}
    )
    assert resp.status_code == 422
    resp = await browser.post(
        "/requests",
        data={
            "kind": "traffic",
            "title": "上下班高峰厂门口拥堵",
            "body": "请在 7:30-8:30 安排疏导",
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 303
    req = await db.scalar(select(EnterpriseRequest))
    assert req is not None
    assert req.unit_id == w.units["a1"]
    history = await browser.get("/requests")
    assert "上下班高峰厂门口拥堵" in history.text

    # The officer's queue, reply and resolution.
    csrf = await sign_in(db, browser, w.users["station_officer"])
    queue = await browser.get("/requests")
    assert f'href="/requests/{req.id}"' in queue.text
    assert 'action="/requests"' not in queue.text
    assert (
        await browser.post(f"/requests/{req.id}/reply", data={"text": "已安排", "csrf_token": csrf})
    ).status_code == 303
    assert (
        await browser.post(
            f"/requests/{req.id}/resolve", data={"resolution": "已派驻交警", "csrf_token": csrf}
        )
    ).status_code == 303
    resolved = await browser.get("/requests?tab=resolved")
    assert f'href="/requests/{req.id}"' in resolved.text

    # Station B's officer cannot see it.
    await sign_in(db, browser, w.users["station_officer_b"])
    assert (await browser.get(f"/requests/{req.id}")).status_code == 404

    # The unit rates it once.
    csrf = await sign_in(db, browser, w.users["unit_security"])
    page = await browser.get(f"/requests/{req.id}")
    assert f'action="/requests/{req.id}/rate"' in page.text
    assert (
        await browser.post(f"/requests/{req.id}/rate", data={"rating": "4", "csrf_token": csrf})
    ).status_code == 303
    page = await browser.get(f"/requests/{req.id}")
    assert "★★★★☆" in page.text
    assert f'action="/requests/{req.id}/rate"' not in page.text
    again = await browser.post(f"/requests/{req.id}/rate", data={"rating": "1", "csrf_token": csrf})
    assert again.status_code == 422
    assert "该诉求已评价" in again.text
    await db.refresh(req)
    assert req.rating == 4


async def test_liaison_registers_a_dispute_for_one_of_its_units(
    browser: httpx.AsyncClient, db: AsyncSession
) -> None:
    mw = await make_med_world(db)
    w = mw.world
    csrf = await sign_in(db, browser, w.users["liaison_officer"])
    form = await browser.get("/mediation/new")
    assert f'<option value="{w.units["a1"]}"' in form.text
    assert f'<option value="{w.units["b1"]}"' not in form.text
    resp = await browser.post(
        "/mediation/new",
        data={
            "dispute_type": "labor",
            "unit_id": str(w.units["a1"]),
            "summary": "欠薪",
            "applicant_name": "刘七",
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 303
    page = await browser.get(resp.headers["location"])
    assert page.status_code == 200
    assert "欠薪" in page.text
