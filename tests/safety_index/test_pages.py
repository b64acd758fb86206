"""The /safety-index page: a unit's security head sees their own unit (score, ranks, deductions
linked to the records, advice, anonymised peers); an officer sees the station list with filters."""

from __future__ import annotations

import json
import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact
from eqian.core.permissions import SYSTEM
from eqian.safety_index import service
from tests.factories import sign_in
from tests.safety_index import fake_facts
from tests.safety_index.helpers import world_with_b1_security

HTML = {"Accept": "text/html"}


async def test_unit_view_and_station_list(browser: httpx.AsyncClient, db: AsyncSession) -> None:
    fake_facts.FACTS.clear()
    w = await world_with_b1_security(db)
    a1, b1 = w.units["a1"], w.units["b1"]
    users = {u: w.users[u] for u in ("unit_security", "station_officer", "unit_security_b1")}
    fake_facts.FACTS["2026-03"] = [
        Fact(w.station_a, a1, "hazards.overdue_open", 3),
        Fact(w.station_a, a1, "hazards.self_inspections", 1),
    ]
    for month in ("2026-02", "2026-03"):
        await service.compute_month(db, SYSTEM, month, names=(fake_facts.NAME,))

    await sign_in(db, browser, users["unit_security"])
    r = await browser.get("/safety-index")
    assert r.status_code == 200
    page = r.text
    assert "织里贝贝童装有限公司" in page
    assert re.search(r'data-testid="si-score">89\.0<', page)  # 100 − 12 + 1
    assert "si-grade-good" in page
    assert "↓ 11.0" in page
    assert f'href="/hazards?unit_id={a1}&amp;month=2026-03"' in page
    assert "整改建议" in page
    assert "逾期隐患" in page
    data = json.loads(
        re.search(r'<script type="application/json" id="si-data">(.*?)</script>', page, re.S)[1]
    )
    assert [h["score"] for h in data["history"]] == [100.0, 89.0]
    assert data["peers"] == [89.0]  # a1 is the only garment unit of station A: no other names anywhere
    assert "织南安安童装厂" not in page
    # Another unit's page is out of this user's scope: 404, nothing shown.
    assert (await browser.get(f"/safety-index?unit_id={b1}")).status_code == 404
    r = await browser.get("/safety-index?month=2026-02")
    assert re.search(r'data-testid="si-score">100\.0<', r.text)

    await sign_in(db, browser, users["station_officer"])
    r = await browser.get("/safety-index?month=2026-03")
    assert r.status_code == 200
    assert "织里贝贝童装有限公司" in r.text
    assert "吾悦广场" in r.text
    assert "织南安安童装厂" not in r.text
    r = await browser.get("/safety-index?month=2026-03&grade=good")
    assert "织里贝贝童装有限公司" in r.text
    assert "吾悦广场" not in r.text
    r = await browser.get(f"/safety-index?unit_id={a1}")
    assert r.status_code == 200
    assert "返回列表" in r.text
    assert (await browser.get("/safety-index?month=2026-3")).status_code == 422
