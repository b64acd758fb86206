"""API shapes of messaging."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator

from eqian.core.schemas import MAX_ID, InputModel, OutputModel

Id = int
ReceiptStatus = Literal["pending", "delivered", "read", "acknowledged", "overdue", "escalated"]


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("须带时区 (例如 2026-01-01T18:00:00+08:00)")
    return value.astimezone(dt.UTC)


class ChannelOut(OutputModel):
    id: int
    kind: str
    name: str
    station_id: int | None
    category_code: str | None
    service_point_id: int | None
    unit_id: int | None
    officer_id: int | None
    last_seq: int
    created_at: dt.datetime


class ChannelDetail(ChannelOut):
    member_units: int
    member_users: list[int]
    can_post: bool
    can_instruct: bool


class GroupIn(InputModel):
    name: str = Field(min_length=1, max_length=100)
    unit_ids: list[int] = Field(default_factory=list, max_length=5000)
    user_ids: list[int] = Field(default_factory=list, max_length=500)

    @field_validator("unit_ids", "user_ids")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        if any(v < 1 or v > MAX_ID for v in value):
            raise ValueError("无效的编号")
        return list(dict.fromkeys(value))


class DirectIn(InputModel):
    """An officer names the unit; a unit's security staff name the officer."""

    # Strict: pydantic would otherwise read ``true`` as unit 1 and open a channel with it.
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID, strict=True)
    officer_id: int | None = Field(default=None, ge=1, le=MAX_ID, strict=True)


class MessageIn(InputModel):
    body: str = Field(default="", max_length=4000)
    reply_to: int | None = Field(default=None, ge=1, le=MAX_ID)
    mentions: list[int] = Field(default_factory=list, max_length=50)
    attachment_ids: list[int] = Field(default_factory=list, max_length=10)
    # Optional, the sender's own id for this send (e.g. a UUID): sending it again returns the same message.
    client_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("mentions", "attachment_ids")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        if any(v < 1 or v > MAX_ID for v in value):
            raise ValueError("无效的编号")
        return list(dict.fromkeys(value))


class InstructionIn(InputModel):
    channel_id: int = Field(ge=1, le=MAX_ID)
    title: str = Field(min_length=1, max_length=100)
    body: str = Field(default="", max_length=4000)
    deadline: dt.datetime

    @field_validator("deadline")
    @classmethod
    def _tz(cls, value: dt.datetime) -> dt.datetime:
        return _aware(value)


class AckIn(InputModel):
    text: str = Field(default="", max_length=500)


class AssistanceIn(InputModel):
    description: str = Field(min_length=1, max_length=1000)
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    radius_m: int = Field(ge=50, le=20_000)
    unit_categories: list[str] = Field(default_factory=list, max_length=11)
    attachment_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class ReplyIn(InputModel):
    body: str = Field(min_length=1, max_length=4000)


class CloseIn(InputModel):
    outcome: str = Field(min_length=1, max_length=500)


class AttachmentOut(OutputModel):
    id: int
    name: str
    content_type: str
    size: int


class ProgressOut(OutputModel):
    instruction_id: int
    total: int
    delivered: int
    read: int
    acknowledged: int
    overdue: int


class InstructionOut(OutputModel):
    id: int
    channel_id: int
    message_id: int | None
    station_id: int | None
    sender_id: int | None
    title: str
    body: str
    deadline: dt.datetime
    created_at: dt.datetime
    escalated_at: dt.datetime | None
    progress: ProgressOut


class ReceiptOut(OutputModel):
    instruction_id: int
    unit_id: int
    unit_name: str
    station_id: int
    status: str
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    ack_text: str | None
    ack_latency_seconds: float | None
    escalated_at: dt.datetime | None


class InboxItem(OutputModel):
    instruction_id: int
    channel_id: int
    message_id: int | None
    title: str
    body: str
    deadline: dt.datetime
    created_at: dt.datetime
    overdue: bool
    status: str
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None
    acknowledged_at: dt.datetime | None


class EscalationOut(OutputModel):
    instruction_id: int
    title: str
    unit_id: int
    unit_name: str
    station_id: int
    deadline: dt.datetime
    escalated_at: dt.datetime
    acknowledged_at: dt.datetime | None


class AssistanceOut(OutputModel):
    id: int
    channel_id: int
    station_id: int | None
    sender_id: int | None
    description: str
    lat: float
    lng: float
    radius_m: int
    unit_categories: list[str]
    attachment_id: int | None
    recipients: int
    status: str
    outcome: str | None
    closed_at: dt.datetime | None
    created_at: dt.datetime


class AssistanceDetail(AssistanceOut):
    replies: list[dict[str, Any]]
    recipient_units: list[dict[str, Any]]
