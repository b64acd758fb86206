"""Resolved sessions kept for a moment in each worker, dropped at once when sessions end.

Every API request resolves its token: one query for the session and its user, then the principal
is built. For a client posting hundreds of requests a second with one token (the 110 dispatch
feed) that lookup was about a fifth of a worker's time under intake load (docs/benchmarks.md). So
each worker keeps what it resolved for ``auth_cache_seconds`` (2 s by default, 0 turns it off) and
re-checks expiry and idle time against the kept rows on every use.

What must not lag is a session that ends: logout, a password change or reset, an account disabled
or its role or jurisdiction changed. Each of those ends sessions through ``core.auth``, which
empties this worker's cache before it publishes ``auth.sessions_ended``; every worker empties its
own when that message arrives (the Redis broker when several workers share one, as for /ws).
A lookup that was already under way when sessions ended is not kept (``generation``). What is
left: a change made behind the application's back (SQL on the sessions or users table), or a
message lost while Redis is down, takes effect within ``auth_cache_seconds``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from eqian.core import pubsub

T = TypeVar("T")

MAX_ENTRIES = 10_000  # sessions kept per worker; the least recently used goes first


class SessionCache(Generic[T]):
    def __init__(
        self,
        topic: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        broker: Callable[[], pubsub.Broker] = pubsub.get_broker,
    ) -> None:
        self.topic = topic
        self.clock = clock
        self.broker = broker
        self.entries: OrderedDict[tuple[str, str], tuple[float, T]] = OrderedDict()
        self.generation = 0  # bumped by every clear(): a lookup that straddles one is not kept
        self._sub: pubsub.Subscription | None = None

    def get(self, key: tuple[str, str], seconds: float) -> T | None:
        self._watch()
        found = self.entries.get(key)
        if found is None:
            return None
        if self.clock() - found[0] >= seconds:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return found[1]

    def put(self, key: tuple[str, str], value: T, generation: int) -> None:
        self._watch()  # nothing is kept while nobody listens for session ends
        if generation != self.generation:
            return
        self.entries[key] = (self.clock(), value)
        self.entries.move_to_end(key)
        while len(self.entries) > MAX_ENTRIES:
            self.entries.popitem(last=False)

    def clear(self, *_: Any) -> None:
        self.generation += 1
        self.entries.clear()

    def _watch(self) -> None:
        """Subscribe to session ends on the worker's current broker (it is replaced at start-up)."""
        sub = self._sub
        broker = self.broker()
        if sub is None or sub.closed or sub.broker is not broker:
            if sub is not None:
                sub.close()
            self._sub = broker.subscribe(self.topic, self.clear)
            self.clear()  # whatever ended while nobody listened
