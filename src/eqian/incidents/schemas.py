"""API shapes of incidents."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from eqian.core.schemas import MAX_ID, InputModel, OutputModel
from eqian.incidents.classifier import CATEGORIES

Route = Literal["dispatch", "self_governance", "mediation"]
Severity = Literal["low", "medium", "high", "critical"]
Status = Literal["reported", "triaged", "assigned", "in_progress", "resolved", "closed"]
Transition = Literal["start", "resolve", "close", "reopen"]
PHONE_PATTERN = r"^\+?[0-9][0-9\- ]{3,19}$"
Money = Decimal


def _category(value: str | None) -> str | None:
    if value is not None and value not in CATEGORIES:
        raise ValueError(f"未知的警情类别：{value}")
    return value


class ClassifyIn(InputModel):
    text: str = Field(min_length=1, max_length=2000)


class ClassifyOut(OutputModel):
    category: str
    category_label: str
    police: bool
    confidence: float
    evidence: list[str]
    version: str


class IncidentIn(InputModel):
    """An incident from the 110 dispatch system or the intake form."""

    description: str = Field(min_length=2, max_length=2000)
    reported_at: dt.datetime | None = None  # default: now
    number: str | None = Field(default=None, min_length=1, max_length=60)  # the 110 system's number
    caller_phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    address: str = Field(default="", max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    unit_ref: str | None = Field(default=None, max_length=32)  # unit id or credit code
    station_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    category: str | None = None  # given by the 110 system; else the classifier decides
    police: bool | None = None
    severity: Severity | None = None
    fraud_loss_yuan: Money | None = Field(default=None, ge=0, le=Decimal("999999999999"), decimal_places=2)

    _check_category = field_validator("category")(_category)

    @field_validator("reported_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("须带时区，例如 2026-03-01T08:00:00+08:00")
        if not 2000 <= value.year <= 2100:
            raise ValueError("时间须在 2000–2100 年之间")
        return value.astimezone(dt.UTC)


class TriageIn(InputModel):
    """Accept the suggestion (empty body) or change any of it in one step."""

    category: str | None = None
    police: bool | None = None
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    route: Route | None = None
    severity: Severity | None = None
    assignee_id: int | None = Field(default=None, ge=1, le=MAX_ID)  # dispatch: the officer (default: me)
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID)  # mediation: a team (default: by load)
    note: str = Field(default="", max_length=500)

    _check_category = field_validator("category")(_category)


class TransitionIn(InputModel):
    action: Transition
    note: str = Field(default="", max_length=500)
    fraud_recovered_yuan: Money | None = Field(
        default=None, ge=0, le=Decimal("999999999999"), decimal_places=2
    )


class LinkIn(InputModel):
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)  # null: not a unit's matter
    reason: str = Field(min_length=1, max_length=200)


class RoutingRuleIn(InputModel):
    category: str = Field(min_length=1, max_length=32)
    police: Literal["yes", "no", "*"]
    unit_category: str = Field(min_length=1, max_length=32)
    route: Route
    sla_hours: int = Field(ge=1, le=24 * 90)


class RoutingRulePatch(InputModel):
    route: Route | None = None
    sla_hours: int | None = Field(default=None, ge=1, le=24 * 90)


class RoutingRuleOut(OutputModel):
    id: int
    category: str
    police: str
    unit_category: str
    route: str
    sla_hours: int


class IncidentEventOut(OutputModel):
    action: str
    from_status: str | None
    to_status: str | None
    actor_name: str | None
    note: str
    at: dt.datetime


class IncidentOut(OutputModel):
    id: int
    number: str | None
    source: str
    reported_at: dt.datetime
    station_id: int
    station_name: str
    unit_id: int | None
    unit_name: str | None
    address: str
    description: str
    caller_phone: str | None  # masked
    category: str
    category_label: str
    police: bool
    confidence: float
    evidence: list[str]
    category_source: str
    severity: str
    link_method: str
    link_reason: str
    route: str
    sla_hours: int
    due_at: dt.datetime
    overdue: bool
    status: str
    assignee_id: int | None
    mediation_case_id: int | None
    fraud_loss_yuan: Decimal | None
    fraud_recovered_yuan: Decimal | None


class IncidentDetail(IncidentOut):
    lat: float | None
    lng: float | None
    triaged_at: dt.datetime | None
    assigned_at: dt.datetime | None
    started_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    reopen_count: int
    events: list[IncidentEventOut] = Field(default_factory=list)


class RevealOut(OutputModel):
    caller_phone: str | None


class ImportSummary(OutputModel):
    rows: int
    created: int
    skipped: int  # already imported (same number or same time + phone + text)
    linked: int
    by_route: dict[str, int]
