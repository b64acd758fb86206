"""Outbox handlers of incidents.

- ``incidents.changed`` with status ``assigned``: tell whoever now holds the matter (the officer it
  was dispatched to, or the unit's security staff for self-governance).
- ``incidents.overdue``: tell the holder and the station's officers.
- ``mediation.case_closed``: the incident the case came from is resolved.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.incidents import classifier, service
from eqian.incidents.models import Incident
from eqian.notifications import service as notifications

ROUTE_ZH = {"dispatch": "派警处置", "self_governance": "企业自治", "mediation": "调解"}


async def unit_staff(session: AsyncSession, unit_id: int | None) -> list[int]:
    if unit_id is None:
        return []
    rows = await session.scalars(
        select(User.id)
        .where(User.role == Role.UNIT_SECURITY.value, User.unit_id == unit_id, User.is_active.is_(True))
        .order_by(User.id)
    )
    return list(rows)


def _label(incident: Incident) -> str:
    return f"{classifier.CATEGORIES.get(incident.category, incident.category)}：{incident.description[:40]}"


async def on_changed(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    payload = event.payload
    if payload.get("status") != "assigned":
        return
    incident = await session.get(Incident, int(payload["incident_id"]))
    if incident is None or incident.route == "mediation":  # mediation tells its own team
        return
    if incident.route == "dispatch":
        recipients = [incident.assignee_id] if incident.assignee_id else []
        if not recipients:
            recipients = await notifications.officers_for(
                session, station_id=incident.station_id, zone_id=None
            )
        title = "新派警情"
    else:
        recipients = await unit_staff(session, incident.unit_id)
        title = "移交单位自治处置的警情"
    await notifications.notify(
        session,
        user_ids=recipients,
        event_id=event.id,
        kind="incidents.assigned",
        title=title,
        body=_label(incident),
        link=f"/incidents/{incident.id}",
    )


async def on_overdue(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    incident = await session.get(Incident, int(event.payload["incident_id"]))
    if incident is None or incident.status not in service.OPEN_STATUSES:
        return
    recipients = await notifications.officers_for(session, station_id=incident.station_id, zone_id=None)
    if incident.route == "self_governance":
        recipients = [*await unit_staff(session, incident.unit_id), *recipients]
    await notifications.notify(
        session,
        user_ids=list(dict.fromkeys(recipients)),
        event_id=event.id,
        kind=service.OVERDUE_TOPIC,
        title=f"警情超时未办结（{ROUTE_ZH.get(incident.route, incident.route)}）",
        body=_label(incident),
        link=f"/incidents/{incident.id}",
    )


async def on_case_closed(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    payload = event.payload
    incident_id = payload.get("incident_id")
    if not incident_id:
        return
    at_text = payload.get("at")
    at = dt.datetime.fromisoformat(at_text) if isinstance(at_text, str) else event.created_at
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    await service.resolve_from_mediation(
        session,
        incident_id=int(incident_id),
        case_id=int(payload.get("case_id") or 0),
        outcome=payload.get("outcome"),
        at=at,
    )


def register() -> None:
    outbox.subscribe(service.CHANGED_TOPIC, on_changed)
    outbox.subscribe(service.OVERDUE_TOPIC, on_overdue)
    outbox.subscribe("mediation.case_closed", on_case_closed)
