"""Each user reads and marks only their own notifications."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.notifications import service
from tests.factories import bearer, make_world


async def test_inbox_is_per_user_and_marking_read_is_scoped(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await make_world(db)
    officer, other = world.users["station_officer"], world.users["station_officer_b"]
    await service.notify(db, user_ids=[officer.id, officer.id], event_id=None, kind="k", title="春季安全检查")
    await db.commit()
    h = await bearer(db, officer)
    r = await client.get("/api/v1/notifications", params={"unread": True}, headers=h)
    assert r.json()["total"] == 1
    note_id = r.json()["items"][0]["id"]
    h_other = await bearer(db, other)
    assert (await client.get("/api/v1/notifications", headers=h_other)).json() == {"items": [], "total": 0}
    assert (await client.post(f"/api/v1/notifications/{note_id}/read", headers=h_other)).status_code == 404
    r = await client.post(f"/api/v1/notifications/{note_id}/read", headers=h)
    assert r.status_code == 200
    assert r.json()["read_at"] is not None
    assert (await client.get("/api/v1/notifications", params={"unread": True}, headers=h)).json()[
        "total"
    ] == 0
