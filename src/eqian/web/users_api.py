"""User administration API (bureau admin; station officers read their station's accounts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import users
from eqian.core.accounts import ROLE_LABELS_ZH, Role
from eqian.core.errors import field_error
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, InputModel, Limit, Offset
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1/users", tags=["users"])

AnchorId = int | None


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    station_id: int | None
    unit_id: int | None
    service_point_id: int | None
    team_id: int | None
    zone_id: int | None
    is_active: bool
    locked: bool
    created_at: dt.datetime
    password_changed_at: dt.datetime
    live_sessions: int


class UserPage(BaseModel):
    items: list[UserOut]
    total: int


class UserIn(InputModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    display_name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)
    role: Role
    station_id: AnchorId = Field(default=None, ge=1)
    unit_id: AnchorId = Field(default=None, ge=1)
    service_point_id: AnchorId = Field(default=None, ge=1)
    team_id: AnchorId = Field(default=None, ge=1)
    zone_id: AnchorId = Field(default=None, ge=1)


class UserPatch(InputModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=128)
    role: Role | None = None
    station_id: AnchorId = Field(default=None, ge=1)
    unit_id: AnchorId = Field(default=None, ge=1)
    service_point_id: AnchorId = Field(default=None, ge=1)
    team_id: AnchorId = Field(default=None, ge=1)
    zone_id: AnchorId = Field(default=None, ge=1)
    is_active: bool | None = None


class PasswordReset(InputModel):
    new_password: str = Field(min_length=1, max_length=256)


def _out(row: dict[str, Any]) -> UserOut:
    return UserOut(role_label=ROLE_LABELS_ZH[Role(row["role"])], **row)


@router.get("", response_model=UserPage)
async def list_users(
    role: Role | None = None,
    station_id: IdQuery = None,
    is_active: bool | None = None,
    q: str | None = Query(default=None, max_length=64),
    limit: Limit = 50,
    offset: Offset = 0,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> UserPage:
    filters = users.UserFilters(
        role=role, station_id=station_id, is_active=is_active, q=q, limit=limit, offset=offset
    )
    page = await users.list_users(db, actor, filters)
    return UserPage(items=[_out(r) for r in page["items"]], total=page["total"])


@router.post("", response_model=UserOut, status_code=201)
async def create_user(
    body: UserIn, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> UserOut:
    return _out(await users.create_user(db, actor, body.model_dump()))


@router.get("/{user_id}", response_model=UserOut)
async def get_user(
    user_id: IdPath, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> UserOut:
    return _out(await users.get_user(db, actor, user_id))


@router.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user_id: IdPath,
    body: UserPatch,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> UserOut:
    """Only the fields sent change; an anchor sent as null is cleared. Role, anchor or status
    changes end every session of the user (HTTP and WebSocket)."""
    changes = body.model_dump(include=body.model_fields_set)
    for key in ("display_name", "role", "is_active"):
        if key in changes and changes[key] is None:
            raise field_error(key, "不能为空", "required")
    return _out(await users.update_user(db, actor, user_id, changes))


@router.post("/{user_id}/reset-password", status_code=204)
async def reset_password(
    user_id: IdPath,
    body: PasswordReset,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> None:
    await users.reset_password(db, actor, user_id, body.new_password)
