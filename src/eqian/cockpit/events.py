"""Outbox handlers of cockpit: keep the rollups current and feed the live feed.

Every domain event marks the month of its ``at`` dirty (the refresh job recomputes it within
``rollups.REFRESH_SECONDS``); ``safety_index.computed`` marks its ``month``. New incidents and new
instructions are also published on the pub/sub topic ``feed`` for the cockpit's live feed.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import rollups
from eqian.cockpit.service import FEED_TOPICS, feed_item
from eqian.core import outbox
from eqian.core.months import of as month_of
from eqian.core.months import parse as parse_month

log = logging.getLogger(__name__)

ROLLUP_TOPICS = (
    "incidents.reported",
    "incidents.changed",
    "mediation.case_opened",
    "mediation.case_closed",
    "requests.submitted",
    "requests.resolved",
    "messaging.instruction_sent",
    "messaging.instruction_overdue",
    "hazards.overdue",
    "safety_index.computed",
)


def months_of(event: outbox.OutboxEvent) -> set[str]:
    """The months an event may change: the month of its ``at`` (or of its creation), and the
    ``month`` it names (the safety index)."""
    payload: dict[str, Any] = event.payload or {}
    months: set[str] = set()
    at = payload.get("at")
    moment: dt.datetime | None = None
    if isinstance(at, str):
        try:
            moment = dt.datetime.fromisoformat(at)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
    if moment is None:
        moment = event.created_at
    months.add(month_of(moment))
    named = payload.get("month")
    if isinstance(named, str):
        try:
            parse_month(named)
            months.add(named)
        except ValueError:
            pass
    return months


async def publish_feed(item: dict[str, Any]) -> None:
    """Publish on ``feed`` through ``eqian.core.pubsub`` if it is there (it is optional here)."""
    try:
        pubsub = importlib.import_module("eqian.core.pubsub")
    except ModuleNotFoundError:
        return
    publish = getattr(pubsub, "publish", None)
    if publish is None:
        return
    try:
        await publish("feed", item)
    except Exception:  # the live feed is best effort; the rollup mark must still commit
        log.exception("publishing a feed item failed")


async def on_event(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    await rollups.mark_dirty(session, months_of(event))
    if event.topic in FEED_TOPICS:
        item = feed_item(event.topic, event.payload or {})
        if item is not None:
            await publish_feed(item)


def register() -> None:
    for topic in ROLLUP_TOPICS:
        outbox.subscribe(topic, on_event, batchable=True)  # database writes and a best-effort publish
