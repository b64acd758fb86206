"""API shapes of mediation. Amounts are yuan (two decimals); personal data leaves masked."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from eqian.core.ids import IdentifierError, validate_mobile, validate_resident_id
from eqian.core.schemas import MAX_ID, InputModel, OutputModel

DISPUTE_TYPES: dict[str, str] = {
    "labor": "劳资纠纷",
    "processing_fee": "加工费纠纷",
    "economic": "经济纠纷",
    "contract": "合同纠纷",
    "family": "家庭纠纷",
    "neighbor": "邻里纠纷",
    "traffic": "交通事故纠纷",
    "consumer": "消费纠纷",
    "other": "其他纠纷",
}
OUTCOMES: dict[str, str] = {"agreement": "调解成功", "failed": "调解不成", "referred": "移交处理"}
REFERRALS: dict[str, str] = {"court": "法院", "labour_arbitration": "劳动仲裁", "other": "其他部门"}
STATUSES: dict[str, str] = {"open": "待调解", "in_progress": "调解中", "closed": "已结案"}
PARTY_ROLES: dict[str, str] = {"applicant": "申请人", "respondent": "被申请人", "other": "其他"}

DisputeType = Literal[
    "labor", "processing_fee", "economic", "contract", "family", "neighbor", "traffic", "consumer", "other"
]
Outcome = Literal["agreement", "failed", "referred"]
Referral = Literal["court", "labour_arbitration", "other"]
PartyRole = Literal["applicant", "respondent", "other"]
CaseSource = Literal["service_point", "unit", "walk_in"]
StatsGroup = Literal["team", "station", "month", "dispute_type"]
Money = Decimal  # yuan
MAX_YUAN = Decimal("1000000000")


def _money(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if value < 0 or value > MAX_YUAN:
        raise ValueError("金额须在 0 到 10 亿元之间")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("金额最多两位小数")
    return value


class PartyIn(InputModel):
    name: str = Field(min_length=1, max_length=64)
    role: PartyRole
    id_number: str | None = Field(default=None, max_length=18)
    phone: str | None = Field(default=None, max_length=20)

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return validate_resident_id(value)
        except IdentifierError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return validate_mobile(value)
        except IdentifierError as exc:
            raise ValueError(str(exc)) from exc


class CaseIn(InputModel):
    """A case opened at a service point, by a unit, or walked in to a team (not from an incident:
    incidents open theirs through ``service.open_case_from_incident``)."""

    source: CaseSource
    station_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    service_point_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    dispute_type: DisputeType
    summary: str = Field(min_length=1, max_length=1000)
    amount_in_dispute: Money | None = None
    parties: list[PartyIn] = Field(min_length=1, max_length=20)

    @field_validator("amount_in_dispute")
    @classmethod
    def _amount(cls, value: Decimal | None) -> Decimal | None:
        return _money(value)


class SessionIn(InputModel):
    held_at: dt.datetime | None = None
    place: str = Field(default="", max_length=200)
    note: str = Field(min_length=1, max_length=2000)

    @field_validator("held_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("时间须带时区")
        return value


class OutcomeIn(InputModel):
    outcome: Outcome
    agreement_text: str = Field(default="", max_length=5000)
    agreement_amount: Money | None = None
    payment_schedule: str = Field(default="", max_length=500)
    amount_recovered: Money = Decimal("0")
    referred_to: Referral | None = None
    note: str = Field(default="", max_length=1000)

    @field_validator("agreement_amount", "amount_recovered")
    @classmethod
    def _amounts(cls, value: Decimal | None) -> Decimal | None:
        return _money(value)


class AssignIn(InputModel):
    team_id: int = Field(ge=1, le=MAX_ID)
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class TeamIn(InputModel):
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["volunteer", "veterans", "lawyers", "community", "unit"]
    station_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    specialties: list[DisputeType] = Field(default_factory=list, max_length=9)


class MemberIn(InputModel):
    name: str = Field(min_length=1, max_length=64)
    user_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    specialties: list[DisputeType] = Field(default_factory=list, max_length=9)


class MemberOut(OutputModel):
    id: int
    team_id: int
    user_id: int | None
    name: str
    specialties: list[str]
    active: bool
    open_cases: int = 0


class TeamOut(OutputModel):
    id: int
    name: str
    kind: str
    station_id: int | None
    unit_id: int | None
    specialties: list[str]
    active: bool
    open_cases: int = 0
    members: list[MemberOut] = Field(default_factory=list)


class PartyOut(OutputModel):
    id: int
    name: str
    role: str
    id_number: str | None  # masked
    phone: str | None  # masked


class RevealedParty(OutputModel):
    id: int
    name: str
    id_number: str | None
    phone: str | None


class SessionOut(OutputModel):
    id: int
    held_at: dt.datetime
    place: str
    note: str
    actor_name: str | None


class CaseOut(OutputModel):
    id: int
    incident_id: int | None
    source: str
    station_id: int
    unit_id: int | None
    unit_name: str | None
    service_point_id: int | None
    team_id: int | None
    team_name: str | None
    member_id: int | None
    member_name: str | None
    dispute_type: str
    summary: str
    amount_in_dispute: Decimal | None
    status: str
    outcome: str | None
    referred_to: str | None
    amount_recovered: Decimal
    opened_at: dt.datetime
    closed_at: dt.datetime | None


class CaseDetail(CaseOut):
    agreement_text: str
    agreement_amount: Decimal | None
    payment_schedule: str
    outcome_note: str
    parties: list[PartyOut] = Field(default_factory=list)
    sessions: list[SessionOut] = Field(default_factory=list)


class StatsRow(OutputModel):
    key: str
    label: str
    opened: int  # cases opened in the period
    mediated: int  # cases concluded in the period (any outcome)
    success: int
    failed: int
    referred: int
    success_rate: float | None  # success / mediated, in percent (one decimal), None when nothing concluded
    amount_recovered: Decimal
