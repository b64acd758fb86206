"""Tables of messaging (民芯对讲): channels, messages, attachments, instructions with per-unit
receipts, and assistance requests (协查).

Membership of the registry-derived channels (station, category, service point) is not stored: it
is a query over ``units`` (active units of that station / category / point), so a unit added to
the registry is a member at once and a moved unit changes channel without any sync. Ad-hoc
groups and assistance requests list their member units and users in ``msg_channel_units`` and
``msg_channel_users``; a direct channel names its unit and officer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow

CHANNEL_KINDS = ("station", "category", "service_point", "group", "direct", "assistance")


class Channel(Base):
    __tablename__ = "msg_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    # One registry channel per station / station+category / service point / unit+officer.
    key: Mapped[str | None] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    category_code: Mapped[str | None] = mapped_column(String(32))
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The seq of the channel's last message: bumped in the sending transaction (row lock), gap-free.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChannelUnit(Base):
    __tablename__ = "msg_channel_units"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("msg_channels.id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ChannelUser(Base):
    __tablename__ = "msg_channel_users"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("msg_channels.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Message(Base):
    __tablename__ = "msg_messages"
    # A client's id for a send: a resend after a reconnect finds the message instead of posting twice.
    __table_args__ = (UniqueConstraint("channel_id", "seq"), UniqueConstraint("sender_id", "client_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("msg_channels.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text | instruction | assistance | system
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    reply_to: Mapped[int | None] = mapped_column(Integer)
    mentions: Mapped[list[int]] = mapped_column(JSON, default=list)
    instruction_id: Mapped[int | None] = mapped_column(Integer, index=True)
    assistance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Attachment(Base):
    __tablename__ = "msg_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("msg_messages.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Instruction(Base):
    __tablename__ = "msg_instructions"
    __table_args__ = (Index("ix_msg_instructions_deadline_escalated", "deadline", "escalated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("msg_channels.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(Integer)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    total: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Receipt(Base):
    """One recipient unit of an instruction; any of the unit's security staff may acknowledge.

    Written 20,000 at a time (a city-wide instruction), before anyone is told of the instruction,
    so the table carries what that insert can afford. No foreign keys, deliberately: receipts are
    written only by ``create_instruction``'s one ``INSERT … SELECT`` from ``units``, in the
    transaction that inserts the instruction, so both references hold by construction, and neither
    units nor instructions are ever deleted; on PostgreSQL the two constraints' per-row checks
    (each a ``FOR KEY SHARE`` lock, which also dirties every unit row) were two thirds of that
    insert, 150 of 225 ms for 20,000 units. And no index of its own on ``station_id`` or
    ``deadline``: every read goes through the instruction (the primary key's first column) or the
    unit, and the monthly facts find their instructions by the instructions' deadline index; the
    two indexes were another 40 % of the insert (migration 0004)."""

    __tablename__ = "msg_receipts"
    __table_args__ = (Index("ix_msg_receipts_unit_ack", "unit_id", "acknowledged_at"),)

    instruction_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the instruction's, copied
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ack_user_id: Mapped[int | None] = mapped_column(Integer)
    ack_text: Mapped[str | None] = mapped_column(String(500))
    ack_latency_seconds: Mapped[float | None] = mapped_column(Float)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Assistance(Base):
    """A 协查 request: sent to the units within a radius (and categories); replies are messages."""

    __tablename__ = "msg_assistance"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("msg_channels.id"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    description: Mapped[str] = mapped_column(String(1000))
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[int] = mapped_column(Integer)
    unit_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("msg_attachments.id"))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    outcome: Mapped[str | None] = mapped_column(String(500))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


JsonDict = dict[str, Any]
