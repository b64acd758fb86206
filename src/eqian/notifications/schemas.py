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
