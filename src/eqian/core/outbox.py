"""Transactional outbox: events are rows written in the transaction of the change that caused them.

A dispatcher later hands each event to the handlers registered for its topic, in a transaction
of its own that also marks the event dispatched, so a committed change always reaches its
listeners (even after a crash) and a handler's database writes happen exactly once. Handlers
must still be idempotent for side effects outside the database (webhooks, SMS).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow

log = logging.getLogger("eqian.outbox")

Handler = Callable[[AsyncSession, "OutboxEvent"], Awaitable[None]]
_handlers: dict[str, list[Handler]] = {}
MAX_ATTEMPTS = 10


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))


def emit(session: AsyncSession, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Queue an event inside the caller's transaction; it leaves only if that transaction commits."""
    event = OutboxEvent(topic=topic, payload=payload)
    session.add(event)
    return event


def subscribe(topic: str, handler: Handler) -> None:
    handlers = _handlers.setdefault(topic, [])
    if handler not in handlers:
        handlers.append(handler)


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(3600, 2**attempts))


async def dispatch_pending(
    factory: async_sessionmaker[AsyncSession], *, limit: int = 100, now: dt.datetime | None = None
) -> int:
    """Deliver up to ``limit`` due events; returns how many were dispatched."""
    now = now or utcnow()
    async with factory() as session:
        query = (
            select(OutboxEvent.id)
            .where(
                OutboxEvent.dispatched_at.is_(None),
                OutboxEvent.available_at <= now,
                OutboxEvent.attempts < MAX_ATTEMPTS,
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        ids = list(await session.scalars(query))
    done = 0
    for event_id in ids:
        async with factory() as session:
            lock = select(OutboxEvent).where(OutboxEvent.id == event_id, OutboxEvent.dispatched_at.is_(None))
            if session.get_bind().dialect.name == "postgresql":
                # Several workers may dispatch at once: each event is taken by one of them.
                lock = lock.with_for_update(skip_locked=True)
            event = await session.scalar(lock)
            if event is None:
                continue
            topic = event.topic  # rollback expires the row; keep what the log line needs
            try:
                for handler in _handlers.get(event.topic, []):
                    await handler(session, event)
                event.dispatched_at = utcnow()
                await session.commit()
                done += 1
            except Exception as exc:  # a failing handler must not stop the others; it is retried
                await session.rollback()
                log.warning("outbox event %s (%s) failed: %s", event_id, topic, exc)
                event = await session.get(OutboxEvent, event_id)
                if event is not None:
                    event.attempts += 1
                    event.available_at = utcnow() + _backoff(event.attempts)
                    event.last_error = str(exc)[:500]
                    await session.commit()
    return done


async def run_dispatcher(factory: async_sessionmaker[AsyncSession], every_seconds: float) -> None:
    """Poll and deliver until cancelled; an error in one round never stops the loop."""
    while True:
        try:
            while await dispatch_pending(factory) > 0:
                pass
        except Exception:  # the next round retries; a dead dispatcher would lose nothing but be silent
            log.exception("outbox dispatch round failed")
        await asyncio.sleep(every_seconds)
