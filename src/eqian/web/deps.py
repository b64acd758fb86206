"""Request dependencies: database session, the authenticated principal, CSRF for cookie sessions."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import auth
from eqian.core.config import Settings
from eqian.core.errors import Forbidden, Unauthorized
from eqian.core.permissions import Principal

SESSION_COOKIE = auth.SESSION_COOKIE
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_settings(request: Request) -> Settings:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hand-off (and a
    # GIL contention) on every authenticated request for one attribute read.
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    factory = (
        request.app.state.sessionmaker
        if request.method in SAFE_METHODS
        else request.app.state.write_sessionmaker
    )
    async with factory() as session:
        yield session


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _csrf_ok(request: Request, expected: str | None) -> bool:
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        supplied = value if isinstance(value, str) else None
    # Compared as bytes: compare_digest refuses non-ASCII str, and a client may send anything.
    return bool(expected and supplied and hmac.compare_digest(expected.encode(), supplied.encode()))


async def get_auth(
    request: Request,
    token: str | None = Depends(oauth2_scheme),
) -> auth.Resolved:
    """Bearer token first (API clients), else the page session cookie, which must carry CSRF on writes."""
    return await authenticate(request, token)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, as ``oauth2_scheme`` reads it."""
    scheme, _, param = request.headers.get("Authorization", "").partition(" ")
    return (param.strip() or None) if scheme.lower() == "bearer" else None


async def authenticate(request: Request, token: str | None) -> auth.Resolved:
    """``get_auth`` as a plain function, for a route that resolves its own parameters (``web.lean``).

    The session is looked up on a connection of its own, returned at once (``auth_sessionmaker``:
    autocommit on PostgreSQL, a read session on SQLite), not inside the request's transaction:
    a request whose work is written elsewhere (an incident, by the intake batcher) then costs one
    round trip here instead of BEGIN, SELECT and ROLLBACK, and on SQLite a write request does not
    take the write lock before it knows who is asking. A token this worker resolved in the last
    ``auth_cache_seconds`` is not looked up again (``core.session_cache``: dropped when sessions end).
    """
    settings: Settings = request.app.state.settings
    # "Authorization: Bearer " with nothing after it reads as no token: the cookie then needs its CSRF.
    token = token or None
    ip = client_ip(request)
    kind = "bearer" if token else "cookie"
    credential = token or request.cookies.get(SESSION_COOKIE)
    if not credential:
        raise Unauthorized("请先登录", code="not_authenticated")
    resolved = auth.resolve_cached(settings, credential, kind=kind, ip=ip)
    if resolved is None:
        async with request.app.state.auth_sessionmaker() as session:
            resolved = await auth.resolve_token(session, settings, credential, kind=kind, ip=ip)
    if (
        token is None
        and request.method not in SAFE_METHODS
        and not await _csrf_ok(request, resolved.auth.csrf_token)
    ):
        raise Forbidden("CSRF 校验失败，请刷新页面后重试", code="csrf_failed")
    request.state.principal = resolved.principal
    request.state.csrf_token = resolved.auth.csrf_token
    return resolved


async def get_principal(resolved: auth.Resolved = Depends(get_auth)) -> Principal:
    return resolved.principal
