"""Ways out of the building: the DingTalk custom robot and the SMS gateway.

Both are used only by the outbox handler in ``notifications.events`` (never inside a user's
request), so a slow or failing gateway delays a notification but never a page, and a failure is
retried with the outbox's back-off.

DingTalk "加签" (signed) custom robots, as documented by DingTalk: the string to sign is
``timestamp + "\\n" + secret`` with ``timestamp`` the current time in milliseconds; the signature
is HMAC-SHA256 keyed with the secret, Base64-encoded and then URL-encoded, appended to the webhook
URL as ``&timestamp=…&sign=…``. DingTalk answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``
on success and a non-zero ``errcode`` otherwise (e.g. 310000 bad signature, 130101 too many
messages per minute), so a 200 alone is not a success.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from eqian.core.config import Settings, get_settings
from eqian.core.ids import mask_mobile

log = logging.getLogger("eqian.notifications")


class DeliveryFailed(Exception):
    """A channel refused or could not take a message; the outbox retries it later."""


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The Base64 HMAC-SHA256 of ``timestamp\\nsecret`` (not yet URL-encoded)."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_signed_url(webhook: str, secret: str | None, timestamp_ms: int | None = None) -> str:
    """The webhook URL with ``&timestamp=…&sign=…`` appended (unchanged when there is no secret)."""
    if not secret:
        return webhook
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    sign = urllib.parse.quote_plus(dingtalk_sign(secret, ts))
    separator = "&" if "?" in webhook else "?"
    return f"{webhook}{separator}timestamp={ts}&sign={sign}"


class DingTalkRobot:
    """A DingTalk group's custom robot (webhook with ``access_token``, optional signing secret)."""

    def __init__(
        self,
        webhook: str,
        secret: str | None = None,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.webhook = webhook
        self.secret = secret
        self.timeout = timeout
        self._transport = transport

    async def _post(self, message: dict[str, Any]) -> None:
        url = dingtalk_signed_url(self.webhook, self.secret)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
                response = await client.post(url, json=message)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"dingtalk unreachable: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            raise DeliveryFailed(f"dingtalk HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise DeliveryFailed("dingtalk answered something that is not JSON") from exc
        errcode = answer.get("errcode") if isinstance(answer, dict) else None
        if errcode != 0:
            errmsg = answer.get("errmsg", "") if isinstance(answer, dict) else ""
            raise DeliveryFailed(f"dingtalk errcode {errcode}: {str(errmsg)[:200]}")

    @staticmethod
    def _at(mobiles: Sequence[str]) -> dict[str, Any]:
        return {"atMobiles": list(mobiles), "isAtAll": False}

    async def send_text(self, content: str, *, at_mobiles: Sequence[str] = ()) -> None:
        # DingTalk shows an @ only when the number also appears in the text.
        mentions = "".join(f" @{m}" for m in at_mobiles)
        await self._post(
            {"msgtype": "text", "text": {"content": content + mentions}, "at": self._at(at_mobiles)}
        )

    async def send_markdown(self, title: str, text: str, *, at_mobiles: Sequence[str] = ()) -> None:
        mentions = "".join(f" @{m}" for m in at_mobiles)
        await self._post(
            {
                "msgtype": "markdown",
                "markdown": {"title": title, "text": text + mentions},
                "at": self._at(at_mobiles),
            }
        )


class SmsGateway(Protocol):
    """An SMS provider. ``send`` returns once the provider accepted the message; raises
    ``DeliveryFailed`` when it did not."""

    async def send(self, phone: str, text: str) -> None: ...


class LogSmsGateway:
    """Writes each SMS to the log (phone masked) instead of sending it: the default until a
    provider's gateway is configured. Keeps the last messages in memory for inspection."""

    def __init__(self, keep: int = 1000) -> None:
        self.sent: collections.deque[tuple[str, str]] = collections.deque(maxlen=keep)

    async def send(self, phone: str, text: str) -> None:
        log.info("sms to %s: %s", mask_mobile(phone), text)
        self.sent.append((phone, text))


@dataclass
class Channels:
    """The configured external channels of this process."""

    sms: SmsGateway = field(default_factory=LogSmsGateway)
    dingtalk: DingTalkRobot | None = None


def from_settings(settings: Settings) -> Channels:
    robot = (
        DingTalkRobot(settings.dingtalk_webhook, settings.dingtalk_secret)
        if settings.dingtalk_webhook
        else None
    )
    # settings.sms_backend has one value today ("log"); a provider adds a branch here.
    return Channels(sms=LogSmsGateway(), dingtalk=robot)


_current: Channels | None = None


def configure(settings: Settings) -> Channels:
    """Set this process's channels from its settings (the app factory and `eqian outbox run`)."""
    global _current
    _current = from_settings(settings)
    return _current


def use(channels: Channels | None) -> None:
    """Replace the channels (tests, embedding); None goes back to the settings on next use."""
    global _current
    _current = channels


def current() -> Channels:
    global _current
    if _current is None:
        _current = from_settings(get_settings())
    return _current
