"""Shell pages: login, logout, home, language switch."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlparse

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import auth, i18n
from eqian.core.accounts import ROLE_LABELS_ZH
from eqian.core.config import Settings
from eqian.core.errors import Unauthorized
from eqian.organizations import service as org_service
from eqian.web.deps import SESSION_COOKIE, client_ip, get_auth, get_db, get_settings
from eqian.web.headers import LANG_COOKIE
from eqian.web.routing import Router

router = Router(include_in_schema=False)
LOGIN_CSRF_COOKIE = "eqian_login_csrf"


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login would be a phishing aid.
    if not target or not target.startswith("/") or target.startswith("//") or urlparse(target).netloc:
        return "/"
    return target


def render(
    request: Request, template: str, context: dict[str, object], status_code: int = 200
) -> HTMLResponse:
    templates = request.app.state.templates
    base = {
        "principal": getattr(request.state, "principal", None),
        "csrf_token": getattr(request.state, "csrf_token", None),
        "lang": getattr(request.state, "lang", "zh"),
        "role_labels": ROLE_LABELS_ZH,
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, template, base | context, status_code=status_code
    )
    return response


def _login_form(
    request: Request, *, error: str | None, username: str, next_url: str, status: int
) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"error": error, "username": username, "next": next_url, "login_csrf": csrf},
        status_code=status,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, error=None, username="", next_url=_safe_next(next), status=200)


@router.post("/login")
async def login_submit(
    request: Request,
    username: str = Form(max_length=64),
    password: str = Form(max_length=256),
    csrf_token: str = Form(default="", max_length=64),
    next: str = Form(default="/", max_length=512),
    db: AsyncSession = Depends(get_db),
    settings: Settings = Depends(get_settings),
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_form(
            request,
            error=i18n.gettext("页面已过期，请重新提交"),
            username=username,
            next_url=_safe_next(next),
            status=403,
        )
    try:
        issued = await auth.login(db, settings, username, password, kind="cookie", ip=client_ip(request))
    except Unauthorized as exc:
        return _login_form(
            request, error=exc.message, username=username, next_url=_safe_next(next), status=401
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        httponly=True,
        samesite="lax",
        secure=settings.env == "production",
        max_age=settings.session_absolute_minutes * 60,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout_submit(
    resolved: auth.Resolved = Depends(get_auth), db: AsyncSession = Depends(get_db)
) -> Response:
    await auth.logout(db, resolved.auth.id, resolved.principal)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
async def switch_language(code: str, next: str | None = None) -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax")
    return response


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request, resolved: auth.Resolved = Depends(get_auth), db: AsyncSession = Depends(get_db)
) -> Response:
    actor = resolved.principal
    stations = await org_service.list_stations(db, actor)
    _, unit_total = await org_service.list_units(db, actor, org_service.UnitFilters(limit=1))
    return render(request, "home.html", {"stations": stations, "unit_total": unit_total})
