"""Pacing a batch job beside a live service: pause in proportion to the work done.

In the spirit of PostgreSQL's autovacuum cost delay: after each step the job sleeps ``ratio``
seconds for every second it worked since the last step, so with ratio 1 it takes at most half of
the CPU it could, and requests answered by the same machine (or the same event loop) keep their
latency. Measured with bench/intake.py: the town's index recomputed in a loop beside intake at
half the closed-loop rate raised intake p99 from 38 to 523 ms unpaced, to 81 ms with a 1:1 pause
between computations.

A pause protects somebody only when somebody is there: the monthly job runs after midnight, when
the station is mostly quiet, and paced regardless it took four times as long as it needed (12 s
for the city on a slow host). So a pacer can be given ``busy``, asked at each step (at most every
``CHECK_SECONDS``): it pauses while busy, and for ``QUIET_AFTER`` seconds after busy was last seen,
since a single look can fall between two requests. ``database_busy`` is that question for
PostgreSQL: is any other client of this database in a statement, or in a transaction that ran one
a moment ago?
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# How batch jobs beside the service pace themselves unless told otherwise: three seconds of pause
# per second of work, at most a quarter of a core taken from the live service. Chosen with
# bench/intake.py (intake p99 while the index runs: ratio 3.42 at 1, 2.01 at 3; docs/benchmarks.md).
BATCH_PACE = 3.0
CHECK_SECONDS = 0.1  # how often ``busy`` is asked (a step can be a few milliseconds)
QUIET_AFTER = 1.0  # seconds without seeing anyone busy before the job runs at full speed

Busy = Callable[[], Awaitable[bool]]


class Pacer:
    def __init__(
        self,
        ratio: float = 0.0,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        busy: Busy | None = None,
    ) -> None:
        self.ratio = max(0.0, ratio)
        self.clock, self.sleep, self.busy = clock, sleep, busy
        self.mark = clock()
        self.paused = 0.0
        self.unpaused = 0.0  # work done at full speed because nobody else was busy
        self._asked = self._seen = -float("inf")

    async def step(self) -> None:
        """A point where the job may pause; with ratio 0 it only lets the event loop run others."""
        worked = self.clock() - self.mark
        if self.ratio > 0 and not await self._someone_busy():
            self.unpaused += worked
            worked = 0.0
        pause = worked * self.ratio
        await self.sleep(pause)
        self.paused += pause
        self.mark = self.clock()

    async def _someone_busy(self) -> bool:
        if self.busy is None:
            return True
        now = self.clock()
        if now - self._asked >= CHECK_SECONDS:
            self._asked = now
            if await self.busy():
                self._seen = now
        return now - self._seen < QUIET_AFTER


# A transaction that has run no statement for this long is nobody at work (a psql session left in
# BEGIN, a leaked connection): it would otherwise keep the job paused for as long as it stays open.
IDLE_TRANSACTION_SECONDS = 5.0

# Other client backends of this database doing something: a statement, or a transaction between
# statements (a request working in Python) that ran one within IDLE_TRANSACTION_SECONDS. The
# statistics snapshot is per transaction, and the job reads in one transaction, so it is discarded
# first; for the same reason the clock is clock_timestamp(), not now(). Without pg_read_all_stats
# another role's sessions show no state: run the job as the role the service uses.
_OTHERS_ACTIVE = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
    "AND (state = 'active' OR (state LIKE 'idle in transaction%' "
    "AND state_change > clock_timestamp() - make_interval(secs => :idle_seconds)))"
)


def database_busy(session: AsyncSession) -> Busy:
    """``busy`` for a job reading through ``session`` on PostgreSQL."""

    async def busy() -> bool:
        await session.execute(text("SELECT pg_stat_clear_snapshot()"))
        return bool(await session.scalar(_OTHERS_ACTIVE, {"idle_seconds": IDLE_TRANSACTION_SECONDS}))

    return busy
