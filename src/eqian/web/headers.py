"""Per-request language and response headers, as a pure ASGI middleware.

It was ``@app.middleware("http")`` (Starlette's ``BaseHTTPMiddleware``), which runs the rest of the
application in a task group of its own with memory streams between them for every request: a
noticeable share of a worker's time per request under load (bench/intake.py). Here the language
is put into a context variable and the scope's state, and the headers into the response's start
message, in the request's own task.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eqian.core import i18n

LANG_COOKIE = "eqian_lang"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Everything is served from this origin: police networks are air-gapped, so no CDN is allowed anyway.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
}


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            return cookie_parser(value.decode("latin-1")).get(name)
    return None


class LanguageAndHeaders:
    def __init__(self, app: ASGIApp, default_language: str) -> None:
        self.app = app
        self.default_language = default_language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lang = i18n.pick_language(_cookie(scope, LANG_COOKIE), None, self.default_language)
        scope.setdefault("state", {})["lang"] = lang
        # Pages and API answers carry personal data: no browser or proxy may keep them.
        no_store = not scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
                if no_store:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        token = i18n.current_language.set(lang)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            i18n.current_language.reset(token)
