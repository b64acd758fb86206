"""API shapes of enterprise requests."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from eqian.core.schemas import MAX_ID, InputModel, OutputModel

KINDS: dict[str, str] = {
    "fraud_training": "反诈宣传培训",
    "brand_protection": "品牌/知识产权保护",
    "internal_corruption": "内部职务侵占/腐败",
    "traffic": "厂区周边交通",
    "permits": "证照办理",
    "other": "其他",
}
# Days to resolve, per kind.
SLA_DAYS: dict[str, int] = {
    "fraud_training": 10,
    "brand_protection": 15,
    "internal_corruption": 15,
    "traffic": 7,
    "permits": 5,
    "other": 10,
}
STATUSES: dict[str, str] = {"submitted": "待受理", "in_progress": "办理中", "resolved": "已办结"}

Kind = Literal["fraud_training", "brand_protection", "internal_corruption", "traffic", "permits", "other"]
StatsGroup = Literal["kind", "station", "month", "unit"]


class RequestIn(InputModel):
    kind: Kind
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1, max_length=5000)
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)  # officers submitting for a unit


class ReplyIn(InputModel):
    text: str = Field(min_length=1, max_length=5000)


class ResolveIn(InputModel):
    resolution: str = Field(min_length=1, max_length=5000)


class RateIn(InputModel):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=500)


class RouteIn(InputModel):
    department_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    assignee_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class DepartmentIn(InputModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1, max_length=64)
    kinds: list[Kind] = Field(default_factory=list, max_length=6)
    station_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class DepartmentOut(OutputModel):
    id: int
    code: str
    name: str
    kinds: list[str]
    station_id: int | None
    active: bool


class EventOut(OutputModel):
    action: str
    actor_name: str | None
    note: str
    at: dt.datetime


class RequestOut(OutputModel):
    id: int
    unit_id: int
    unit_name: str
    station_id: int
    kind: str
    title: str
    status: str
    department_id: int | None
    department_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    submitted_at: dt.datetime
    due_at: dt.datetime
    overdue: bool
    resolved_at: dt.datetime | None
    rating: int | None


class RequestDetail(RequestOut):
    body: str
    reply: str
    replied_at: dt.datetime | None
    resolution: str
    rating_comment: str
    rated_at: dt.datetime | None
    events: list[EventOut] = Field(default_factory=list)


class StatsRow(OutputModel):
    key: str
    label: str
    collected: int  # submitted in the period
    resolved: int  # resolved in the period
    avg_days: float | None  # mean days from submission to resolution of those resolved
    overdue: int  # open now and past their due time (of those collected in the period)
    rated: int
    avg_rating: float | None
