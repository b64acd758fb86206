"""Shared API shapes: pages of items and input models that refuse unknown fields."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class InputModel(BaseModel):
    """Writes name every field they accept: an injected ``status`` or ``role`` is refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

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
