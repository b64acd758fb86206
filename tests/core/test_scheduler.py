"""Periodic jobs: each runs with a session and the time, and one failure does not stop the rest."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core.scheduler import Job, run_once


async def test_every_job_runs_and_a_failure_is_contained(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    seen: list[dt.datetime] = []

    async def ok(session: AsyncSession, now: dt.datetime) -> int:
        seen.append(now)
        return 3

    async def broken(session: AsyncSession, now: dt.datetime) -> int:
        raise RuntimeError("boom")

    done = await run_once(sessionmaker, [Job("broken", 60, broken), Job("ok", 60, ok)])
    assert done == {"ok": 3}
    assert len(seen) == 1
    assert seen[0].tzinfo is not None
