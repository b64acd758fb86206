"""Outbox handler of notifications: sends one queued DingTalk or SMS message and records it.

Each ``notifications.send`` event names one channel and one recipient, so a failure of one
recipient never holds back or repeats the others. The handler runs in the outbox transaction:

1. on PostgreSQL it takes an advisory lock on (dedupe key, channel, recipient), so two workers
   that hold duplicate events for the same delivery do not both send;
2. if a ``NotificationDelivery`` with that key exists, the message already went out: done;
3. otherwise it sends; on success it adds the delivery row, which commits together with the
   event's "dispatched" mark; on failure it raises, the outbox rolls back, counts the attempt
   and tries again after its back-off (2, 4, 8 … s, up to ten attempts).

What remains is the window between the gateway's acceptance and that commit: a process killed
exactly there sends the message once more after restart (at-least-once; neither DingTalk nor a
typical SMS gateway takes an idempotency key). A crash anywhere before the send loses nothing:
the event stays in the outbox until a worker delivers it.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.notifications import channels as transports
from eqian.notifications.models import NotificationDelivery
from eqian.notifications.service import SEND_TOPIC, delivery_lock_key, message_text

log = logging.getLogger("eqian.notifications")


async def on_send(session: AsyncSession, event: outbox.OutboxEvent) -> None:
    payload = event.payload
    key, channel, recipient = str(payload["dedupe_key"]), str(payload["channel"]), str(payload["recipient"])
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(delivery_lock_key(key, channel, recipient))))
    done = await session.scalar(
        select(NotificationDelivery.id).where(
            NotificationDelivery.dedupe_key == key,
            NotificationDelivery.channel == channel,
            NotificationDelivery.recipient == recipient,
        )
    )
    if done is not None:
        return
    text = message_text(str(payload["title"]), str(payload.get("body", "")), str(payload.get("link", "")))
    configured = transports.current()
    if channel == "dingtalk":
        if configured.dingtalk is None:
            log.warning("dingtalk message %s dropped: no robot configured", key)
            return
        await configured.dingtalk.send_text(text, at_mobiles=[str(m) for m in payload.get("mobiles", [])])
    elif channel == "sms":
        await configured.sms.send(recipient, text)
    else:
        log.warning("notification on unknown channel %r dropped", channel)
        return
    session.add(
        NotificationDelivery(
            dedupe_key=key,
            channel=channel,
            recipient=recipient,
            kind=str(payload.get("kind", ""))[:40],
            event_id=event.id,
            attempts=event.attempts + 1,
        )
    )


def register() -> None:
    outbox.subscribe(SEND_TOPIC, on_send)
