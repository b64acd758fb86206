"""Periodic jobs inside each server worker (overdue hazards, registration reminders …).

Every job must be idempotent: with several workers each runs it, and a second run of the same
moment finds nothing new to do. A job takes a session and ``now`` and commits its own work.

A worker runs each job first at a random moment within one period of starting, not at once: the
workers of a restart would otherwise all run every job in the same second (the hourly cockpit sweep
re-marks fourteen months, which the refresh then recomputes), on top of the burst of reconnecting
clients, and stay in step ever after.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core.db import utcnow

log = logging.getLogger("eqian.scheduler")

JobFn = Callable[[AsyncSession, dt.datetime], Awaitable[int]]


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: JobFn


async def run_once(factory: async_sessionmaker[AsyncSession], jobs: Sequence[Job]) -> dict[str, int]:
    """Run every job now; a failing job is logged and does not stop the others."""
    done: dict[str, int] = {}
    for job in jobs:
        try:
            async with factory() as session:
                done[job.name] = await job.run(session, utcnow())
        except Exception:
            log.exception("job %s failed", job.name)
    return done


def first_runs(jobs: Sequence[Job], now: float, rng: random.Random) -> dict[str, float]:
    """When each job first runs: somewhere in its first period, independently per worker."""
    return {job.name: now + rng.uniform(0, job.every_seconds) for job in jobs}


async def run_forever(
    factory: async_sessionmaker[AsyncSession], jobs: Sequence[Job], rng: random.Random | None = None
) -> None:
    next_run = first_runs(jobs, time.monotonic(), rng or random.Random())  # noqa: S311 - timing, not secrets
    while True:
        now = time.monotonic()
        due = [job for job in jobs if next_run[job.name] <= now]
        await run_once(factory, due)
        for job in due:
            next_run[job.name] = now + job.every_seconds
        await asyncio.sleep(max(1.0, min(next_run.values(), default=now + 60) - time.monotonic()))
