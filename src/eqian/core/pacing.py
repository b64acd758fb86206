"""Pacing a batch job beside a live service: pause in proportion to the work done.

In the spirit of PostgreSQL's autovacuum cost delay: after each step the job sleeps ``ratio``
seconds for every second it worked since the last step, so with ratio 1 it takes at most half of
the CPU it could, and requests answered by the same machine (or the same event loop) keep their
latency. Measured with bench/intake.py: the town's index recomputed in a loop beside intake at
half the closed-loop rate raised intake p99 from 38 to 523 ms unpaced, to 81 ms with a 1:1 pause
between computations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# How batch jobs beside the service pace themselves unless told otherwise: three seconds of pause
# per second of work, at most a quarter of a core taken from the live service. Chosen with
# bench/intake.py (intake p99 while the index runs: ratio 3.42 at 1, 2.01 at 3; docs/benchmarks.md).
BATCH_PACE = 3.0


class Pacer:
    def __init__(
        self,
        ratio: float = 0.0,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ratio = max(0.0, ratio)
        self.clock, self.sleep = clock, sleep
        self.mark = clock()
        self.paused = 0.0

    async def step(self) -> None:
        """A point where the job may pause; with ratio 0 it only lets the event loop run others."""
        worked = self.clock() - self.mark
        pause = worked * self.ratio
        await self.sleep(pause)
        self.paused += pause
        self.mark = self.clock()
