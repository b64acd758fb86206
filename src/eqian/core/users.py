"""User administration: list, create, change role, anchors and status, reset a password.

Only the bureau administers accounts; a station officer may read its own station's accounts.
Any change of what a user may see or do (role, an anchor, disabling) and a password reset ends
every session of that user in the same transaction, and open WebSockets are told after the commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, auth
from eqian.core.accounts import AuthSession, Role, User
from eqian.core.errors import AppError, Forbidden, NotFound, field_error
from eqian.core.passwords import check_policy, hash_password
from eqian.core.permissions import Principal
from eqian.organizations.models import ServicePoint, Unit

ANCHORS = ("station_id", "unit_id", "service_point_id", "team_id", "zone_id")
# Fields whose change alters the user's jurisdiction or rights: their sessions end.
_RIGHTS = frozenset({"role", *ANCHORS})


@dataclass(frozen=True)
class UserFilters:
    role: Role | None = None
    station_id: int | None = None
    is_active: bool | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


def _visible(actor: Principal) -> ColumnElement[bool]:
    if actor.role is Role.BUREAU_ADMIN:
        return User.id.is_not(None)
    if actor.role is Role.STATION_OFFICER and actor.scope.station_ids:
        stations = actor.scope.station_ids
        return or_(
            User.station_id.in_(stations),
            User.unit_id.in_(select(Unit.id).where(Unit.station_id.in_(stations))),
            User.service_point_id.in_(select(ServicePoint.id).where(ServicePoint.station_id.in_(stations))),
        )
    return false()


def _require_reader(actor: Principal) -> None:
    actor.require_role(Role.BUREAU_ADMIN, Role.STATION_OFFICER)


async def _live_sessions(session: AsyncSession, user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    now = dt.datetime.now(dt.UTC)
    rows = await session.execute(
        select(AuthSession.user_id, func.count())
        .where(
            AuthSession.user_id.in_(user_ids),
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .group_by(AuthSession.user_id)
    )
    return {int(uid): int(n) for uid, n in rows.all()}


def _out(user: User, live: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        **{a: getattr(user, a) for a in ANCHORS},
        "is_active": user.is_active,
        "locked": user.locked_until is not None and user.locked_until > now,
        "created_at": user.created_at,
        "password_changed_at": user.password_changed_at,
        "live_sessions": live,
    }


async def list_users(session: AsyncSession, actor: Principal, filters: UserFilters) -> dict[str, Any]:
    _require_reader(actor)
    where = [_visible(actor)]
    if filters.role is not None:
        where.append(User.role == filters.role.value)
    if filters.station_id is not None:
        where.append(User.station_id == filters.station_id)
    if filters.is_active is not None:
        where.append(User.is_active.is_(filters.is_active))
    if filters.q:
        pattern = f"%{filters.q.replace('%', '').replace('_', '')}%"
        where.append(or_(User.username.ilike(pattern), User.display_name.ilike(pattern)))
    total = await session.scalar(select(func.count()).select_from(User).where(*where)) or 0
    users = list(
        await session.scalars(
            select(User).where(*where).order_by(User.username).limit(filters.limit).offset(filters.offset)
        )
    )
    live = await _live_sessions(session, [u.id for u in users])
    return {"items": [_out(u, live.get(u.id, 0)) for u in users], "total": total}


async def _load(session: AsyncSession, actor: Principal, user_id: int) -> User:
    user = await session.scalar(select(User).where(User.id == user_id, _visible(actor)))
    if user is None:
        raise NotFound("用户不存在", code="not_found")
    return user


async def get_user(session: AsyncSession, actor: Principal, user_id: int) -> dict[str, Any]:
    _require_reader(actor)
    user = await _load(session, actor, user_id)
    live = await _live_sessions(session, [user.id])
    return _out(user, live.get(user.id, 0))


async def create_user(session: AsyncSession, actor: Principal, fields: dict[str, Any]) -> dict[str, Any]:
    actor.require_role(Role.BUREAU_ADMIN)
    user = await auth.create_user(
        session,
        actor,
        username=fields["username"],
        display_name=fields["display_name"],
        password=fields["password"],
        role=Role(fields["role"]),
        station_id=fields.get("station_id"),
        unit_id=fields.get("unit_id"),
        service_point_id=fields.get("service_point_id"),
        team_id=fields.get("team_id"),
        zone_id=fields.get("zone_id"),
    )
    return _out(user, 0)


def _check_anchor(role: Role, values: dict[str, Any]) -> None:
    needed = auth._ANCHOR_BY_ROLE.get(role)
    if needed and values.get(needed) is None:
        raise field_error(needed, f"角色 {role.value} 必须指定 {needed}", "required")


async def update_user(
    session: AsyncSession, actor: Principal, user_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply the given fields; a change of role, anchor or a disable ends the user's sessions."""
    if actor.role is Role.STATION_OFFICER:
        await _load(session, actor, user_id)  # out of the station's sight stays a 404
    actor.require_role(Role.BUREAU_ADMIN)
    user = await _load(session, actor, user_id)
    if "role" in changes:
        changes = {**changes, "role": Role(changes["role"]).value}
    diff = {k: [getattr(user, k), v] for k, v in changes.items() if getattr(user, k) != v}
    if user.id == actor.user_id and ("is_active" in diff or "role" in diff):
        # The last administrator locking themselves out would leave nobody to undo it.
        field = "is_active" if "is_active" in diff else "role"
        raise field_error(field, "不能停用自己的账户或更改自己的角色", "self_lockout")
    if not diff:
        live = await _live_sessions(session, [user.id])
        return _out(user, live.get(user.id, 0))
    after = {a: getattr(user, a) for a in ANCHORS} | {k: v[1] for k, v in diff.items()}
    _check_anchor(Role(after.get("role", user.role)), after)
    for key, (_, new) in diff.items():
        setattr(user, key, new)
    ends = bool(_RIGHTS & diff.keys()) or diff.get("is_active", [None, True])[1] is False
    try:
        await session.flush()
    except IntegrityError as exc:  # a dangling anchor id violates a foreign key
        await session.rollback()
        raise AppError("关联的组织不存在", code="invalid_reference") from exc
    revoked = await auth.revoke_sessions(session, user.id) if ends else 0
    await audit.record_action(
        session,
        actor,
        "user.update",
        "user",
        user.id,
        {**diff, **({"sessions_revoked": revoked} if ends else {})},
    )
    await session.commit()
    if ends:
        await auth.announce_revoked(user.id)
    return _out(user, 0 if ends else (await _live_sessions(session, [user.id])).get(user.id, 0))


async def reset_password(session: AsyncSession, actor: Principal, user_id: int, new_password: str) -> None:
    """An administrator sets a new password: the lockout is lifted and every session ends."""
    if actor.role is Role.STATION_OFFICER:
        await _load(session, actor, user_id)
    actor.require_role(Role.BUREAU_ADMIN)
    user = await _load(session, actor, user_id)
    if user.id == actor.user_id:
        raise Forbidden("请通过修改密码更改自己的密码（需要原密码）", code="use_password_change")
    check_policy(new_password, field="new_password", username=user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = dt.datetime.now(dt.UTC)
    user.failed_logins = 0
    user.locked_until = None
    revoked = await auth.revoke_sessions(session, user.id)
    await audit.record_action(
        session, actor, "user.password_reset", "user", user.id, {"sessions_revoked": revoked}
    )
    await session.commit()
    await auth.announce_revoked(user.id)
