"""Who is told, and the in-app inbox. Other domains call ``notify`` from their outbox handlers."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.db import utcnow
from eqian.core.errors import NotFound
from eqian.core.permissions import Principal
from eqian.notifications.models import Notification
from eqian.notifications.schemas import NotificationOut


async def officers_for(session: AsyncSession, *, station_id: int | None, zone_id: int | None) -> list[int]:
    """Active officers responsible for a place: the bureau, the station, and a joint zone's partners."""
    conditions = [User.role == Role.BUREAU_ADMIN.value]
    if station_id is not None:
        conditions.append((User.role == Role.STATION_OFFICER.value) & (User.station_id == station_id))
    if zone_id is not None:
        conditions.append((User.role == Role.PARTNER_OFFICER.value) & (User.zone_id == zone_id))
    rows = await session.scalars(
        select(User.id).where(User.is_active.is_(True), or_(*conditions)).order_by(User.id)
    )
    return list(rows)


async def notify(
    session: AsyncSession,
    *,
    user_ids: Collection[int],
    event_id: int | None,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
) -> int:
    """Add one notification per recipient inside the caller's transaction; a repeat of the same
    event for the same user adds nothing. Returns how many were added."""
    already: set[int] = set()
    if event_id is not None and user_ids:
        already = set(
            await session.scalars(
                select(Notification.user_id).where(
                    Notification.event_id == event_id, Notification.user_id.in_(list(user_ids))
                )
            )
        )
    new = [uid for uid in dict.fromkeys(user_ids) if uid not in already]
    session.add_all(
        Notification(user_id=uid, event_id=event_id, kind=kind, title=title[:120], body=body[:500], link=link)
        for uid in new
    )
    return len(new)


async def inbox(
    session: AsyncSession, actor: Principal, *, unread_only: bool, limit: int, offset: int
) -> tuple[list[NotificationOut], int]:
    where = [Notification.user_id == actor.user_id]
    if unread_only:
        where.append(Notification.read_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Notification).where(*where)) or 0
    rows = await session.scalars(
        select(Notification).where(*where).order_by(Notification.id.desc()).limit(limit).offset(offset)
    )
    return [NotificationOut.model_validate(n) for n in rows], total


async def mark_read(session: AsyncSession, actor: Principal, notification_id: int) -> NotificationOut:
    note = await session.scalar(
        select(Notification).where(Notification.id == notification_id, Notification.user_id == actor.user_id)
    )
    if note is None:
        raise NotFound("通知不存在")
    if note.read_at is None:
        note.read_at = utcnow()
        await session.commit()
    return NotificationOut.model_validate(note)
