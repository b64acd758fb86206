"""The activity calendar and an activity's page, as a browser uses them."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.activities import pages
from eqian.activities.models import ActivityInvitation
from eqian.core.audit import AuditLog
from tests.activities import add_activity, invite, local, make_activity_world
from tests.factories import sign_in

HTML = {"Accept": "text/html"}


def test_month_grid_is_whole_weeks_from_monday() -> None:
    # February 2026 starts on a Sunday: the grid opens on Monday 26 January and closes on Sunday 1 March.
    weeks = pages.month_grid(dt.date(2026, 2, 1), today=dt.date(2026, 2, 11))
    assert weeks[0][0].date == dt.date(2026, 1, 26)
    assert weeks[-1][-1].date == dt.date(2026, 3, 1)
    assert len(weeks) == 5
    assert all(len(w) == 7 and w[0].date.weekday() == 0 for w in weeks)
    assert [d.in_month for d in weeks[0]] == [False] * 6 + [True]
    assert [d.date for w in weeks for d in w if d.today] == [dt.date(2026, 2, 11)]
    # a month starting on Monday needs no leading days
    assert pages.month_grid(dt.date(2026, 6, 1), today=dt.date(2026, 1, 1))[0][0].date == dt.date(2026, 6, 1)
    assert pages.shift_month(dt.date(2026, 1, 1), -1) == dt.date(2025, 12, 1)
    assert pages.shift_month(dt.date(2026, 12, 1), 1) == dt.date(2027, 1, 1)


async def test_calendar_page_shows_the_month_with_chips_and_a_phone_list(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    await sign_in(db, client, aw.world.users["station_officer"])
    r = await client.get("/activities", params={"month": "2026-02"}, headers=HTML)
    assert r.status_code == 200, r.text
    page = r.text
    dates = re.findall(r'data-date="([0-9-]+)"', page)
    assert dates[0] == "2026-01-26"
    assert dates[-1] == "2026-03-01"
    assert len(dates) == 35
    headers = re.findall(r'<th scope="col">(.*?)</th>', page)
    assert headers == ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    assert ">2026年2月<" in page
    assert 'href="/activities?month=2026-01"' in page
    assert 'href="/activities?month=2026-03"' in page
    # station A's three activities and the bureau-wide one, not station B's roundtable
    for label in ("a_round", "a_meet", "a_patrol", "bureau"):
        assert page.count(f'href="/activities/{aw.activities[label]}"') == 2, label  # chip and list item
    assert f'href="/activities/{aw.activities["b_round"]}"' not in page
    cell = page.split('data-date="2026-02-11"')[1].split("</td>")[0]
    assert "kind-roundtable" in cell
    assert "14:00" in cell
    # the phone layout: the grid hides and the list shows below 640 px
    assert '<link rel="stylesheet" href="/static/css/activities.css">' in page
    css = (await client.get("/static/css/activities.css")).text
    assert "@media (max-width: 640px)" in css
    assert '<ul class="cal-list"' in page


async def test_calendar_refuses_a_bad_month(client: httpx.AsyncClient, db: AsyncSession) -> None:
    aw = await make_activity_world(db)
    await sign_in(db, client, aw.world.users["bureau_admin"])
    for bad in ("2026-13", "2026-2", "２０２６-01"):
        r = await client.get("/activities", params={"month": bad}, headers=HTML)
        assert r.status_code == 422, bad


async def test_an_officer_records_attendance_through_the_page(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    aw = await make_activity_world(db)
    csrf = await sign_in(db, client, aw.world.users["station_officer"])
    act, inv = aw.activities["a_round"], aw.invitations[("a_round", "a1")]
    r = await client.get(f"/activities/{act}", headers=HTML)
    assert r.status_code == 200
    assert f'action="/activities/{act}/invitations/{inv}/attendance"' in r.text
    assert f'name="csrf_token" value="{csrf}"' in r.text
    url = f"/activities/{act}/invitations/{inv}/attendance"
    form = {"attended": "yes", "attendee_count": "2", "attendee_names": "张三、李四"}
    r = await client.post(url, data=form)
    assert r.status_code == 403  # no CSRF token
    assert (await db.scalar(select(ActivityInvitation.attended).where(ActivityInvitation.id == inv))) is None
    r = await client.post(url, data=form | {"csrf_token": csrf})
    assert r.status_code == 303
    r = await client.get(f"/activities/{act}", headers=HTML)
    assert "出席 · 2 人（张三、李四）" in r.text
    assert await db.scalar(select(AuditLog.actor_name).where(AuditLog.action == "activity.attendance")) == (
        "station_officer"
    )
    r = await client.post(url, data=form | {"csrf_token": csrf, "attendee_count": "两"})
    assert r.status_code == 422
    r = await client.post(
        f"/activities/{act}/minutes", data={"minutes": "讨论了消防通道问题", "csrf_token": csrf}
    )
    assert r.status_code == 303
    r = await client.post(
        f"/activities/{act}/issues",
        data={"text": "夜间停车难", "unit_id": str(aw.unit("a1")), "csrf_token": csrf},
    )
    assert r.status_code == 303
    page = (await client.get(f"/activities/{act}", headers=HTML)).text
    assert "讨论了消防通道问题" in page
    assert "夜间停车难" in page


async def test_a_unit_answers_its_invitation_on_the_page(client: httpx.AsyncClient, db: AsyncSession) -> None:
    aw = await make_activity_world(db)
    future = await add_activity(
        db, station_id=aw.world.station_a, kind="antifraud_training", starts_at=local(2030, 3, 1, 9)
    )
    inv = await invite(db, future, aw.unit("a1"))
    await db.commit()
    csrf = await sign_in(db, client, aw.world.users["unit_security"])
    page = (await client.get(f"/activities/{future}", headers=HTML)).text
    assert 'value="accepted"' in page
    assert "/attendance" not in page  # a unit does not record attendance
    r = await client.post(
        f"/activities/{future}/invitations/{inv}/response", data={"response": "declined", "csrf_token": csrf}
    )
    assert r.status_code == 303
    assert (
        await db.scalar(select(ActivityInvitation.response).where(ActivityInvitation.id == inv)) == "declined"
    )
    r = await client.post(
        f"/activities/{future}/invitations/{inv}/response", data={"response": "maybe", "csrf_token": csrf}
    )
    assert r.status_code == 422


@pytest.mark.parametrize("who", ["mediator", "partner_officer", "station_officer_b"])
async def test_an_activity_page_out_of_scope_is_not_found(
    client: httpx.AsyncClient, db: AsyncSession, who: str
) -> None:
    aw = await make_activity_world(db)
    await sign_in(db, client, aw.world.users[who])
    r = await client.get(f"/activities/{aw.activities['a_round']}", headers=HTML)
    assert r.status_code == 404
    assert "织里贝贝" not in r.text
