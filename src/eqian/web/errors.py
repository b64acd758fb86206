"""One error shape for the API ({"error": {code, message, details}}) and friendly pages for browsers."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from eqian.core.errors import AppError

log = logging.getLogger("eqian.web")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}
_HTTP_MESSAGES = {404: "页面或资源不存在", 405: "不支持的请求方法", 401: "请先登录", 403: "无权访问"}


def wants_html(request: Request) -> bool:
    if request.url.path.startswith(("/api/", "/ws", "/healthz", "/openapi.json")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[Any],
    extra_headers: dict[str, str] | None = None,
) -> Response:
    is_api = request.url.path.startswith("/api/")
    if wants_html(request) or (request.headers.get("HX-Request") and not is_api):
        if status == 401:
            login = f"/login?next={quote(request.url.path)}"
            if request.headers.get("HX-Request"):
                # A redirect would be followed by htmx and the login page swapped into a table cell.
                return Response(status_code=401, headers={"HX-Redirect": login})
            return RedirectResponse(login, status_code=303)
        templates = request.app.state.templates
        page: Response = templates.TemplateResponse(
            request, "error.html", {"status": status, "code": code, "message": message}, status_code=status
        )
        return page
    headers = dict(extra_headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status, headers=headers
    )


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie", "form")]
    return ".".join(parts) or str(loc[-1] if loc else "")


def _allowed_methods(request: Request) -> list[str]:
    # Starlette names only the first route that matched the path; a path served by several
    # routes (GET and POST /api/v1/units) must list them all.
    methods: set[str] = set()
    pending: list[Any] = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        inner = getattr(route, "original_router", None)  # FastAPI wraps included routers
        if inner is not None:
            pending.extend(inner.routes)
            continue
        if isinstance(route, APIRoute | Route) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(route.methods or ())
    return sorted(methods)


# What every refusal carries; FastAPI would otherwise document its own 422 body ({"detail": [...]}),
# which this app never sends, and clients generated from the document would mis-read refusals.
ERROR_ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "ErrorEnvelope",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
        }
    },
}


def _document_error_envelope(app: FastAPI) -> None:
    build = app.openapi
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}

    def openapi() -> dict[str, Any]:
        doc = build()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorEnvelope" in schemas:
            return doc  # the cached document, already completed
        schemas["ErrorEnvelope"] = ERROR_ENVELOPE_SCHEMA
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = ERROR_ENVELOPE_SCHEMA
            schemas.pop("ValidationError", None)
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                # A body that cannot be parsed at all (or names an object that is gone) is a 400.
                if "requestBody" in operation:
                    operation["responses"].setdefault(
                        "400", {"description": "请求体无法解析或引用的对象不存在", "content": envelope}
                    )
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _document_error_envelope(app)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return error_response(request, exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {
                "field": _field_of(tuple(e.get("loc", ()))),
                "code": e.get("type", "invalid"),
                "message": str(e.get("msg", "")).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        fields = ", ".join(d["field"] for d in details)
        return error_response(request, 422, "validation_error", f"请求参数有误: {fields}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return error_response(request, exc.status_code, code, message, [], headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error", "服务器内部错误，请稍后重试", [])
