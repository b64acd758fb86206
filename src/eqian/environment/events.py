"""Outbox handlers of eco-policing: a new alert is told to the station, the bureau and, for a
joint zone, the partner agency's officers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.environment.models import EnvAlert
from eqian.notifications import service as notifications

ALERT_TOPIC = "environment.alert"


async def on_alert(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    payload = event.payload
    alert = await session.get(EnvAlert, int(payload["alert_id"]))
    if alert is None:  # nothing to tell; the event is still marked done
        return
    recipients = await notifications.officers_for(
        session, station_id=payload.get("station_id"), zone_id=payload.get("zone_id")
    )
    link = (
        f"/environment/smelters/{alert.unit_id}?period={alert.period}"
        if alert.unit_id
        else "/environment/alerts"
    )
    await notifications.notify(
        session,
        user_ids=recipients,
        event_id=event.id,
        kind=ALERT_TOPIC,
        title="生态警务预警",
        body=alert.message,
        link=link,
    )


def register() -> None:
    outbox.subscribe(ALERT_TOPIC, on_alert)
