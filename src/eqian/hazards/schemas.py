"""API shapes of inspections and hazards."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from eqian.core.schemas import MAX_ID, InputModel, OutputModel

Severity = Literal["low", "medium", "high", "critical"]
Outcome = Literal["pass", "fail", "na"]
InspectionKind = Literal["inspection", "self_inspection"]
HazardStatus = Literal["open", "fix_submitted", "verified"]
StatsGroup = Literal["unit", "station", "month"]


class ChecklistItemIn(InputModel):
    category_code: str = Field(min_length=2, max_length=32, pattern=r"^[a-z_]+$")
    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")
    text: str = Field(min_length=1, max_length=200)
    severity: Severity
    sort_order: int = Field(default=0, ge=0, le=10_000)


class ChecklistItemOut(OutputModel):
    id: int
    category_code: str
    code: str
    text: str
    severity: str
    sort_order: int
    active: bool


class ResultIn(InputModel):
    item_id: int = Field(ge=1, le=MAX_ID)
    result: Outcome
    note: str = Field(default="", max_length=500)


class InspectionIn(InputModel):
    unit_id: int = Field(ge=1, le=MAX_ID)
    note: str = Field(default="", max_length=500)
    results: list[ResultIn] = Field(min_length=1, max_length=200)


class ResultOut(OutputModel):
    item_id: int
    code: str
    text: str
    result: str
    note: str
    photo_url: str | None = None


class InspectionOut(OutputModel):
    id: int
    unit_id: int
    unit_name: str
    kind: str
    inspector_id: int | None
    inspector_name: str | None
    inspected_at: dt.datetime
    note: str
    results: list[ResultOut] = Field(default_factory=list)
    hazard_ids: list[int] = Field(default_factory=list)


class HazardEventOut(OutputModel):
    action: str
    actor_name: str | None
    note: str
    photo_url: str | None = None
    at: dt.datetime


class HazardOut(OutputModel):
    id: int
    unit_id: int
    unit_name: str
    station_id: int
    inspection_id: int | None
    description: str
    severity: str
    status: str
    overdue: bool
    found_at: dt.datetime
    deadline: dt.datetime
    verified_at: dt.datetime | None
    overdue_since: dt.datetime | None
    escalation_level: int


class HazardDetail(HazardOut):
    events: list[HazardEventOut] = Field(default_factory=list)


class EvidenceIn(InputModel):
    note: str = Field(min_length=1, max_length=500)


class ReviewIn(InputModel):
    decision: Literal["verify", "reject"]
    reason: str = Field(default="", max_length=500)


class StatsRow(OutputModel):
    key: str  # unit id, station id or YYYY-MM
    label: str
    found: int
    verified: int
    overdue: int
