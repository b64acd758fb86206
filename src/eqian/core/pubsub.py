"""Publish/subscribe between the server's workers: in-process for one worker, Redis for several.

Messages are JSON objects published on a topic (``channel:42``, ``feed`` …). Every subscriber of a
topic in every worker gets each message once, in publication order per publisher. Nothing is
stored here: the database is the record (messages are committed before they are published, and a
client that missed something resumes from the database), so a message published while a worker
is down is simply not seen live by that worker's clients.

    broker = await start_broker(settings.redis_url)   # in the app's lifespan
    sub = broker.subscribe("feed", callback)          # callback(topic, message) -> None | Awaitable
    await publish("feed", {...})
    sub.close()
    await stop_broker()

With Redis, a worker's own publications come back to it through Redis (and only that way), so a
subscriber sees each message exactly once whichever worker published it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

log = logging.getLogger("eqian.pubsub")

Callback = Callable[[str, dict[str, Any]], Awaitable[None] | None]
PREFIX = "eqian:"


class Subscription:
    def __init__(self, broker: Broker, topic: str, callback: Callback) -> None:
        self.broker = broker
        self.topic = topic
        self.callback = callback
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.broker._remove(self)


class Broker:
    """The in-process broker; also the base of the Redis one (which only changes transport)."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def kind(self) -> str:
        return "local"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._subs.clear()

    def subscribe(self, topic: str, callback: Callback) -> Subscription:
        sub = Subscription(self, topic, callback)
        subs = self._subs.setdefault(topic, [])
        subs.append(sub)
        if len(subs) == 1:
            self._topic_added(topic)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if not subs:
            return
        with contextlib.suppress(ValueError):
            subs.remove(sub)
        if not subs:
            del self._subs[sub.topic]
            self._topic_removed(sub.topic)

    def _topic_added(self, topic: str) -> None:
        return None

    def _topic_removed(self, topic: str) -> None:
        return None

    def subscriber_count(self, topic: str) -> int:
        return len(self._subs.get(topic, ()))

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        # Round-trip through JSON so local and Redis subscribers see the same shapes.
        self._deliver(topic, json.loads(json.dumps(message, default=str)))

    def _deliver(self, topic: str, message: dict[str, Any]) -> None:
        for sub in list(self._subs.get(topic, ())):
            try:
                result = sub.callback(topic, message)
            except Exception:
                log.exception("subscriber of %s failed", topic)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("subscriber failed: %s", task.exception())


class RedisBroker(Broker):
    """Redis pub/sub: one connection for publishing, one for this worker's subscriptions."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url, self.prefix = split_prefix(url)
        self._redis: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    @property
    def kind(self) -> str:
        return "redis"

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(self.url, decode_responses=True)
        await self._redis.ping()
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        # A placeholder subscription so listen() has something to wait on from the start.
        await self._pubsub.subscribe(self.prefix + "__worker__")
        for topic in self._subs:
            await self._pubsub.subscribe(self.prefix + topic)
        self._reader = asyncio.create_task(self._read())
        self.ready.set()

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        await super().stop()

    def _track(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _topic_added(self, topic: str) -> None:
        if self._pubsub is not None:
            self._track(self._pubsub.subscribe(self.prefix + topic))

    def _topic_removed(self, topic: str) -> None:
        if self._pubsub is not None:
            self._track(self._pubsub.unsubscribe(self.prefix + topic))

    async def wait_subscribed(self) -> None:
        """Wait until every SUBSCRIBE sent so far has been issued (tests, and before a first publish)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        await self._redis.publish(self.prefix + topic, json.dumps(message, default=str, ensure_ascii=False))

    async def _read(self) -> None:
        while True:
            try:
                async for item in self._pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    topic = str(item["channel"]).removeprefix(self.prefix)
                    try:
                        message = json.loads(item["data"])
                    except ValueError:
                        log.warning("undecodable message on %s", topic)
                        continue
                    self._deliver(topic, message)
            except asyncio.CancelledError:
                raise
            except Exception:  # a dropped connection: reconnect and re-subscribe
                log.exception("redis pub/sub reader failed; reconnecting")
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                with contextlib.suppress(Exception):
                    await self._pubsub.subscribe(
                        self.prefix + "__worker__", *[self.prefix + t for t in self._subs]
                    )


def split_prefix(url: str) -> tuple[str, str]:
    """Redis pub/sub ignores the database number, so deployments (or test runs) sharing one Redis
    name their topics apart: ``redis://host:6379/0?prefix=zhili`` publishes on ``eqian:zhili:…``.
    ``EQIAN_PUBSUB_PREFIX`` does the same when the URL has no ``prefix``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [v for k, v in query if k == "prefix"]
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    name = names[-1] if names else os.environ.get("EQIAN_PUBSUB_PREFIX", "")
    prefix = f"{PREFIX}{name}:" if name else PREFIX
    return urlunsplit(parts._replace(query=rest)), prefix


_broker: Broker | None = None


def get_broker() -> Broker:
    """The process-wide broker; an in-process one until ``start_broker`` picks another."""
    global _broker
    if _broker is None:
        _broker = Broker()
    return _broker


async def start_broker(redis_url: str | None) -> Broker:
    """Replace the process-wide broker with a started one (Redis when a URL is given)."""
    global _broker
    old = _broker
    broker: Broker = RedisBroker(redis_url) if redis_url else Broker()
    if old is not None:  # keep subscriptions made before start (e.g. by an early import)
        for topic, subs in old._subs.items():
            for sub in subs:
                sub.broker = broker
                broker._subs.setdefault(topic, []).append(sub)
    await broker.start()
    _broker = broker
    return broker


async def stop_broker() -> None:
    global _broker
    if _broker is not None:
        await _broker.stop()
    _broker = None


async def publish(topic: str, message: dict[str, Any]) -> None:
    """Publish on the process-wide broker; an error is logged, not raised (the database is the record)."""
    try:
        await get_broker().publish(topic, message)
    except Exception:
        log.exception("publish on %s failed", topic)
