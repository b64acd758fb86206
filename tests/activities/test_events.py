"""Invited units hear of their invitation and of a cancellation, through the outbox."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.activities import events
from eqian.core import outbox
from eqian.notifications.models import Notification
from tests.activities import API, make_activity_world


async def test_invitation_and_cancellation_notify_the_unit(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    events.register()
    aw = await make_activity_world(db)
    h = aw.headers["station_officer"]
    # after the fixture's garment roundtable come property (a3), market (a2), then garment (a1)
    body = {"station_id": aw.world.station_a, "weeks": 3, "start": "2030-01-07"}
    r = await client.post(f"{API}/roundtables/schedule", json=body, headers=h)
    garment = r.json()["created"][2]["id"]
    r = await client.post(
        f"{API}/{aw.activities['a_meet']}/invitations", json={"unit_ids": [aw.unit("a1")]}, headers=h
    )
    assert r.status_code == 200
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    r = await client.patch(f"{API}/{aw.activities['a_meet']}", json={"status": "cancelled"}, headers=h)
    assert r.status_code == 200
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    me = aw.world.users["unit_security"].id
    rows = (
        await db.execute(select(Notification.kind, Notification.link).where(Notification.user_id == me))
    ).all()
    meet = f"/activities/{aw.activities['a_meet']}"
    assert sorted(rows) == sorted(
        [
            ("activities.invited", f"/activities/{garment}"),
            ("activities.invited", meet),
            ("activities.cancelled", meet),
        ]
    )
    # the other units' security heads were told nothing: make_world has one, for a1
    assert {uid for (uid,) in (await db.execute(select(Notification.user_id))).all()} == {me}
