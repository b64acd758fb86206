"""In-app notifications (one row per recipient) and the record of what left through DingTalk and SMS."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    # One notification per recipient per event: a redelivered outbox event adds nothing.
    __table_args__ = (UniqueConstraint("user_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_events.id"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(String(500), default="")
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class NotificationDelivery(Base):
    """One message that went out through an external channel (DingTalk robot, SMS).

    Written in the transaction that marks its outbox event done, right after the gateway accepted
    the message; the unique key means a redelivered event, a retry after a partial failure or a
    second ``notify`` for the same source event never sends the same thing to the same place twice.
    """

    __tablename__ = "notification_deliveries"
    __table_args__ = (UniqueConstraint("dedupe_key", "channel", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "event:<source outbox event id>:<kind>:<content digest>", or "call:<random>" when the caller
    # had no source event.
    dedupe_key: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(16))  # dingtalk | sms
    recipient: Mapped[str] = mapped_column(String(64))  # "robot", or the mobile number
    kind: Mapped[str] = mapped_column(String(40))
    # The notifications.send outbox event that did it, and how many tries it took.
    event_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_events.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
