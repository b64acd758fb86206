"""The pages: the officer's queue triages in one step, the unit's queue moves its matters, the
detail page shows the timeline and only the actions the role may take."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.incidents.models import Incident
from tests.incidents.helpers import make_inc_world

WAGES = "织里贝贝童装的工人报警称老板拖欠工资三个月不发"


async def test_queue_triage_and_unit_queue_pages(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    officer, unit_head = iw.headers["station_officer"], iw.headers["unit_security"]
    r = await client.post(
        "/incidents/new", data={"description": WAGES, "caller_phone": "13912345678"}, headers=officer
    )
    assert r.status_code == 303, r.text
    incident_id = int(r.headers["location"].rsplit("/", 1)[1])
    bad = await client.post("/incidents/new", data={"description": "x"}, headers=officer)
    assert bad.status_code == 422
    assert "报警内容" in bad.text

    page = await client.get("/incidents", headers=officer)
    assert page.status_code == 200
    assert f'id="incident-{incident_id}"' in page.text
    assert "织里贝贝童装有限公司" in page.text
    assert "确认分流" in page.text
    assert "139****5678" not in page.text  # the queue shows no phone at all

    # One step from the queue: change the route, come back to the queue.
    r = await client.post(
        f"/incidents/{incident_id}/triage",
        data={"category": "labor", "police": "no", "route": "self_governance", "back": "queue"},
        headers=officer,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/incidents?tab=queue"
    incident = await db.scalar(select(Incident).where(Incident.id == incident_id))
    assert incident is not None
    assert incident.status == "assigned"

    mine = await client.get("/incidents", headers=unit_head)
    assert "本单位移交事项" in mine.text
    assert f"/incidents/{incident_id}" in mine.text
    detail = await client.get(f"/incidents/{incident_id}", headers=unit_head)
    assert 'value="start"' in detail.text
    assert "查看完整号码" not in detail.text
    assert "139****5678" in detail.text
    r = await client.post(f"/incidents/{incident_id}/transition", data={"action": "start"}, headers=unit_head)
    assert r.status_code == 303
    detail = await client.get(f"/incidents/{incident_id}", headers=unit_head)
    assert 'value="resolve"' in detail.text
    assert 'value="close"' not in detail.text
    assert "开始处置" in detail.text  # on the timeline

    officer_view = await client.get(f"/incidents/{incident_id}", headers=officer)
    assert "查看完整号码" in officer_view.text
    revealed = await client.post(f"/incidents/{incident_id}/reveal-phone", headers=officer)
    assert "13912345678" in revealed.text
    other = await client.get(f"/incidents/{incident_id}", headers=iw.headers["station_officer_b"])
    assert other.status_code == 404
    assert WAGES not in other.text
