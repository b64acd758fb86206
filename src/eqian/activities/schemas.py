"""API shapes of police–enterprise activities."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, model_validator

from eqian.core.schemas import MAX_ID, InputModel, OutputModel

Kind = Literal["roundtable", "industry_meeting", "joint_patrol", "safety_training", "antifraud_training"]
Status = Literal["planned", "held", "cancelled"]
Response = Literal["invited", "accepted", "declined"]
MIN_YEAR, MAX_YEAR = 2000, 2100  # beyond these a date is a typo, and date arithmetic could overflow


def check_year(value: dt.date | None) -> None:
    if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"年份须在 {MIN_YEAR}–{MAX_YEAR} 之间")


class ActivityIn(InputModel):
    station_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="empty: bureau-wide")
    kind: Kind
    title: str = Field(min_length=1, max_length=200)
    category_code: str | None = Field(default=None, max_length=32)
    starts_at: dt.datetime
    ends_at: dt.datetime
    location: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _times(self) -> ActivityIn:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("时间须带时区")
        check_year(self.starts_at)
        check_year(self.ends_at)
        if self.ends_at < self.starts_at:
            raise ValueError("结束时间不能早于开始时间")
        return self


class ActivityUpdate(InputModel):
    """PATCH body: only the fields given change. ``status`` may be set to cancelled or held."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    location: str | None = Field(default=None, max_length=200)
    status: Status | None = None
    minutes: str | None = Field(default=None, max_length=20000)

    @model_validator(mode="after")
    def _years(self) -> ActivityUpdate:
        check_year(self.starts_at)
        check_year(self.ends_at)
        return self


class ScheduleIn(InputModel):
    station_id: int = Field(ge=1, le=MAX_ID)
    weeks: int = Field(default=4, ge=1, le=52)
    start: dt.date | None = Field(default=None, description="any day of the first week; default this week")
    weekday: int = Field(default=2, ge=0, le=6, description="0 = Monday")
    hour: int = Field(default=14, ge=0, le=23)
    location: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _year(self) -> ScheduleIn:
        check_year(self.start)
        return self


class InviteIn(InputModel):
    # Each id bounded like a path id: a larger one would overflow the database's integer (500).
    unit_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=500, description="empty: every active unit of the category in the station"
    )


class RespondIn(InputModel):
    response: Literal["accepted", "declined"]


class AttendanceIn(InputModel):
    attended: bool
    attendee_count: int = Field(default=0, ge=0, le=10000)
    attendee_names: str = Field(default="", max_length=500)


class IssueIn(InputModel):
    text: str = Field(min_length=1, max_length=2000)
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class ActivityOut(OutputModel):
    id: int
    station_id: int | None
    station_name: str | None = None
    kind: Kind
    title: str
    category_code: str | None
    category_name: str | None = None
    starts_at: dt.datetime
    ends_at: dt.datetime
    location: str
    organiser_id: int | None
    status: Status
    minutes: str
    week_start: dt.date | None
    invited_count: int = 0


class InvitationOut(OutputModel):
    id: int
    activity_id: int
    unit_id: int
    unit_name: str
    response: Response
    responded_at: dt.datetime | None
    attended: bool | None
    attendee_count: int
    attendee_names: str
    recorded_at: dt.datetime | None


class IssueOut(OutputModel):
    id: int
    activity_id: int
    unit_id: int | None
    unit_name: str | None = None
    text: str
    raised_by_id: int | None
    created_at: dt.datetime


class ActivityDetail(ActivityOut):
    invitations: list[InvitationOut]
    issues: list[IssueOut]


class ScheduleOut(OutputModel):
    created: list[ActivityOut]
    skipped_weeks: list[dt.date]


class ParticipationRow(OutputModel):
    unit_id: int
    unit_name: str
    station_id: int
    invited: int
    attended: int
    rate: float | None
