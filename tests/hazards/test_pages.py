"""The pages: the phone inspection form (posted as a browser would, with CSRF and a photo), the
board's tabs, a hazard's page with the unit's evidence form and the officer's review."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.hazards.models import Hazard, Inspection
from tests.factories import sign_in
from tests.hazards.helpers import make_hz_world

HTML = {"Accept": "text/html"}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


async def test_phone_form_records_an_inspection(browser: httpx.AsyncClient, db: AsyncSession) -> None:
    hz = await make_hz_world(db)
    a1 = hz.world.units["a1"]
    csrf = await sign_in(db, browser, hz.world.users["liaison_officer"])
    page = await browser.get(f"/hazards/inspect/{a1}")
    assert page.status_code == 200
    html = page.text
    # Phone-ready: the viewport meta, the form's stylesheet, big radio toggles per item, a camera input.
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "/static/css/hazards.css" in html
    assert 'enctype="multipart/form-data"' in html
    assert f'<input type="hidden" name="csrf_token" value="{csrf}">' in html
    items = hz.items["garment"]
    for item in items:
        assert item.text.replace("“", "&#8220;") in html or item.text in html
        for outcome in ("pass", "fail", "na"):
            assert f'name="result_{item.id}" value="{outcome}"' in html
        assert f'name="photo_{item.id}" accept="image/jpeg,image/png" capture="environment"' in html

    form = {f"result_{i.id}": "pass" for i in items}
    form[f"result_{items[2].id}"] = "fail"
    form[f"note_{items[2].id}"] = "三楼住人"
    # Without CSRF: refused, nothing written.
    refused = await browser.post(
        f"/hazards/inspect/{a1}", data=form, files={"photo_x": ("a.jpg", JPEG, "image/jpeg")}
    )
    assert refused.status_code == 403
    # A missing answer re-renders the form with the choices kept.
    partial = {k: v for k, v in form.items() if k != f"result_{items[0].id}"}
    resp = await browser.post(f"/hazards/inspect/{a1}", data={**partial, "csrf_token": csrf})
    assert resp.status_code == 422
    assert 'role="alert"' in resp.text
    assert f'name="result_{items[1].id}" value="pass" required checked' in resp.text
    assert await db.scalar(select(func.count()).select_from(Inspection)) == 0

    resp = await browser.post(
        f"/hazards/inspect/{a1}",
        data={**form, "csrf_token": csrf},
        files={f"photo_{items[2].id}": ("p.jpg", JPEG, "image/jpeg")},
    )
    assert resp.status_code == 303, resp.text
    inspection_url = resp.headers["location"]
    detail = await browser.get(inspection_url)
    assert detail.status_code == 200
    assert "三楼住人" in detail.text
    hazard = await db.scalar(select(Hazard))
    assert hazard is not None
    assert hazard.unit_id == a1

    # The board lists it under "open"; the hazard page shows the timeline, no evidence form for an officer.
    board = await browser.get("/hazards")
    assert board.status_code == 200
    assert f'href="/hazards/{hazard.id}"' in board.text
    for tab in ("open", "fix_submitted", "overdue", "verified"):
        assert f"/hazards?tab={tab}" in board.text
    assert (await browser.get("/hazards?tab=verified")).text.count(f'href="/hazards/{hazard.id}"') == 0
    hp = await browser.get(f"/hazards/{hazard.id}")
    assert hp.status_code == 200
    assert "发现隐患" in hp.text
    assert f"/hazards/{hazard.id}/evidence" not in hp.text

    # The unit submits its fix through the page; the liaison verifies it through the page.
    unit_browser = browser
    csrf_u = await sign_in(db, unit_browser, hz.world.users["unit_security"])
    hp = await unit_browser.get(f"/hazards/{hazard.id}")
    assert f'action="/hazards/{hazard.id}/evidence"' in hp.text
    resp = await unit_browser.post(
        f"/hazards/{hazard.id}/evidence",
        data={"note": "已搬出", "csrf_token": csrf_u},
        files={"photo": ("f.jpg", JPEG, "image/jpeg")},
    )
    assert resp.status_code == 303
    csrf = await sign_in(db, browser, hz.world.users["liaison_officer"])
    resp = await browser.post(f"/hazards/{hazard.id}/review", data={"decision": "verify", "csrf_token": csrf})
    assert resp.status_code == 303
    hp = await browser.get(f"/hazards/{hazard.id}")
    assert re.search(r"验收通过", hp.text)
    assert "提交整改" in hp.text
    await db.refresh(hazard)
    assert hazard.status == "verified"
