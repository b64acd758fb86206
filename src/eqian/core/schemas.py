"""Shared API shapes: pages of items and input models that refuse unknown fields."""

from __future__ import annotations

import datetime as dt
import types
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

T = TypeVar("T")

# Ids are 32-bit INTEGER columns on PostgreSQL: a bigger number names nothing, so it is a 422,
# not a driver overflow.
MAX_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


class Paging(BaseModel):
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


def _scalar_kinds(annotation: Any) -> frozenset[Any]:
    """The plain types a field (or its list's items) accepts: ``int | None`` → {int, NoneType}."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, set, tuple, frozenset):
        return frozenset().union(*(_scalar_kinds(a) for a in get_args(annotation)))
    return frozenset({annotation})


_KINDS: dict[tuple[type, str], frozenset[Any]] = {}


class InputModel(BaseModel):
    """Writes name every field they accept: an injected ``status`` or ``role`` is refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_lax_coercion(cls, value: Any, info: ValidationInfo) -> Any:
        # Pydantic reads JSON true as 1 and 0 as 1970-01-01; a client sending either has a bug,
        # and storing unit 1 or the epoch would hide it. Form strings ("1", "2026-11-23") still parse.
        name = info.field_name or ""
        kinds = _KINDS.get((cls, name))
        if kinds is None:
            field = cls.model_fields.get(name)
            kinds = _KINDS[(cls, name)] = _scalar_kinds(field.annotation) if field else frozenset()
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, bool) and int in kinds and bool not in kinds:
                raise ValueError("须为整数，不能是 true/false")
            if (
                isinstance(item, int | float)
                and not isinstance(item, bool)
                and dt.date in kinds
                and dt.datetime not in kinds
            ):
                raise ValueError("日期格式须为 YYYY-MM-DD")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the driver.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("不能包含空字符 (NUL)")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ID:
            raise ValueError(f"数值超出范围 (最大 {MAX_ID})")
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
