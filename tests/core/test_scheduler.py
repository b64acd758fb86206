"""Periodic jobs: each runs with a session and the time, and one failure does not stop the rest."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core.scheduler import Job, first_runs, run_forever, run_once


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


async def _noop(session: AsyncSession, now: dt.datetime) -> int:
    return 0


def test_first_runs_are_spread_over_each_jobs_period() -> None:
    """Two workers starting together do not run a job in the same instant, and no job waits longer
    than its own period for its first run."""
    jobs = [Job("hourly", 3600, _noop), Job("half_minute", 30, _noop)]
    firsts = [first_runs(jobs, 100.0, random.Random(seed)) for seed in range(50)]
    for job in jobs:
        times = [f[job.name] for f in firsts]
        assert all(100.0 <= t < 100.0 + job.every_seconds for t in times)
        assert max(times) - min(times) > job.every_seconds / 2  # spread, not all at the start


async def test_a_job_is_not_run_at_start(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ran: list[str] = []

    async def hourly(session: AsyncSession, now: dt.datetime) -> int:
        ran.append("hourly")
        return 1

    task = asyncio.create_task(run_forever(sessionmaker, [Job("hourly", 3600, hourly)], random.Random(1)))
    await asyncio.sleep(1.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert first_runs([Job("hourly", 3600, hourly)], 0.0, random.Random(1))["hourly"] > 2
    assert ran == []
