"""Login, lockout, sessions and password changes."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, replace

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, pubsub
from eqian.core.accounts import AuthSession, Role, User
from eqian.core.config import Settings
from eqian.core.errors import AppError, Unauthorized, ValidationFailed, field_error
from eqian.core.passwords import check_policy, hash_password, needs_rehash, verify_password
from eqian.core.permissions import Principal
from eqian.core.session_cache import SessionCache

# One message for unknown user, wrong password and locked account, so a caller cannot tell
# which accounts exist or which are locked.
LOGIN_FAILED = "用户名或密码错误，或账户已被临时锁定（连续失败 5 次锁定 15 分钟）"
# The page session cookie; read by the request dependencies, the /ws hub and the rate limiter.
SESSION_COOKIE = "eqian_session"


# Published after a commit that ends sessions, so every worker's /ws hub closes those sockets at
# once instead of at their next frame: {"auth_id": n} for one session, {"user_id": n,
# "except_auth_id": m | None} for a user's sessions.
SESSIONS_TOPIC = "auth.sessions_ended"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class IssuedSession:
    token: str
    csrf_token: str
    expires_at: dt.datetime
    user: User


async def authenticate(
    session: AsyncSession, settings: Settings, username: str, password: str, ip: str | None
) -> User:
    """Check a password; count failures and lock after too many. Commits either way."""
    user = await session.scalar(select(User).where(User.username == username))
    now = _now()
    if user is None:
        verify_password(None, password)  # same cost as a real check
        await audit.record(
            session,
            actor_id=None,
            actor_name=username[:64],
            action="login.failed",
            entity="user",
            changes={"reason": "unknown_user"},
            ip=ip,
        )
        await session.commit()
        raise Unauthorized(LOGIN_FAILED, code="login_failed")
    locked = user.locked_until is not None and user.locked_until > now
    ok = verify_password(user.password_hash, password)
    if locked or not ok or not user.is_active:
        reason = "locked" if locked else ("inactive" if ok else "bad_password")
        if not locked and not ok:
            user.failed_logins += 1
            if user.failed_logins >= settings.login_max_failures:
                user.locked_until = now + dt.timedelta(minutes=settings.login_lock_minutes)
                user.failed_logins = 0
                reason = "locked_now"
        await audit.record(
            session,
            actor_id=user.id,
            actor_name=user.username,
            action="login.failed",
            entity="user",
            entity_id=user.id,
            changes={"reason": reason},
            ip=ip,
        )
        await session.commit()
        raise Unauthorized(LOGIN_FAILED, code="login_failed")
    user.failed_logins = 0
    user.locked_until = None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


async def open_session(
    session: AsyncSession, settings: Settings, user: User, *, kind: str, ip: str | None
) -> IssuedSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    minutes = settings.token_ttl_minutes if kind == "bearer" else settings.session_absolute_minutes
    expires = _now() + dt.timedelta(minutes=minutes)
    session.add(
        AuthSession(
            token_hash=token_digest(token),
            user_id=user.id,
            kind=kind,
            csrf_token=csrf,
            expires_at=expires,
            ip=ip,
        )
    )
    await audit.record(
        session,
        actor_id=user.id,
        actor_name=user.username,
        action="login.success",
        entity="user",
        entity_id=user.id,
        changes={"kind": kind},
        ip=ip,
    )
    await session.commit()
    return IssuedSession(token=token, csrf_token=csrf, expires_at=expires, user=user)


async def login(
    session: AsyncSession, settings: Settings, username: str, password: str, *, kind: str, ip: str | None
) -> IssuedSession:
    user = await authenticate(session, settings, username, password, ip)
    return await open_session(session, settings, user, kind=kind, ip=ip)


@dataclass(frozen=True)
class Resolved:
    principal: Principal
    auth: AuthSession
    user: User


# Each worker's resolved tokens, emptied whenever sessions end (core.session_cache).
resolved_sessions: SessionCache[Resolved] = SessionCache(SESSIONS_TOPIC)


def _live(auth: AuthSession, user: User, kind: str, now: dt.datetime, settings: Settings) -> bool:
    idle_limit = dt.timedelta(minutes=settings.session_idle_minutes)
    return not (
        auth.revoked_at is not None
        or auth.expires_at <= now
        or not user.is_active
        or (kind == "cookie" and now - auth.last_seen_at > idle_limit)
    )


async def _touch(session: AsyncSession, ids: list[int], now: dt.datetime) -> None:
    # Touch at most once a minute: a write on every request would serialise readers on SQLite.
    # The read transaction ends first, so the update starts a transaction of its own and waits
    # for the write lock instead of failing on a stale snapshot.
    if not ids:
        return
    await session.commit()
    await session.execute(update(AuthSession).where(AuthSession.id.in_(ids)).values(last_seen_at=now))
    await session.commit()


async def resolve_token(
    session: AsyncSession, settings: Settings, token: str, *, kind: str, ip: str | None
) -> Resolved:
    """The live session behind a token, or Unauthorized. Cookie sessions also expire when idle."""
    generation = resolved_sessions.generation
    digest = token_digest(token)
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.token_hash == digest, AuthSession.kind == kind)
        )
    ).first()
    now = _now()
    if row is None or not _live(row[0], row[1], kind, now, settings):
        raise Unauthorized("登录已失效，请重新登录", code="invalid_token")
    auth, user = row
    if now - auth.last_seen_at > dt.timedelta(minutes=1):
        await _touch(session, [auth.id], now)
    resolved = Resolved(principal=Principal.of(user, ip=ip), auth=auth, user=user)
    if settings.auth_cache_seconds > 0:
        resolved_sessions.put((digest, kind), resolved, generation)
    return resolved


def resolve_cached(settings: Settings, token: str, *, kind: str, ip: str | None) -> Resolved | None:
    """What ``resolve_token`` gave for this token a moment ago, if it is still live; else None (ask
    the database: the session may have ended, or it is simply not kept)."""
    if settings.auth_cache_seconds <= 0:
        return None
    kept = resolved_sessions.get((token_digest(token), kind), settings.auth_cache_seconds)
    if kept is None or not _live(kept.auth, kept.user, kind, _now(), settings):
        return None
    return kept if kept.principal.ip == ip else replace(kept, principal=replace(kept.principal, ip=ip))


async def resolve_tokens(
    session: AsyncSession, settings: Settings, wanted: list[tuple[str, str, str | None]]
) -> list[Resolved | None]:
    """``resolve_token`` for many (token, kind, ip) at once — sockets opening in the same instant —
    in one query and one touch; ``None`` where ``resolve_token`` would refuse."""
    digests = {token_digest(token) for token, _, _ in wanted}
    rows = await session.execute(
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.token_hash.in_(digests))
    )
    found = {(a.token_hash, a.kind): (a, u) for a, u in rows}
    now = _now()
    out: list[Resolved | None] = []
    stale: set[int] = set()
    for token, kind, ip in wanted:
        row = found.get((token_digest(token), kind))
        if row is None or not _live(row[0], row[1], kind, now, settings):
            out.append(None)
            continue
        auth, user = row
        if now - auth.last_seen_at > dt.timedelta(minutes=1):
            stale.add(auth.id)
        out.append(Resolved(principal=Principal.of(user, ip=ip), auth=auth, user=user))
    await _touch(session, sorted(stale), now)
    return out


async def logout(session: AsyncSession, auth_session_id: int, principal: Principal) -> None:
    await session.execute(
        update(AuthSession).where(AuthSession.id == auth_session_id).values(revoked_at=_now())
    )
    await audit.record(
        session,
        actor_id=principal.user_id,
        actor_name=principal.username,
        action="logout",
        entity="user",
        entity_id=principal.user_id,
        ip=principal.ip,
    )
    await session.commit()
    resolved_sessions.clear()  # here at once; the other workers when the message reaches them
    await pubsub.publish(SESSIONS_TOPIC, {"auth_id": auth_session_id})


async def revoke_sessions(session: AsyncSession, user_id: int, *, except_auth_id: int | None = None) -> int:
    """End every live session of a user (inside the caller's transaction); the count ended.

    Call ``announce_revoked`` after the commit so open WebSockets close at once.
    """
    query = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if except_auth_id is not None:
        query = query.where(AuthSession.id != except_auth_id)
    result = await session.execute(query.values(revoked_at=_now()))
    return int(getattr(result, "rowcount", 0) or 0)


async def announce_revoked(user_id: int, *, except_auth_id: int | None = None) -> None:
    resolved_sessions.clear()
    await pubsub.publish(SESSIONS_TOPIC, {"user_id": user_id, "except_auth_id": except_auth_id})


async def change_password(
    session: AsyncSession, principal: Principal, current_auth_id: int, old_password: str, new_password: str
) -> None:
    """Changing the password ends every other session of the user."""
    user = await session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("登录已失效，请重新登录", code="invalid_token")
    if not verify_password(user.password_hash, old_password):
        raise field_error("old_password", "原密码错误", "wrong_password")
    if new_password == old_password:
        raise field_error("new_password", "新密码不能与原密码相同", "password_reused")
    check_policy(new_password, username=user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = _now()
    await revoke_sessions(session, user.id, except_auth_id=current_auth_id)
    await audit.record(
        session,
        actor_id=user.id,
        actor_name=user.username,
        action="user.password_change",
        entity="user",
        entity_id=user.id,
        ip=principal.ip,
    )
    await session.commit()
    await announce_revoked(principal.user_id, except_auth_id=current_auth_id)


_ANCHOR_BY_ROLE = {
    Role.STATION_OFFICER: "station_id",
    Role.UNIT_SECURITY: "unit_id",
    Role.MEDIATOR: "team_id",
    Role.SERVICE_POINT_STAFF: "service_point_id",
    Role.PARTNER_OFFICER: "zone_id",
}


async def create_user(
    session: AsyncSession,
    actor: Principal,
    *,
    username: str,
    display_name: str,
    password: str,
    role: Role,
    station_id: int | None = None,
    unit_id: int | None = None,
    service_point_id: int | None = None,
    team_id: int | None = None,
    zone_id: int | None = None,
    check_password: bool = True,
) -> User:
    actor.require_role(Role.BUREAU_ADMIN)
    if check_password:
        check_policy(password, field="password", username=username)
    anchors = {
        "station_id": station_id,
        "unit_id": unit_id,
        "service_point_id": service_point_id,
        "team_id": team_id,
        "zone_id": zone_id,
    }
    needed = _ANCHOR_BY_ROLE.get(role)
    if needed and anchors[needed] is None:
        raise field_error(needed, f"角色 {role.value} 必须指定 {needed}", "required")
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValidationFailed(
            "用户名已存在",
            code="duplicate_username",
            details=[{"field": "username", "code": "duplicate", "message": "用户名已存在"}],
        )
    user = User(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role.value,
        **anchors,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a dangling anchor id violates a foreign key
        await session.rollback()
        raise AppError("关联的组织不存在", code="invalid_reference") from exc
    await audit.record(
        session,
        actor_id=actor.user_id or None,
        actor_name=actor.username,
        action="user.create",
        entity="user",
        entity_id=user.id,
        changes={"username": username, "role": role.value, **{k: v for k, v in anchors.items() if v}},
        ip=actor.ip,
    )
    await session.commit()
    return user
