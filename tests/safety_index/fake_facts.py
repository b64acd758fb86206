"""A facts source for tests: stands in for domains that are not built (or not seeded) here.

``FACTS[month]`` is what ``monthly_facts`` answers for that (Asia/Shanghai) month; pass
``NAME`` in ``names=`` to ``compute_month`` / ``run_backtest``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import Fact

NAME = "tests.safety_index.fake_facts"
FACTS: dict[str, list[Fact]] = {}
FAIL: list[Exception] = []  # raised (after a round trip) instead of answering, while set


async def monthly_facts(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Fact]:
    if FAIL:
        await session.execute(text("SELECT 1"))
        raise FAIL[0]
    return list(FACTS.get(start.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m"), []))
