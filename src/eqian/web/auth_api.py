"""Auth endpoints: OAuth2 password flow, logout, current user, password change."""

from __future__ import annotations

import datetime as dt

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import auth
from eqian.core.accounts import ROLE_LABELS_ZH
from eqian.core.config import Settings
from eqian.core.schemas import InputModel
from eqian.web.deps import client_ip, get_auth, get_db, get_settings
from eqian.web.routing import Router

router = Router(prefix="/api/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth2 token type, not a secret
    expires_at: dt.datetime


class MeOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    scope: str
    station_ids: list[int]
    unit_ids: list[int]
    service_point_ids: list[int]
    team_ids: list[int]


class PasswordChange(InputModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


@router.post("/token", response_model=TokenOut)
async def issue_token(
    request: Request,
    form: OAuth2PasswordRequestForm = Depends(),
    db: AsyncSession = Depends(get_db),
    settings: Settings = Depends(get_settings),
) -> TokenOut:
    issued = await auth.login(
        db, settings, form.username, form.password, kind="bearer", ip=client_ip(request)
    )
    return TokenOut(access_token=issued.token, expires_at=issued.expires_at)


@router.post("/logout", status_code=204)
async def logout(resolved: auth.Resolved = Depends(get_auth), db: AsyncSession = Depends(get_db)) -> None:
    await auth.logout(db, resolved.auth.id, resolved.principal)


@router.get("/me", response_model=MeOut)
async def me(resolved: auth.Resolved = Depends(get_auth)) -> MeOut:
    p = resolved.principal
    return MeOut(
        id=p.user_id,
        username=p.username,
        display_name=p.display_name,
        role=p.role.value,
        role_label=ROLE_LABELS_ZH[p.role],
        scope=p.scope.kind.value,
        station_ids=sorted(p.scope.station_ids),
        unit_ids=sorted(p.scope.unit_ids),
        service_point_ids=sorted(p.scope.service_point_ids),
        team_ids=sorted(p.scope.team_ids),
    )


@router.post("/password", status_code=204)
async def change_password(
    body: PasswordChange, resolved: auth.Resolved = Depends(get_auth), db: AsyncSession = Depends(get_db)
) -> None:
    await auth.change_password(db, resolved.principal, resolved.auth.id, body.old_password, body.new_password)
