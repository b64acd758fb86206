"""API shapes of the safety index."""

from __future__ import annotations

from pydantic import BaseModel, Field

from eqian.core.schemas import InputModel

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class DeductionOut(BaseModel):
    code: str
    name: str
    sign: str  # deduction | bonus
    points: float
    reason: str
    metrics: list[str]
    link: str


class ScoreOut(BaseModel):
    month: str
    unit_id: int
    unit_name: str
    station_id: int
    station_name: str
    category_code: str
    score: float
    grade: str
    grade_label: str
    rank_station: int
    station_units: int
    rank_category: int
    category_units: int
    change: float | None
    deductions: list[DeductionOut]
    advice: list[str]
    config_version: str


class UnitHistory(BaseModel):
    unit_id: int
    unit_name: str
    items: list[ScoreOut]
    total: int


class ComputeIn(InputModel):
    month: str = Field(pattern=MONTH_PATTERN)
    replace: bool = False


class ComputeOut(BaseModel):
    month: str
    units: int
    config_version: str
    replaced_version: str | None
    seconds: float
