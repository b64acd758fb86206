"""Who is told, and how: the in-app inbox, the DingTalk robot and SMS.

Other domains call ``notify`` from their outbox handlers (or inside any transaction). In-app rows
are written at once; the external channels leave through the outbox (topic ``notifications.send``,
one event per channel and recipient), so they go out only if the caller's transaction commits,
survive a crash between commit and send, and are retried with the outbox's back-off.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.accounts import Role, User
from eqian.core.db import utcnow
from eqian.core.errors import Forbidden, NotFound
from eqian.core.ids import is_valid_mobile, mask_mobile
from eqian.core.outbox import MAX_ATTEMPTS, OutboxEvent
from eqian.core.permissions import Principal
from eqian.notifications import channels as transports
from eqian.notifications.models import Notification, NotificationDelivery
from eqian.notifications.schemas import DeliveryOut, NotificationOut
from eqian.organizations.models import Contact

SEND_TOPIC = "notifications.send"
CHANNELS = frozenset({"app", "dingtalk", "sms"})


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


async def mobiles_of(session: AsyncSession, user_ids: Collection[int]) -> list[str]:
    """The mobile numbers that reach these users, in a stable order, each once.

    Accounts carry no phone; a unit's staff are reached through the unit's registered contacts
    (its security heads, or its safety advisors when it has no security head). Officers have no
    number on record and get no SMS.
    """
    if not user_ids:
        return []
    rows = (
        await session.execute(
            select(Contact.unit_id, Contact.role, Contact.phone)
            .join(User, User.unit_id == Contact.unit_id)
            .where(
                User.id.in_(list(user_ids)), User.is_active.is_(True), User.role == Role.UNIT_SECURITY.value
            )
            .order_by(Contact.unit_id, Contact.id)
        )
    ).all()
    by_unit: dict[int, dict[str, list[str]]] = {}
    for unit_id, role, phone in rows:
        by_unit.setdefault(unit_id, {}).setdefault(role, []).append(phone)
    phones: list[str] = []
    for roles in by_unit.values():
        phones.extend(roles.get("security_head") or roles.get("safety_advisor") or [])
    return [p for p in dict.fromkeys(phones) if is_valid_mobile(p)]


def _dedupe_key(event_id: int | None, kind: str, title: str, body: str) -> str:
    if event_id is None:
        return f"call:{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:16]
    return f"event:{event_id}:{kind[:40]}:{digest}"


async def notify(
    session: AsyncSession,
    *,
    user_ids: Collection[int],
    event_id: int | None,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    channels: Collection[str] = ("app",),
) -> int:
    """Tell these users, inside the caller's transaction, through each of ``channels``:

    - ``"app"``: one in-app notification per recipient; a repeat of the same event for the same
      user adds nothing;
    - ``"dingtalk"``: one message to the configured robot's group, @-mentioning the recipients'
      mobiles (nothing when no robot is configured);
    - ``"sms"``: one text per mobile number of the recipients (see ``mobiles_of``).

    External messages are queued in the outbox and sent after commit; the same source event,
    kind and text never goes to the same place twice. Returns how many in-app rows were added.
    """
    unknown = set(channels) - CHANNELS
    if unknown:
        raise ValueError(f"unknown notification channels: {sorted(unknown)}")
    external = [c for c in ("dingtalk", "sms") if c in channels]
    if external and user_ids:
        await _queue_external(
            session,
            user_ids=user_ids,
            event_id=event_id,
            kind=kind,
            title=title,
            body=body,
            link=link,
            channels=external,
        )
    if "app" not in channels:
        return 0
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


async def _queue_external(
    session: AsyncSession,
    *,
    user_ids: Collection[int],
    event_id: int | None,
    kind: str,
    title: str,
    body: str,
    link: str,
    channels: list[str],
) -> None:
    key = _dedupe_key(event_id, kind, title, body)
    mobiles = await mobiles_of(session, user_ids)
    common = {
        "dedupe_key": key,
        "kind": kind[:40],
        "title": title[:120],
        "body": body[:500],
        "link": link[:200],
        "source_event_id": event_id,
        "station_id": None,
        "unit_id": None,
        "at": utcnow().isoformat(),
    }
    if "dingtalk" in channels and transports.current().dingtalk is not None:
        outbox.emit(
            session, SEND_TOPIC, {**common, "channel": "dingtalk", "recipient": "robot", "mobiles": mobiles}
        )
    if "sms" in channels:
        for phone in mobiles:
            outbox.emit(session, SEND_TOPIC, {**common, "channel": "sms", "recipient": phone})


def message_text(title: str, body: str, link: str = "") -> str:
    """The plain text that leaves through DingTalk and SMS."""
    text = f"【e企安·365】{title}"
    if body:
        text += f"\n{body}"
    if link:
        text += f"\n{link}"
    return text


def delivery_lock_key(dedupe_key: str, channel: str, recipient: str) -> int:
    """A signed 64-bit number naming one delivery, for PostgreSQL's advisory locks."""
    raw = hashlib.sha256(f"{dedupe_key}|{channel}|{recipient}".encode()).digest()[:8]
    return int.from_bytes(raw, "big", signed=True)


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


def _shown_recipient(channel: str, recipient: str) -> str:
    return mask_mobile(recipient) if channel == "sms" else recipient


async def deliveries(
    session: AsyncSession, actor: Principal, *, status: str, limit: int, offset: int
) -> tuple[list[DeliveryOut], int]:
    """The delivery log of the external channels, for the command centre: what went out, what is
    still being retried, what the outbox gave up on. Mobile numbers are masked."""
    if actor.role is not Role.BUREAU_ADMIN:
        raise Forbidden("仅分局主战中心可以查看外发通知记录")
    if status == "sent":
        total = await session.scalar(select(func.count()).select_from(NotificationDelivery)) or 0
        rows = (
            await session.execute(
                select(NotificationDelivery, OutboxEvent.payload)
                .outerjoin(OutboxEvent, OutboxEvent.id == NotificationDelivery.event_id)
                .order_by(NotificationDelivery.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [
            DeliveryOut(
                channel=d.channel,
                recipient=_shown_recipient(d.channel, d.recipient),
                kind=d.kind,
                title=str((payload or {}).get("title", "")),
                status="sent",
                attempts=d.attempts,
                at=d.sent_at,
                last_error=None,
            )
            for d, payload in rows
        ], total
    gave_up = OutboxEvent.attempts >= MAX_ATTEMPTS
    where = [
        OutboxEvent.topic == SEND_TOPIC,
        OutboxEvent.dispatched_at.is_(None),
        gave_up if status == "failed" else ~gave_up,
    ]
    total = await session.scalar(select(func.count()).select_from(OutboxEvent).where(*where)) or 0
    events = await session.scalars(
        select(OutboxEvent).where(*where).order_by(OutboxEvent.id.desc()).limit(limit).offset(offset)
    )
    return [
        DeliveryOut(
            channel=str(e.payload.get("channel", "")),
            recipient=_shown_recipient(
                str(e.payload.get("channel", "")), str(e.payload.get("recipient", ""))
            ),
            kind=str(e.payload.get("kind", "")),
            title=str(e.payload.get("title", "")),
            status=status,
            attempts=e.attempts,
            at=e.available_at,
            last_error=e.last_error,
        )
        for e in events
    ], total
