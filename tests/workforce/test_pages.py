"""Workforce pages: picker, unit page with masked identifiers, hire / departure / residence / upload
forms with CSRF, and 404 for another unit's page."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.workforce.models import Employment, Residence
from tests.factories import bearer, make_world, sign_in
from tests.workforce.helpers import TODAY, assert_no_pii, hire, hire_body, mobile, rid
from tests.workforce.test_transfer import good_row, xlsx


async def test_picker_and_unit_page(
    db: AsyncSession, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    w = await make_world(db)
    admin = await bearer(db, w.users["bureau_admin"])
    for n, label in enumerate(("a1", "a2", "b1")):
        await hire(client, admin, hire_body(w.units[label], n))
    await sign_in(db, browser, w.users["station_officer"])
    page = await browser.get("/workforce")
    assert page.status_code == 200
    assert f"/workforce/units/{w.units['a1']}" in page.text
    assert f"/workforce/units/{w.units['b1']}" not in page.text
    unit = await browser.get(f"/workforce/units/{w.units['a1']}")
    assert unit.status_code == 200
    assert "员工0" in unit.text
    assert rid(0)[:6] + "********" + rid(0)[-4:] in unit.text
    assert_no_pii(unit.text)
    assert (await browser.get(f"/workforce/units/{w.units['b1']}")).status_code == 404
    assert "/static/css/workforce.css" in unit.text
    css = await browser.get("/static/css/workforce.css")
    assert css.headers["content-type"].startswith("text/css")


async def test_unit_security_is_sent_to_its_unit(db: AsyncSession, browser: httpx.AsyncClient) -> None:
    w = await make_world(db)
    await sign_in(db, browser, w.users["unit_security"])
    resp = await browser.get("/workforce")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/workforce/units/{w.units['a1']}"
    assert (await browser.get(f"/workforce/units/{w.units['a2']}")).status_code == 404
    assert (await browser.get("/workforce/units/99999999999")).status_code == 422


async def test_forms_hire_depart_register_with_csrf(db: AsyncSession, browser: httpx.AsyncClient) -> None:
    w = await make_world(db)
    csrf = await sign_in(db, browser, w.users["unit_security"])
    url = f"/workforce/units/{w.units['a1']}"
    form = {
        "name": "李四",
        "id_number": rid(8),
        "phone": mobile(8),
        "hired_on": TODAY.isoformat(),
        "csrf_token": csrf,
    }
    no_csrf = await browser.post(f"{url}/hires", data={k: v for k, v in form.items() if k != "csrf_token"})
    assert no_csrf.status_code == 403
    bad = await browser.post(f"{url}/hires", data={**form, "id_number": "123"})
    assert bad.status_code == 422
    assert "身份证号码应为18位" in bad.text
    ok = await browser.post(f"{url}/hires", data=form)
    assert ok.status_code == 303, ok.text
    emp = await db.scalar(select(Employment))
    assert emp is not None
    page = await browser.get(f"{url}?saved=hired")
    assert "已登记入职" in page.text
    assert_no_pii(page.text)
    reg = await browser.post(
        f"{url}/persons/{emp.person_id}/residence",
        data={"status": "registered", "registered_on": TODAY.isoformat(), "csrf_token": csrf},
    )
    assert reg.status_code == 303, reg.text
    res = await db.get(Residence, emp.person_id)
    assert res is not None
    assert res.status == "registered"
    left = await browser.post(
        f"{url}/workers/{emp.id}/departure", data={"left_on": TODAY.isoformat(), "csrf_token": csrf}
    )
    assert left.status_code == 303
    await db.refresh(emp)
    assert emp.left_on == TODAY


async def test_upload_shows_the_row_report(db: AsyncSession, browser: httpx.AsyncClient) -> None:
    w = await make_world(db)
    csrf = await sign_in(db, browser, w.users["unit_security"])
    url = f"/workforce/units/{w.units['a1']}/import"
    rows = [good_row(1), [*good_row(2)[:2], "123", *good_row(2)[3:]]]
    bad = await browser.post(url, data={"csrf_token": csrf}, files={"file": ("hr.xlsx", xlsx(rows))})
    assert bad.status_code == 422
    assert 'id="import-report"' in bad.text
    assert '<td class="num">4</td>' in bad.text
    assert_no_pii(bad.text)
    assert await db.scalar(select(func.count()).select_from(Employment)) == 0
    good = await browser.post(
        url, data={"csrf_token": csrf}, files={"file": ("hr.xlsx", xlsx([good_row(1)]))}
    )
    assert good.status_code == 303
    assert await db.scalar(select(func.count()).select_from(Employment)) == 1
    other = await browser.post(
        f"/workforce/units/{w.units['b1']}/import",
        data={"csrf_token": csrf},
        files={"file": ("hr.xlsx", xlsx([good_row(3)]))},
    )
    assert other.status_code == 404


async def test_form_errors_are_shown_on_the_page(
    db: AsyncSession, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    w = await make_world(db)
    admin = await bearer(db, w.users["bureau_admin"])
    other = await hire(client, admin, hire_body(w.units["b1"], 9))
    csrf = await sign_in(db, browser, w.users["unit_security"])
    url = f"/workforce/units/{w.units['a1']}"
    form = {
        "name": "王九",
        "id_number": rid(9),
        "phone": mobile(9),
        "hired_on": TODAY.isoformat(),
        "csrf_token": csrf,
    }
    taken = await browser.post(f"{url}/hires", data=form)
    assert taken.status_code == 409
    assert "仍在其他单位在职" in taken.text
    assert "织南安安童装厂" not in taken.text  # the other unit is never named
    mine = await hire(client, admin, hire_body(w.units["a1"], 10))
    res = await browser.post(
        f"{url}/persons/{mine['person_id']}/residence", data={"status": "registered", "csrf_token": csrf}
    )
    assert res.status_code == 422
    assert "请填写居住登记日期" in res.text
    bogus = await browser.post(
        f"{url}/persons/{mine['person_id']}/residence", data={"status": "bogus", "csrf_token": csrf}
    )
    assert bogus.status_code == 422
    late = await browser.post(
        f"{url}/workers/{mine['id']}/departure", data={"left_on": "not-a-date", "csrf_token": csrf}
    )
    assert late.status_code == 422
    foreign = await browser.post(
        f"{url}/workers/{other['id']}/departure", data={"left_on": TODAY.isoformat(), "csrf_token": csrf}
    )
    assert foreign.status_code == 404
    empty = await browser.post(f"{url}/import", data={"csrf_token": csrf})
    assert empty.status_code == 422
