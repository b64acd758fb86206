"""Input models take what a form or a careful client sends, and refuse what only a bug would send."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import Field, ValidationError

from eqian.core.schemas import InputModel


class Sample(InputModel):
    unit_id: int | None = None
    unit_ids: list[int] = Field(default_factory=list)
    on: dt.date | None = None
    at: dt.datetime | None = None
    flag: bool | None = None


def refused(**body: object) -> list[tuple[object, ...]]:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(body)
    return [error["loc"] for error in caught.value.errors()]


def test_json_true_is_not_an_id() -> None:
    # Found by the fuzzer: {"unit_id": true} was read as unit 1 and filed against it.
    assert refused(unit_id=True) == [("unit_id",)]
    assert refused(unit_ids=[3, False]) == [("unit_ids",)]


def test_a_number_is_not_a_date() -> None:
    # 0 was stored as 1970-01-01.
    assert refused(on=0) == [("on",)]
    assert refused(on=1_700_000_000.5) == [("on",)]


def test_what_forms_and_clients_send_still_parses() -> None:
    body = Sample.model_validate(
        {"unit_id": "7", "unit_ids": ["1", 2], "on": "2026-11-23", "at": 1_700_000_000, "flag": True}
    )
    assert body.unit_id == 7
    assert body.unit_ids == [1, 2]
    assert body.on == dt.date(2026, 11, 23)
    assert body.at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert body.flag is True
