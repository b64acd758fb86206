"""Rate limits: fixed windows per (class, key), in Redis when configured, else in this process.

Classes and keys (limits in ``Settings.rate_limit_*``):

- ``login``: failed logins per client address and per username (successful logins never count,
  so a busy office behind one address is not locked out by its own colleagues);
- ``intake``: incident POSTs per session credential;
- ``reveal``: personal-data reveals per session credential (per hour);
- ``write``: every other non-safe request per session credential;
- ``denied``: 401 answers per address and 403 answers per credential; above it the caller is
  answered 429 before any work, which bounds the ``access.denied`` rows a flood can add.

A credential is the SHA-256 of the bearer token or session cookie: checking it costs no database
read, and a user's sessions are themselves bounded by the login limit. Above a limit the answer is
429 ``rate_limited`` with ``Retry-After``. If Redis fails the limiter lets the request through and
logs a warning: an outage of the limiter must not become an outage of the platform.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import redis.asyncio as aioredis

from eqian.core.auth import SESSION_COOKIE
from eqian.core.config import Settings
from eqian.core.pubsub import split_prefix

log = logging.getLogger("eqian.ratelimit")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATHS = frozenset({"/api/v1/auth/token", "/login"})
INTAKE_PATH = "/api/v1/incidents"
_MAX_LOGIN_BODY = 64 * 1024
_WARN_EVERY = 60.0


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window: int  # seconds


class Limiter(Protocol):
    async def hit(self, rule: Rule, key: str) -> tuple[bool, int]:
        """Count one event; (allowed, seconds until the window ends)."""

    async def over(self, checks: list[tuple[Rule, str]]) -> int:
        """Without counting: 0 when every (rule, key) is under its limit, else seconds to wait."""

    async def close(self) -> None: ...


def _window(rule: Rule, now: float) -> tuple[int, int]:
    index = int(now // rule.window)
    retry = max(1, int((index + 1) * rule.window - now + 0.999))
    return index, retry


class MemoryLimiter:
    """One process's counters: enough for a single worker; several workers need Redis."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        # (class, key, window index) -> (count, when the window ends)
        self._counts: dict[tuple[str, str, int], tuple[int, float]] = {}
        self._swept = 0.0

    def _sweep(self, now: float) -> None:
        # Ended windows are dropped once a minute, so memory is bounded by the live keys.
        if now - self._swept < 60:
            return
        self._swept = now
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}

    async def hit(self, rule: Rule, key: str) -> tuple[bool, int]:
        now = self.clock()
        self._sweep(now)
        index, retry = _window(rule, now)
        slot = (rule.name, key, index)
        count = self._counts.get(slot, (0, 0.0))[0] + 1
        self._counts[slot] = (count, (index + 1) * rule.window)
        return count <= rule.limit, retry

    async def over(self, checks: list[tuple[Rule, str]]) -> int:
        now = self.clock()
        wait = 0
        for rule, key in checks:
            index, retry = _window(rule, now)
            if self._counts.get((rule.name, key, index), (0, 0.0))[0] >= rule.limit:
                wait = max(wait, retry)
        return wait

    async def close(self) -> None:
        self._counts.clear()


# INCR and EXPIRE in one step: a key never outlives its window even if the client dies between them.
_HIT_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisLimiter:
    """Counters shared by every worker and host, one Redis key per (class, key, window)."""

    def __init__(
        self, url: str, prefix: str, *, timeout: float = 0.5, clock: Callable[[], float] = time.time
    ) -> None:
        self.prefix = prefix
        self.clock = clock
        self.client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._script = self.client.register_script(_HIT_SCRIPT)
        self._warned = 0.0

    def _key(self, rule: Rule, key: str, index: int) -> str:
        return f"{self.prefix}rl:{rule.name}:{key}:{index}"

    def _fail_open(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned > _WARN_EVERY:
            self._warned = now
            log.warning("rate limiter: Redis unavailable (%s); requests are let through unlimited", exc)

    async def hit(self, rule: Rule, key: str) -> tuple[bool, int]:
        index, retry = _window(rule, self.clock())
        try:
            count = int(await self._script(keys=[self._key(rule, key, index)], args=[rule.window + 1]))
        except Exception as exc:  # any Redis or network error: fail open
            self._fail_open(exc)
            return True, retry
        return count <= rule.limit, retry

    async def over(self, checks: list[tuple[Rule, str]]) -> int:
        if not checks:
            return 0
        now = self.clock()
        windows = [_window(rule, now) for rule, _ in checks]
        keys = [self._key(rule, key, w[0]) for (rule, key), w in zip(checks, windows, strict=True)]
        try:
            values = await self.client.mget(keys)
        except Exception as exc:
            self._fail_open(exc)
            return 0
        wait = 0
        for (rule, _), (_, retry), value in zip(checks, windows, values, strict=True):
            if value is not None and int(value) >= rule.limit:
                wait = max(wait, retry)
        return wait

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except Exception:  # closing a broken connection must not fail a shutdown
            log.debug("rate limiter: closing Redis failed", exc_info=True)


@dataclass(frozen=True)
class Rules:
    login_ip: Rule
    login_user: Rule
    intake: Rule
    write: Rule
    reveal: Rule
    denied: Rule

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            login_ip=Rule("login_ip", settings.rate_limit_login_per_ip_per_minute, 60),
            login_user=Rule("login_user", settings.rate_limit_login_per_user_per_minute, 60),
            intake=Rule("intake", settings.rate_limit_intake_per_minute, 60),
            write=Rule("write", settings.rate_limit_write_per_minute, 60),
            reveal=Rule("reveal", settings.rate_limit_reveal_per_hour, 3600),
            denied=Rule("denied", settings.rate_limit_denied_per_minute, 60),
        )


def make_limiter(settings: Settings) -> Limiter:
    if settings.redis_url:
        url, prefix = split_prefix(settings.redis_url)
        return RedisLimiter(url, prefix)
    return MemoryLimiter()


def write_class(method: str, path: str) -> str | None:
    """The limit class of a request, or None for safe methods and logins (counted separately)."""
    if method in SAFE_METHODS or path in LOGIN_PATHS:
        return None
    if method == "POST" and path.rstrip("/") == INTAKE_PATH:
        return "intake"
    if path.rstrip("/").rsplit("/", 1)[-1].startswith("reveal"):
        return "reveal"
    return "write"


def credential_key(scope: Scope) -> str | None:
    """The SHA-256 of the request's bearer token or session cookie, if it carries one."""
    raw: str | None = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                raw = "b:" + text[7:].strip()
                break
        elif name == b"cookie" and raw is None:
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == SESSION_COOKIE and v:
                    raw = "c:" + v
    if not raw:
        return None
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def too_many(send: Send, retry_after: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "rate_limited",
                "message": f"请求过于频繁，请在 {retry_after} 秒后重试",
                "details": [{"field": "retry_after", "code": "rate_limited", "message": str(retry_after)}],
            }
        },
        ensure_ascii=False,
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


DeniedRecorder = Callable[[Scope, int], Awaitable[None]]


class RateLimitMiddleware:
    """Pure ASGI: decides before the application runs, so a refused request costs no database work."""

    def __init__(
        self, app: ASGIApp, *, settings: Settings, limiter: Limiter, on_denied: DeniedRecorder | None = None
    ) -> None:
        self.app = app
        self.enabled = settings.rate_limit_enabled
        self.rules = Rules.of(settings)
        self.limiter = limiter
        self.on_denied = on_denied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Shared assets and the load balancer's probe need no authentication: nothing to count.
        if scope["type"] != "http" or scope["path"].startswith("/static/") or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        ip = client_ip(scope)
        cred = credential_key(scope)
        rules = self.rules
        username: str | None = None
        is_login = method == "POST" and path in LOGIN_PATHS

        if self.enabled:
            gate = [(rules.denied, "ip:" + ip)]
            if cred:
                gate.append((rules.denied, cred))
            if is_login:
                receive, username = await _peek_username(scope, receive)
                gate.append((rules.login_ip, ip))
                if username:
                    gate.append((rules.login_user, username))
            if wait := await self.limiter.over(gate):
                await too_many(send, wait)
                return
            cls = write_class(method, path)
            if cls is not None:
                allowed, retry = await self.limiter.hit(getattr(rules, cls), cred or "ip:" + ip)
                if not allowed:
                    await too_many(send, retry)
                    return

        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status not in (401, 403):
            return
        if self.enabled:
            if is_login and status == 401:  # a failed login: its own, tighter limits
                await self.limiter.hit(rules.login_ip, ip)
                if username:
                    await self.limiter.hit(rules.login_user, username)
            else:
                await self.limiter.hit(rules.denied, cred if status == 403 and cred else "ip:" + ip)
        # Failed logins have their own audit row (login.failed); everything else is a denial.
        if self.on_denied is not None and not is_login:
            await self.on_denied(scope, status)


async def _peek_username(scope: Scope, receive: Receive) -> tuple[Receive, str | None]:
    """Read a login form's body to learn the username, then hand the same body to the application."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False) or size > _MAX_LOGIN_BODY:
            break
    username: str | None = None
    content_type = ""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value.decode("latin-1")
    if content_type.startswith("application/x-www-form-urlencoded") and size <= _MAX_LOGIN_BODY:
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        values = parse_qs(body.decode("utf-8", "replace")).get("username")
        if values and values[0].strip():
            username = values[0].strip().lower()[:64]

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay, username
