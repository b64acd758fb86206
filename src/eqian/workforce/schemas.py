"""API shapes of workforce. ID numbers and phones leave only masked, except ``RevealedPerson``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from eqian.core.ids import IdentifierError, validate_mobile, validate_resident_id
from eqian.core.schemas import InputModel, OutputModel

ResidenceStatus = Literal["unregistered", "registered", "permit_issued"]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _plain_date(value: object) -> object:
    # Pydantic would read 0 as 1970-01-01 and "2024-05-01T13:00" as a date; a date is YYYY-MM-DD.
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and value and not _ISO_DATE.fullmatch(value)
    ):
        raise ValueError("日期格式须为 YYYY-MM-DD")
    return value


PlainDate = Annotated[dt.date, BeforeValidator(_plain_date)]


class HireIn(InputModel):
    unit_id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=1, max_length=32, description="GB 11643 resident ID number")
    phone: str = Field(min_length=1, max_length=20, description="mainland mobile number")
    hired_on: PlainDate
    dormitory: str = Field(default="", max_length=200)
    position: str = Field(default="", max_length=64)

    @field_validator("id_number")
    @classmethod
    def _id(cls, value: str) -> str:
        try:
            return validate_resident_id(value)
        except IdentifierError as exc:
            raise ValueError(exc.message) from None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        try:
            return validate_mobile(value)
        except IdentifierError as exc:
            raise ValueError(exc.message) from None


class DepartureIn(InputModel):
    left_on: PlainDate


class ResidenceIn(InputModel):
    status: ResidenceStatus
    registered_on: PlainDate | None = None
    permit_no: str | None = Field(default=None, max_length=32)
    permit_expires_on: PlainDate | None = None


class ResidenceOut(OutputModel):
    status: ResidenceStatus
    registered_on: dt.date | None
    permit_no: str | None
    permit_expires_on: dt.date | None


class WorkerOut(OutputModel):
    """One employment (a worker at a unit), with the person's masked identifiers."""

    id: int  # the employment id
    person_id: int
    unit_id: int
    unit_name: str
    name: str
    id_number_masked: str
    phone_masked: str
    hired_on: dt.date
    left_on: dt.date | None
    dormitory: str
    position: str
    residence: ResidenceOut
    registration_due_on: dt.date


class PersonOut(OutputModel):
    id: int
    name: str
    id_number_masked: str
    phone_masked: str
    birth_date_year: int
    home_region: str
    residence: ResidenceOut
    employments: list[WorkerOut]  # only those at units in the caller's scope


class RevealedPerson(OutputModel):
    id: int
    name: str
    id_number: str
    phone: str


class ComplianceRow(OutputModel):
    key_id: int  # unit id or station id
    name: str
    hires: int
    registered_in_window: int
    pending: int  # window still open and not yet registered: not counted either way
    rate: float | None  # registered_in_window / (hires − pending); None when nothing is due


class ComplianceReport(OutputModel):
    date_from: dt.date
    date_to: dt.date
    window_days: int
    rows: list[ComplianceRow]
    total: ComplianceRow


class ImportRowError(OutputModel):
    line: int
    field: str | None
    code: str
    message: str


class ImportReport(OutputModel):
    dry_run: bool
    rows: int
    created_persons: int
    hires: int
    errors: list[ImportRowError] = Field(default_factory=list)
