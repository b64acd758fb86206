"""How a long-running worker keeps CPython's cyclic garbage collector from stopping it for seconds.

A full (generation 2) collection walks every object the collector tracks. A worker holding 10,000
WebSockets tracks about a million (each socket's protocol, tasks, queues, frames and principal),
and then every full collection stops the event loop for one to two seconds — measured with
``bench/broadcast.py``: 21 full collections in one worker during a 20,000-client run, 9.7 s in all,
the worst pause 1.8 s, in the middle of a broadcast. Python starts a full collection whenever the
tracked heap has grown by a quarter, so a worker that keeps gaining connections keeps paying.

``Settler`` moves objects that live as long as a connection out of the collector's sight
(``gc.freeze``) a moment after a burst of connections opened, when the short-lived garbage of the
handshakes has been collected. Requests and messages still produce their garbage in the young
generations, which are collected as usual and cheaply. Frozen objects are still freed by reference
counting; only cycles among them wait, until ``reclaim`` (called from a periodic job) sees that
enough connections closed since the last freeze and pays for one full pass.

The young generations are not cheap either at that size: with CPython's default threshold (a
collection every 700 net new container objects) a worker made a generation-1 collection every
few hundred milliseconds during a 10,000-socket broadcast, each 15–100 ms (the survivors of the
last few thousand acknowledgements: operations waiting for their batch, frames, futures), about
0.7 s of its 2 s of CPU for the broadcast. ``YOUNG_THRESHOLD`` makes the young collections 70
times rarer; their garbage is freed by reference counting all the same, and the cycles among
the 50,000 objects wait a little longer (a few megabytes). Measured on the same broadcast: no
collection over 2 ms while it ran, the worker's CPU 2.0 → 1.1–1.3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

SETTLE_DELAY = 0.5  # seconds after the last opening: a connection storm is frozen in steps
RECLAIM_SHARE = 0.25  # a full pass once a quarter of the frozen connections have closed
RECLAIM_MIN = 500
YOUNG_THRESHOLD = 50_000  # net new container objects between young collections (CPython: 700)


def settle_startup() -> None:
    """Once the application is built: everything imported and loaded so far lives for good, and
    the young generations are collected at the server's pace (``YOUNG_THRESHOLD``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


@contextlib.contextmanager
def young_collections(threshold: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Bulk work at the server's young-collection pace, wherever it runs (a worker already has it;
    ``eqian index compute`` and the benchmarks do not).

    The monthly index builds about a million short-lived tuples, dicts and floats, none of them in
    a cycle: at CPython's default threshold that is over a thousand young collections and several
    full ones over whatever else the process holds, 0.6 s of the 1.5 s facts pass of a city
    (bench/index.py). Reference counting frees all of it as before; only the collector waits."""
    old = gc.get_threshold()
    if old[0] >= threshold:
        yield
        return
    gc.set_threshold(threshold, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


class Settler:
    """Counts connections opened and closed, freezes after openings, reclaims after closings."""

    def __init__(self, delay: float = SETTLE_DELAY) -> None:
        self.delay = delay
        self.pending: asyncio.TimerHandle | None = None
        self.frozen_conns = 0  # connections opened before the last freeze
        self.opened = 0  # since the last freeze
        self.closed = 0  # since the last reclaim
        self.freezes = 0
        self.reclaims = 0

    def opened_one(self) -> None:
        self.opened += 1
        if self.pending is None:
            self.pending = asyncio.get_running_loop().call_later(self.delay, self.settle)

    def closed_one(self) -> None:
        self.closed += 1

    def settle(self) -> None:
        self.pending = None
        # The handshakes' own garbage is young: collect it first, or its cycles would be frozen too.
        gc.collect(1)
        gc.freeze()
        self.frozen_conns += self.opened
        self.opened = 0
        self.freezes += 1

    def due(self) -> bool:
        return self.closed >= max(RECLAIM_MIN, RECLAIM_SHARE * self.frozen_conns)

    def reclaim(self, *, force: bool = False) -> float:
        """One full collection over everything, frozen or not, when enough has closed; its seconds."""
        if not (force or self.due()):
            return 0.0
        began = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        seconds = time.perf_counter() - began
        self.frozen_conns = max(0, self.frozen_conns + self.opened - self.closed)
        self.opened = self.closed = 0
        self.reclaims += 1
        log.info("reclaimed closed connections' cycles in %.3f s", seconds)
        return seconds

    def cancel(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None
