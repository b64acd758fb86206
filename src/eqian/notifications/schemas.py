"""API shapes of notifications."""

from __future__ import annotations

import datetime as dt

from eqian.core.schemas import OutputModel


class NotificationOut(OutputModel):
    id: int
    kind: str
    title: str
    body: str
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class DeliveryOut(OutputModel):
    """One external message: sent (with when and after how many tries) or still pending."""

    channel: str
    recipient: str  # "robot", or a masked mobile number
    kind: str
    title: str
    status: str  # sent | pending | failed (gave up after the outbox's last attempt)
    attempts: int
    at: dt.datetime  # sent_at, or when the next attempt is due
    last_error: str | None
