"""API shapes of the organization registry."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from eqian.core import ids
from eqian.core.schemas import InputModel, OutputModel

# Seven decimals of a degree is about a centimetre: enough for any address, and few enough digits
# that every export format (Excel keeps 15 significant digits) gives the stored value back.
COORD_DECIMALS = 7

UnitStatus = Literal["active", "suspended", "closed"]
ContactRole = Literal["security_head", "safety_advisor"]
UnitSort = Literal[
    "name", "-name", "employee_count", "-employee_count", "created_at", "-created_at", "id", "-id"
]


class StationOut(OutputModel):
    id: int
    code: str
    name: str
    address: str
    lat: float | None
    lng: float | None
    unit_count: int = 0
    service_point_count: int = 0


class ServicePointOut(OutputModel):
    id: int
    station_id: int
    name: str
    address: str
    lat: float | None
    lng: float | None
    unit_count: int = 0


class CategoryOut(OutputModel):
    code: str
    name_zh: str
    name_en: str


class UnitOut(OutputModel):
    id: int
    name: str
    credit_code: str
    category_code: str
    category_name: str
    station_id: int
    station_name: str
    service_point_id: int | None
    service_point_name: str | None
    address: str
    lat: float | None
    lng: float | None
    employee_count: int
    above_scale: bool
    status: UnitStatus


class ContactOut(OutputModel):
    id: int
    name: str
    role: ContactRole
    phone: str = Field(description="Masked (138****5678) unless revealed through the audited action")


class UnitDetail(UnitOut):
    liaison_officer_id: int | None
    liaison_officer_name: str | None
    contacts: list[ContactOut]
    created_at: dt.datetime
    updated_at: dt.datetime


def _credit_code(value: str) -> str:
    try:
        return ids.validate_credit_code(value)
    except ids.IdentifierError as exc:
        raise ValueError(exc.message) from exc


def _round_coord(value: float | None) -> float | None:
    return None if value is None else round(value, COORD_DECIMALS)


class UnitCreate(InputModel):
    name: str = Field(min_length=2, max_length=100)
    credit_code: str
    category_code: str = Field(min_length=1, max_length=32)
    station_id: int
    service_point_id: int | None = None
    address: str = Field(default="", max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    employee_count: int = Field(default=0, ge=0, le=1_000_000)
    above_scale: bool = False
    status: UnitStatus = "active"

    _check_credit_code = field_validator("credit_code")(_credit_code)
    _round_coords = field_validator("lat", "lng")(_round_coord)


class UnitUpdate(InputModel):
    name: str | None = Field(default=None, min_length=2, max_length=100)
    credit_code: str | None = None
    category_code: str | None = Field(default=None, min_length=1, max_length=32)
    station_id: int | None = None
    service_point_id: int | None = None
    address: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    employee_count: int | None = Field(default=None, ge=0, le=1_000_000)
    above_scale: bool | None = None
    status: UnitStatus | None = None

    _round_coords = field_validator("lat", "lng")(_round_coord)

    @field_validator("credit_code")
    @classmethod
    def _check_credit_code(cls, value: str | None) -> str | None:
        return None if value is None else _credit_code(value)


class ContactCreate(InputModel):
    name: str = Field(min_length=1, max_length=64)
    role: ContactRole
    phone: str

    @field_validator("phone")
    @classmethod
    def _check_phone(cls, value: str) -> str:
        try:
            return ids.validate_mobile(value)
        except ids.IdentifierError as exc:
            raise ValueError(exc.message) from exc


class LiaisonAssign(InputModel):
    officer_id: int | None = Field(description="A liaison officer's user id; null removes the assignment")


class RevealedContact(OutputModel):
    id: int
    name: str
    role: ContactRole
    phone: str
