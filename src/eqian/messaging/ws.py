"""WebSocket ``/ws`` (protocol v1, see docs/messaging.md): live messages, resume, acknowledgements.

One ``Hub`` per application. Each connection has one writer task that sends everything to its
client in order; live messages, resume backlogs and replies all pass through it, so it can keep
per channel the last seq it sent and guarantee "nothing lost, nothing twice":

* a live message with a seq not above the last one sent is dropped (a duplicate);
* a live message that skips seqs (two senders publishing out of commit order, or a message
  committed while the connection was subscribing) first fetches the missing ones from the
  database — they are committed, because a channel's seq counter is bumped under a row lock;
* ``resume`` sends everything after the client's cursors from the database, then ``resumed``.

Receipts (delivered, read, acknowledged) go through ``AckBatcher``: an in-process queue written
in one transaction every 50 ms or 500 items; ``acked`` is sent only after that commit. A client
resends acknowledgements it has no ``acked`` for after a reconnect; acknowledging is idempotent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import auth, gcpolicy, pubsub
from eqian.core.accounts import AuthSession, Role, User
from eqian.core.config import Settings
from eqian.core.db import among, table_of, utcnow
from eqian.core.errors import AppError
from eqian.core.permissions import Principal
from eqian.messaging import schemas, service
from eqian.messaging.direct import DirectReader, DirectWriter, Shared
from eqian.messaging.models import Channel, Instruction, Receipt
from eqian.web.routing import Router

log = logging.getLogger("eqian.messaging.ws")
router = Router()

AUTH_TIMEOUT = 10.0
CLOSE_BAD_AUTH = 4401
CLOSE_BAD_ORIGIN = 4403
CLOSE_SESSION_ENDED = 4001
SWEEP_SECONDS = 15.0  # every socket's session is checked again within this
SWEEP_SLICES = 15  # one slice of the sockets per tick: 10,000 checks at once cost a broadcast ~0.5 s
PING_RECHECK_SECONDS = 5.0
BATCH_SECONDS = 0.05
INSTRUCTION_CACHE = 10_000  # instructions whose creation and channel a batcher remembers
BATCH_SIZE = 2000  # receipts per transaction: 20,000 acknowledgements in ten commits
# Batches of acknowledgements stored at once, each in its own transaction: while one waits for the
# database the worker builds the next or answers the last, instead of the two taking turns.
IN_FLIGHT = 2
# A delivered mark waits this long before it is written: the unit's acknowledgement usually comes
# first and fills delivered_at itself (with the time the frame went out), so a broadcast does not
# update every receipt twice while its acknowledgements are still arriving.
DELIVERED_HOLD = 2.0
PROGRESS_EVERY = 0.5  # seconds between two progress boards of one worker
HOLD_SECONDS = 1.5
HANDSHAKE_BATCH = 256  # sockets authenticated together in one transaction
CLOSE_TRY_AGAIN = 1013


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), default=str)


# --- connections ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Conn:
    ws: WebSocket
    principal: Principal
    auth_id: int
    identity: tuple[Any, ...]  # the user's role and anchors when the socket opened
    channels: set[int] = field(default_factory=set)
    sent: dict[int, int] = field(default_factory=dict)
    queue: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)
    writer: asyncio.Task[None] | None = None
    closed: bool = False
    validated_at: float = field(default_factory=time.monotonic)
    # Until the client's resume is handled (or it does something else, or HOLD_SECONDS pass), live
    # messages wait here, so the backlog goes out first and nothing is sent twice.
    held: list[tuple[Any, ...]] | None = field(default_factory=list)
    live_sent: set[int] = field(default_factory=set)  # channels with a message actually sent
    baseline: dict[int, int] = field(default_factory=dict)  # each channel's last_seq when the socket opened
    resumed: bool = False
    direct: DirectWriter | None = None  # synchronous writes, when the server allows them
    busy: bool = False  # the writer task is in the middle of an item
    reading: bool = False  # the reader task waits for the next frame (none is being handled)

    # A socket's principal never changes (a change of rights closes it), so its unit is worked
    # out once, not for every frame and every delivered mark.
    unit_id: int | None = field(init=False)

    def __post_init__(self) -> None:
        p = self.principal
        self.unit_id = (
            next(iter(p.scope.unit_ids)) if p.role is Role.UNIT_SECURITY and p.scope.unit_ids else None
        )

    @property
    def user_id(self) -> int:
        return self.principal.user_id

    @property
    def is_officer(self) -> bool:
        return self.principal.role in service.OFFICER_ROLES

    def push(self, item: tuple[Any, ...]) -> None:
        if not self.closed:
            self.queue.put_nowait(item)

    def idle(self) -> bool:
        """Nothing queued or being written: a frame written now keeps its place in the order."""
        return not self.busy and not self.closed and self.queue.empty()

    def raw(self, out: str | Shared) -> None:
        if self.direct is None or not self.idle() or not self.direct.send(out):
            self.push(("raw", out if isinstance(out, str) else out.text))

    def behind(self, channel_id: int, seq: int) -> int:
        """Messages of the channel this socket still lacks before ``seq``: -1 when it has ``seq``
        already, 0 when ``seq`` is the next one (or the channel's first on this socket)."""
        last = self.sent.get(channel_id)
        if last is None:
            return 0
        return -1 if seq <= last else seq - last - 1

    def frame(self, frame: dict[str, Any]) -> None:
        self.raw(_dumps(frame))

    def close(self, code: int) -> None:
        self.push(("close", code))


def _identity(user: User) -> tuple[Any, ...]:
    return (user.role, user.station_id, user.unit_id, user.service_point_id, user.team_id, user.zone_id)


# --- receipts batcher ----------------------------------------------------------------------------


@dataclass
class Op:
    kind: str  # delivered | read | ack
    instruction_id: int
    unit_id: int
    user_id: int | None = None
    auth_id: int | None = None
    text: str | None = None
    at: dt.datetime = field(default_factory=utcnow)
    conn: Conn | None = None
    delivered: dt.datetime | None = None  # when the message went out, from a delivered mark it replaced


RECEIPTS, INSTRUCTIONS = table_of(Receipt), table_of(Instruction)
AUTH_SESSIONS, USERS = table_of(AuthSession), table_of(User)


def live_sign_ins(auth_ids: Iterable[int], dialect: str) -> ColumnElement[bool]:
    """Those of ``auth_ids`` that may still act: not revoked, not expired, their user active (the
    query joins ``users``). The receipt batcher and the hub's session checks ask the same."""
    sessions, users = AUTH_SESSIONS.c, USERS.c
    return and_(
        among(sessions.id, auth_ids, dialect),
        sessions.revoked_at.is_(None),
        sessions.expires_at > utcnow(),
        users.is_active.is_(True),
    )


class AckBatcher:
    """Receipt updates, many per transaction. ``acked`` goes out only after the commit."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        # Acknowledgements and reads first: "delivered" marks are not waited for by anyone.
        self.urgent: collections.deque[Op] = collections.deque()
        # One "delivered" mark per (instruction, unit); an acknowledgement or read of the pair
        # replaces it, since it fills delivered_at itself.
        self.low: dict[tuple[int, int], Op] = {}
        self.low_since = 0.0  # loop time when the oldest waiting delivered mark came in
        self.stopping = False
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.flushing: set[asyncio.Task[None]] = set()  # batches being stored; none: idle
        self.stored_acks = 0
        self.batches = 0
        self.instructions: dict[int, tuple[dt.datetime, int]] = {}  # id -> (created_at, channel_id)
        # Progress boards are counted and published by one task, after the commits that changed
        # them: batches committing side by side could otherwise publish an older count last.
        self.progress_due: set[int] = set()
        self.progress_wakeup = asyncio.Event()
        self.progress_task: asyncio.Task[None] | None = None
        self.publishing = False
        # SQLite has one writer: a second transaction would only wait for the first.
        bind = factory.kw.get("bind")
        self.in_flight = IN_FLIGHT if bind is not None and bind.dialect.name == "postgresql" else 1

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def _progress_changed(self, instruction_ids: set[int]) -> None:
        self.progress_due |= instruction_ids
        self.progress_wakeup.set()
        if self.progress_task is None or self.progress_task.done():
            self.progress_task = asyncio.create_task(self._publish_progress())

    def pending(self) -> int:
        return len(self.urgent) + len(self.low)

    async def stop(self) -> None:
        """Flush what is queued (for at most a few seconds), then stop."""
        self.stopping = True  # delivered marks are written now, not after their hold
        if self.task is not None:
            for _ in range(100):
                if not (self.pending() or self.flushing or self.progress_due or self.publishing):
                    break
                await asyncio.sleep(BATCH_SECONDS)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for task in (*self.flushing, self.progress_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def put(self, op: Op) -> None:
        self.start()
        pair = (op.instruction_id, op.unit_id)
        if op.kind == "delivered":
            if not self.low:
                self.low_since = asyncio.get_running_loop().time()
            self.low.setdefault(pair, op)
        else:
            held = self.low.pop(pair, None)
            if held is not None and op.delivered is None:
                op.delivered = held.at
            self.urgent.append(op)
        self.wakeup.set()

    def _take(self) -> list[Op]:
        # While acknowledgements wait, a batch carries only them: their senders wait for "acked",
        # and an acknowledgement fills in delivered_at itself, so the delivered marks lose nothing.
        if self.urgent:
            return [self.urgent.popleft() for _ in range(min(BATCH_SIZE, len(self.urgent)))]
        if not self._low_due():
            return []
        pairs = list(itertools.islice(self.low, BATCH_SIZE))
        return [self.low.pop(pair) for pair in pairs]

    def _low_due(self) -> bool:
        return bool(self.low) and (
            self.stopping or asyncio.get_running_loop().time() - self.low_since >= DELIVERED_HOLD
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            # Gather for up to 50 ms, less when a full batch of acknowledgements is already waiting.
            deadline = loop.time() + BATCH_SECONDS
            while len(self.urgent) < BATCH_SIZE and (remaining := deadline - loop.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(0.005, remaining))
            # Acknowledgement batches run side by side (they touch different receipts but for a
            # repeated acknowledgement); a batch of delivered marks runs alone, since it would
            # update the same receipts as the acknowledgements in flight.
            while len(self.flushing) >= self.in_flight or (self.flushing and not self.urgent):
                await asyncio.wait(self.flushing, return_when=asyncio.FIRST_COMPLETED)
            batch = self._take()
            if not self.pending():
                self.wakeup.clear()
            if not batch:
                if self.low and not self.urgent:
                    await asyncio.sleep(BATCH_SECONDS)  # delivered marks on hold
                continue
            task = asyncio.create_task(self._flush_retrying(batch))
            self.flushing.add(task)
            task.add_done_callback(self.flushing.discard)

    async def _flush_retrying(self, batch: list[Op]) -> None:
        for attempt in range(4):
            try:
                await self.flush(batch)
                return
            except Exception:
                log.exception("receipt batch of %d failed (attempt %d)", len(batch), attempt + 1)
                await asyncio.sleep(0.2 * 2**attempt)
        for op in batch:
            if op.kind == "ack" and op.conn is not None:
                op.conn.frame(
                    {
                        "type": "error",
                        "code": "ack_failed",
                        "message": "确认未能保存，请重试",
                        "instruction_id": op.instruction_id,
                    }
                )

    async def _publish_progress(self) -> None:
        while True:
            await self.progress_wakeup.wait()
            self.progress_wakeup.clear()
            due, self.progress_due = self.progress_due, set()
            self.publishing = True
            try:
                async with self.factory() as session:
                    info = await self._instruction_info(session, due)
                    for instruction_id in sorted(due):
                        if instruction_id in info:
                            await service.publish_progress(session, instruction_id, info[instruction_id][1])
            except Exception:
                log.exception("progress of instructions %s not published", sorted(due))
                await asyncio.sleep(1.0)
                self._progress_changed(due)  # counted again: a later board is never older
            finally:
                self.publishing = False
            if not self.stopping:
                # At most two boards a second per worker: each counts every receipt of the instruction
                # (20,000 for a city-wide one) while its acknowledgements are still arriving.
                await asyncio.sleep(PROGRESS_EVERY)

    async def _live_sessions(self, session: AsyncSession, auth_ids: set[int], dialect: str) -> set[int]:
        """Which of these sign-ins may still act (an ack from an ended session is not stored)."""
        if not auth_ids:
            return set()
        sessions, users = AUTH_SESSIONS.c, USERS.c
        return set(
            await session.scalars(
                select(sessions.id)
                .join(USERS, users.id == sessions.user_id)
                .where(live_sign_ins(auth_ids, dialect))
            )
        )

    async def _instruction_info(
        self, session: AsyncSession, ids: Iterable[int]
    ) -> dict[int, tuple[dt.datetime, int]]:
        """Creation time and channel of instructions, remembered: they never change, and every
        batch of a broadcast needs the same one."""
        missing = {i for i in ids if i not in self.instructions}
        if missing:
            if len(self.instructions) > INSTRUCTION_CACHE:
                self.instructions.clear()
            c = INSTRUCTIONS.c
            rows = await session.execute(select(c.id, c.created_at, c.channel_id).where(c.id.in_(missing)))
            self.instructions.update({i: (created, channel_id) for i, created, channel_id in rows})
        return self.instructions

    async def _known(
        self, session: AsyncSession, pairs: set[tuple[int, int]], dialect: str
    ) -> set[tuple[int, int]]:
        """Which (instruction, unit) pairs have a receipt."""
        if not pairs:
            return set()
        c = RECEIPTS.c
        rows = await session.execute(
            select(c.instruction_id, c.unit_id).where(
                among(c.instruction_id, {i for i, _ in pairs}, dialect),
                among(c.unit_id, {u for _, u in pairs}, dialect),
            )
        )
        return {(i, u) for i, u in rows if (i, u) in pairs}

    async def _store_arrays(self, session: AsyncSession, ops: list[Op]) -> set[tuple[int, int]]:
        """PostgreSQL: one UPDATE per kind; only the pairs it did not change (a repeat, or no such
        receipt) are looked up afterwards. The pairs that exist."""
        rows: dict[str, list[dict[str, Any]]] = {"delivered": [], "read": [], "ack": []}
        for op in ops:
            row: dict[str, Any] = {"at": op.at, "i": op.instruction_id, "u": op.unit_id}
            if op.kind != "delivered":
                row["dlv"] = op.delivered or op.at
            if op.kind == "ack":
                row |= {"user": op.user_id, "text": op.text or None}
            rows[op.kind].append(row)
        changed: set[tuple[int, int]] = set()
        for kind, kind_rows in rows.items():
            changed |= await service.store_receipt_arrays(session, kind, kind_rows)
        # A "delivered" mark that changed nothing needs no answer either way.
        unsure = {(op.instruction_id, op.unit_id) for op in ops if op.kind != "delivered"} - changed
        delivered = {(op.instruction_id, op.unit_id) for op in ops if op.kind == "delivered"}
        return changed | delivered | await self._known(session, unsure, "postgresql")

    async def _store_rows(self, session: AsyncSession, ops: list[Op], dialect: str) -> set[tuple[int, int]]:
        """Any dialect: the receipts that exist are looked up, then updated row by row."""
        known = await self._known(session, {(op.instruction_id, op.unit_id) for op in ops}, dialect)
        info = await self._instruction_info(session, {i for i, _ in known})
        as_bound = service.time_binder(dialect)
        rows: dict[str, list[dict[str, Any]]] = {"delivered": [], "read": [], "ack": []}
        for op in ops:
            if (op.instruction_id, op.unit_id) not in known:
                continue
            params: dict[str, Any] = {"at": as_bound(op.at), "i": op.instruction_id, "u": op.unit_id}
            if op.kind != "delivered":
                params["dlv"] = as_bound(op.delivered or op.at)
            if op.kind == "ack":
                created = info[op.instruction_id][0]
                params |= {
                    "user": op.user_id,
                    "text": op.text or None,
                    "latency": max(0.0, (op.at - created).total_seconds()),
                }
            rows[op.kind].append(params)
        for kind, kind_rows in rows.items():
            await service.store_receipt_rows(session, kind, kind_rows)
        return known

    async def flush(self, batch: list[Op]) -> None:
        # An acknowledgement also fills delivered and read: those ops of the same pair add nothing.
        ack_pairs = {(op.instruction_id, op.unit_id) for op in batch if op.kind == "ack"}
        batch = [op for op in batch if op.kind == "ack" or (op.instruction_id, op.unit_id) not in ack_pairs]
        async with self.factory() as session:
            dialect = session.get_bind().dialect.name
            auth_ids = {op.auth_id for op in batch if op.auth_id is not None}
            live = await self._live_sessions(session, auth_ids, dialect)
            refused: list[tuple[Op, str]] = []
            candidates: list[Op] = []
            for op in batch:
                if op.auth_id is not None and op.auth_id not in live:
                    refused.append((op, "session_ended"))
                else:
                    candidates.append(op)
            if dialect == "postgresql":
                known = await self._store_arrays(session, candidates)
            else:
                known = await self._store_rows(session, candidates, dialect)
            accepted: list[Op] = []
            for op in candidates:
                if (op.instruction_id, op.unit_id) in known:
                    accepted.append(op)
                else:
                    refused.append((op, "not_found"))
            await session.commit()
            self.batches += 1
            self.stored_acks += sum(op.kind == "ack" for op in accepted)
        touched = {op.instruction_id for op in accepted if op.kind in ("read", "ack")}
        if touched:
            self._progress_changed(touched)
        acked: dict[int, Shared] = {}  # one frame per instruction, not one json.dumps per socket
        for op in accepted:
            if op.kind == "ack" and op.conn is not None:
                iid = op.instruction_id
                if iid not in acked:
                    acked[iid] = Shared(_dumps({"type": "acked", "instruction_id": iid}))
                op.conn.raw(acked[iid])
        for op, reason in refused:
            if op.conn is None:
                continue
            if reason == "session_ended":
                op.conn.close(CLOSE_SESSION_ENDED)
            elif op.kind != "delivered":
                op.conn.frame(
                    {
                        "type": "error",
                        "code": "not_found",
                        "message": "指令不存在",
                        "instruction_id": op.instruction_id,
                    }
                )


# --- handshakes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    resolved: auth.Resolved
    channels: list[Channel]


class HandshakeBatcher:
    """Sockets that open at the same moment (20,000 units in the morning, every client of a worker
    that restarted) are authenticated and given their channels together: one transaction and a
    handful of queries per batch instead of two transactions per socket, and one flush at a time,
    so a connection storm waits in memory rather than in the database pool."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self.pending: list[tuple[str, str, str | None, asyncio.Future[Opening | None]]] = []
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def open(self, token: str, kind: str, ip: str | None) -> Opening | None:
        future: asyncio.Future[Opening | None] = asyncio.get_running_loop().create_future()
        self.pending.append((token, kind, ip, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        self.wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending:
                batch = self.pending[:HANDSHAKE_BATCH]
                del self.pending[:HANDSHAKE_BATCH]
                batch = [item for item in batch if not item[3].done()]  # the client already left
                try:
                    results = await self._flush(batch)
                except Exception as exc:  # each waiting socket decides what the failure means
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    async def _flush(self, batch: list[tuple[str, str, str | None, Any]]) -> list[Opening | None]:
        if not batch:
            return []
        async with self.factory() as session:
            wanted = [(token, kind, ip) for token, kind, ip, _ in batch]
            resolved = await auth.resolve_tokens(session, self.settings, wanted)
            live = [r for r in resolved if r is not None]
            channels = iter(await service.visible_channels_many(session, [r.principal for r in live]))
        return [None if r is None else Opening(r, next(channels)) for r in resolved]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


# --- the hub -------------------------------------------------------------------------------------


class Hub:
    """This worker's connections, their channel subscriptions and the receipts batcher."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        write_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
    ):
        self.factory = factory
        self.write_factory = write_factory
        self.conns: set[Conn] = set()
        self.slices: list[set[Conn]] = [set() for _ in range(SWEEP_SLICES)]  # by sign-in id, for the sweep
        self.by_channel: dict[int, set[Conn]] = {}
        # Progress boards go to officers only: a channel's few officers, not its 10,000 units,
        # are walked for every receipt batch.
        self.officers_by_channel: dict[int, set[Conn]] = {}
        self.subs: dict[int, pubsub.Subscription] = {}
        self.batcher = AckBatcher(write_factory)
        self.channels_sub: pubsub.Subscription | None = None
        self.sweeper: asyncio.Task[None] | None = None
        self.handshakes = HandshakeBatcher(write_factory, settings)
        self.feed_conns: set[Conn] = set()
        self.feed_sub: pubsub.Subscription | None = None
        self.sessions_sub: pubsub.Subscription | None = None
        self.settler = gcpolicy.Settler() if settings.gc_freeze else None
        self.direct_writes = 0  # live messages written without the writer task (messaging/direct.py)
        self.direct_reads = 0  # receipt frames taken straight from the socket (messaging/direct.py)

    # subscriptions
    def _ensure_started(self) -> None:
        if self.channels_sub is None or self.channels_sub.closed:
            self.channels_sub = pubsub.get_broker().subscribe(
                service.CHANNELS_TOPIC, self._on_channel_created
            )
        if self.sessions_sub is None or self.sessions_sub.closed:
            self.sessions_sub = pubsub.get_broker().subscribe(auth.SESSIONS_TOPIC, self._on_sessions_ended)
        if self.sweeper is None or self.sweeper.done():
            self.sweeper = asyncio.create_task(self._sweep_forever())
        self.batcher.start()

    def join(self, conn: Conn, channel_id: int) -> None:
        conn.channels.add(channel_id)
        members = self.by_channel.setdefault(channel_id, set())
        members.add(conn)
        if conn.is_officer:
            self.officers_by_channel.setdefault(channel_id, set()).add(conn)
        if channel_id not in self.subs or self.subs[channel_id].closed:
            self.subs[channel_id] = pubsub.get_broker().subscribe(
                service.channel_topic(channel_id), self._on_channel
            )

    def subscribe_feed(self, conn: Conn) -> None:
        self.feed_conns.add(conn)
        if self.feed_sub is None or self.feed_sub.closed:
            self.feed_sub = pubsub.get_broker().subscribe(FEED_TOPIC, self._on_feed)

    def _on_feed(self, topic: str, item: dict[str, Any]) -> None:
        out: Shared | None = None
        for conn in list(self.feed_conns):
            if feed_visible(conn.principal, item):
                out = out or Shared(_dumps({"type": "feed", "item": item}))
                conn.raw(out)

    def leave(self, conn: Conn) -> None:
        self.conns.discard(conn)
        self.slices[conn.auth_id % SWEEP_SLICES].discard(conn)
        self.feed_conns.discard(conn)
        if not self.feed_conns and self.feed_sub is not None:
            self.feed_sub.close()
            self.feed_sub = None
        for channel_id in conn.channels:
            officers = self.officers_by_channel.get(channel_id)
            if officers is not None:
                officers.discard(conn)
                if not officers:
                    del self.officers_by_channel[channel_id]
            members = self.by_channel.get(channel_id)
            if members is None:
                continue
            members.discard(conn)
            if not members:
                del self.by_channel[channel_id]
                sub = self.subs.pop(channel_id, None)
                if sub is not None:
                    sub.close()

    def _on_channel(self, topic: str, message: dict[str, Any]) -> None:
        channel_id = int(topic.split(":", 1)[1])
        members = self.by_channel.get(channel_id)
        if not members:
            return
        kind = message.get("type")
        if kind == "message":
            out = Shared(_dumps(message))
            seq = int(message["seq"])
            instruction = message.get("instruction")
            instruction_id = int(instruction["id"]) if instruction else None
            # One synchronous pass over the members, as a bare WebSocket server's broadcast does:
            # acknowledgements coming back wait until every idle socket has the message.
            for conn in members:
                if not self._send_now(conn, channel_id, seq, out, instruction_id):
                    conn.push(("msg", channel_id, seq, out.text, instruction_id))
        elif kind == "progress":
            out = Shared(_dumps(message))
            for conn in self.officers_by_channel.get(channel_id, ()):
                conn.raw(out)

    def _send_now(
        self, conn: Conn, channel_id: int, seq: int, out: Shared, instruction_id: int | None
    ) -> bool:
        """A live message written at once when nothing stands before it on this socket: not held
        for a resume, nothing queued, no gap to fill from the database (then False: the writer
        task does it in order)."""
        if conn.direct is None or not conn.idle() or conn.held is not None:
            return False
        behind = conn.behind(channel_id, seq)
        if behind < 0:
            return True  # already sent on this connection
        if behind > 0 or not conn.direct.send(out):
            return False
        self.direct_writes += 1
        self._sent(conn, channel_id, seq, instruction_id)
        return True

    def _on_sessions_ended(self, topic: str, event: dict[str, Any]) -> None:
        # Logout, a disabled account, a role change or a password reset on any worker: close now,
        # not at the socket's next frame or the next sweep.
        auth_id, user_id, keep = event.get("auth_id"), event.get("user_id"), event.get("except_auth_id")
        for conn in list(self.conns):
            if conn.auth_id == auth_id or (conn.user_id == user_id and conn.auth_id != keep):
                conn.close(CLOSE_SESSION_ENDED)

    def _on_channel_created(self, topic: str, event: dict[str, Any]) -> None:
        channel_id = int(event["channel_id"])
        units = set(event.get("unit_ids") or [])
        users = set(event.get("user_ids") or [])
        stations = set(event.get("station_ids") or ())
        if event.get("station_id") is not None:
            stations.add(event["station_id"])
        for conn in list(self.conns):
            if channel_id in conn.channels:
                continue
            p = conn.principal
            if (
                conn.user_id in users
                or (conn.unit_id is not None and conn.unit_id in units)
                or p.scope.is_all
                or not stations.isdisjoint(p.scope.station_ids)
                or p.role is Role.LIAISON_OFFICER
            ):
                conn.push(("join", channel_id))

    # lifecycle of one connection
    def open(self, ws: WebSocket, opening: Opening) -> Conn:
        self._ensure_started()
        resolved, channels = opening.resolved, opening.channels
        conn = Conn(
            ws=ws,
            principal=resolved.principal,
            auth_id=resolved.auth.id,
            identity=_identity(resolved.user),
            direct=DirectWriter.of(ws.scope),
        )
        self.conns.add(conn)
        self.slices[conn.auth_id % SWEEP_SLICES].add(conn)
        for ch in channels:
            self.join(conn, ch.id)
            conn.sent[ch.id] = ch.last_seq
            conn.baseline[ch.id] = ch.last_seq
        conn.writer = asyncio.create_task(self._write(conn))
        asyncio.get_running_loop().call_later(HOLD_SECONDS, conn.push, ("release",))
        if self.settler is not None:
            self.settler.opened_one()
        conn.frame(
            {
                "type": "ready",
                "user_id": conn.user_id,
                "role": conn.principal.role.value,
                "unit_id": conn.unit_id,
                "channels": [
                    {"id": ch.id, "kind": ch.kind, "name": ch.name, "last_seq": ch.last_seq}
                    for ch in channels
                ],
            }
        )
        return conn

    async def close(self, conn: Conn) -> None:
        if conn in self.conns and self.settler is not None:
            self.settler.closed_one()
        conn.closed = True
        self.leave(conn)
        if conn.writer is not None and conn.writer is not asyncio.current_task():
            conn.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.writer

    async def _write(self, conn: Conn) -> None:
        ws = conn.ws
        try:
            while True:
                conn.busy = False
                item = await conn.queue.get()
                conn.busy = True
                match item[0]:
                    case "raw":
                        await ws.send_text(item[1])
                    case "msg":
                        if conn.held is not None:
                            conn.held.append(item)
                            continue
                        _, channel_id, seq, text, instruction_id = item
                        await self._send_message(conn, channel_id, seq, text, instruction_id)
                    case "resume":
                        await self._resume(conn, item[1])
                        await self._release(conn)
                    case "release":
                        await self._release(conn)
                    case "join":
                        await self._join_new(conn, item[1])
                    case "close":
                        conn.closed = True
                        await ws.close(code=item[1])
                        return
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            conn.closed = True
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("websocket writer failed")
            conn.closed = True
            with contextlib.suppress(Exception):
                await ws.close(code=1011)

    async def _release(self, conn: Conn) -> None:
        held, conn.held = conn.held, None
        for _, channel_id, seq, text, instruction_id in held or ():
            await self._send_message(conn, channel_id, seq, text, instruction_id)

    async def _send_message(
        self, conn: Conn, channel_id: int, seq: int, text: str, instruction_id: int | None
    ) -> None:
        behind = conn.behind(channel_id, seq)
        if behind < 0:
            return  # already sent on this connection
        if behind > 0:
            async with self.factory() as session:
                missing = await service.messages_after(session, channel_id, seq - behind - 1, limit=behind)
            for m in missing:
                await self._send_rendered(conn, m)
        await conn.ws.send_text(text)
        self._sent(conn, channel_id, seq, instruction_id)

    async def _send_rendered(self, conn: Conn, message: dict[str, Any]) -> None:
        channel_id, seq = int(message["channel_id"]), int(message["seq"])
        if seq <= conn.sent.get(channel_id, 0):
            return
        await conn.ws.send_text(_dumps({"type": "message", **message}))
        instruction = message.get("instruction")
        self._sent(conn, channel_id, seq, int(instruction["id"]) if instruction else None)

    def _sent(self, conn: Conn, channel_id: int, seq: int, instruction_id: int | None) -> None:
        """A message is on the socket: its position, and for an instruction its "delivered" mark."""
        conn.sent[channel_id] = seq
        conn.live_sent.add(channel_id)
        unit_id = conn.unit_id
        if instruction_id is not None and unit_id is not None:
            self.batcher.put(Op("delivered", instruction_id, unit_id))

    async def _resume(self, conn: Conn, cursors: dict[int, int]) -> None:
        for channel_id, cursor in sorted(cursors.items()):
            if channel_id not in conn.channels:
                await conn.ws.send_text(
                    _dumps(
                        {
                            "type": "error",
                            "code": "not_found",
                            "message": "频道不存在",
                            "channel_id": channel_id,
                        }
                    )
                )
                continue
            known = conn.sent.get(channel_id, 0)
            if channel_id in conn.live_sent:
                # A late resume (live messages already went out): never go below what this connection
                # sent, which would send it twice, but still send what the client missed before it opened.
                base = conn.baseline.get(channel_id, 0)
                if cursor < base:
                    async with self.factory() as session:
                        missed = await service.messages_after(
                            session, channel_id, cursor, limit=base - cursor
                        )
                    for m in missed:
                        if int(m["seq"]) <= base:
                            await conn.ws.send_text(_dumps({"type": "message", **m}))
                conn.sent[channel_id] = max(cursor, known)
                continue
            conn.sent[channel_id] = cursor
            if cursor >= known:
                # Nothing newer than the client's cursor was committed when the socket opened; later
                # messages come live (held until now) and gaps are filled from the database.
                continue
            while True:  # in pages, so a long absence does not load a whole channel at once
                async with self.factory() as session:
                    page = await service.messages_after(session, channel_id, conn.sent[channel_id], limit=500)
                for m in page:
                    await self._send_rendered(conn, m)
                if len(page) < 500:
                    break
        await conn.ws.send_text(_dumps({"type": "resumed"}))

    async def _join_new(self, conn: Conn, channel_id: int) -> None:
        if channel_id in conn.channels:
            return
        async with self.factory() as session:
            try:
                channel = await service.get_channel(session, conn.principal, channel_id)
            except AppError:
                return
            info = {
                "id": channel.id,
                "kind": channel.kind,
                "name": channel.name,
                "last_seq": channel.last_seq,
            }
        self.join(conn, channel_id)
        conn.sent[channel_id] = 0
        await conn.ws.send_text(_dumps({"type": "channel", "channel": info}))
        # Everything already in it (usually the one message that created it), then live.
        async with self.factory() as session:
            backlog = await service.messages_after(session, channel_id, 0, limit=500)
        for m in backlog:
            await self._send_rendered(conn, m)

    # session checks
    async def _live_identities(self, auth_ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
        ids = list(auth_ids)
        out: dict[int, tuple[Any, ...]] = {}
        async with self.factory() as session:
            dialect = session.get_bind().dialect.name
            for start in range(0, len(ids), 1000):
                rows = await session.execute(
                    select(
                        AuthSession.id,
                        User.role,
                        User.station_id,
                        User.unit_id,
                        User.service_point_id,
                        User.team_id,
                        User.zone_id,
                    )
                    .join(User, User.id == AuthSession.user_id)
                    .where(live_sign_ins(ids[start : start + 1000], dialect))
                )
                for auth_id, *identity in rows:
                    out[auth_id] = tuple(identity)
        return out

    async def still_valid(self, conn: Conn) -> bool:
        live = await self._live_identities([conn.auth_id])
        ok = live.get(conn.auth_id) == conn.identity
        conn.validated_at = time.monotonic()
        if not ok:
            conn.close(CLOSE_SESSION_ENDED)
        return ok

    async def sweep(self, part: int | None = None) -> int:
        """Close every socket whose session ended (logout, expiry, disabled user, role change);
        with ``part`` only the sockets whose sign-in id is ``part`` modulo ``SWEEP_SLICES``."""
        pool = self.conns if part is None else self.slices[part % SWEEP_SLICES]
        conns = [c for c in pool if not c.closed]
        if not conns:
            return 0
        live = await self._live_identities({c.auth_id for c in conns})
        ended = 0
        for conn in conns:
            if live.get(conn.auth_id) != conn.identity:
                conn.close(CLOSE_SESSION_ENDED)
                ended += 1
        return ended

    async def _sweep_forever(self) -> None:
        tick = 0
        while True:
            await asyncio.sleep(SWEEP_SECONDS / SWEEP_SLICES)
            try:
                await self.sweep(tick % SWEEP_SLICES)
            except Exception:
                log.exception("session sweep failed")
            tick += 1
            if self.settler is not None and tick % SWEEP_SLICES == 0:
                self.settler.reclaim()

    async def shutdown(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
        if self.settler is not None:
            self.settler.cancel()
        for conn in list(self.conns):
            await self.close(conn)
        await self.handshakes.stop()
        await self.batcher.stop()
        if self.channels_sub is not None:
            self.channels_sub.close()
        if self.sessions_sub is not None:
            self.sessions_sub.close()


FEED_TOPIC = "feed"


def feed_visible(principal: Principal, item: dict[str, Any]) -> bool:
    """The live feed (cockpit) is for the command: the bureau sees all, a station its own items."""
    if principal.scope.is_all:
        return True
    if principal.role is Role.STATION_OFFICER:
        return item.get("station_id") in principal.scope.station_ids
    return False


def get_hub(app: Any) -> Hub:
    hub: Hub | None = getattr(app.state, "messaging_hub", None)
    if hub is None:
        hub = Hub(app.state.sessionmaker, app.state.write_sessionmaker, app.state.settings)
        app.state.messaging_hub = hub
    return hub


# --- the endpoint --------------------------------------------------------------------------------


def origin_allowed(origin: str, ws: WebSocket, settings: Settings) -> bool:
    allowed = {o.strip().rstrip("/") for o in settings.allowed_origins.split(",") if o.strip()}
    if origin.rstrip("/") in allowed:
        return True
    host = ws.headers.get("host", "")
    return bool(host) and origin.rstrip("/") in (f"http://{host}", f"https://{host}")


async def _authenticate(ws: WebSocket, handshakes: HandshakeBatcher) -> Opening | None:
    ip = ws.client.host if ws.client else None
    cookie = ws.cookies.get(auth.SESSION_COOKIE)
    if cookie:
        opening = await handshakes.open(cookie, "cookie", ip)
        if opening is not None:
            return opening
    try:
        raw = await asyncio.wait_for(ws.receive_text(), timeout=AUTH_TIMEOUT)
        frame = json.loads(raw)
    except (TimeoutError, ValueError, KeyError):
        return None
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not isinstance(frame.get("token"), str):
        return None
    return await handshakes.open(frame["token"][:200], "bearer", ip)


@router.websocket("/ws")
async def websocket_endpoint(ws: WebSocket) -> None:
    settings: Settings = ws.app.state.settings
    origin = ws.headers.get("origin")
    await ws.accept()
    if origin and not origin_allowed(origin, ws, settings):
        await ws.close(code=CLOSE_BAD_ORIGIN)
        return
    hub = get_hub(ws.app)
    try:
        opening = await _authenticate(ws, hub.handshakes)
    except WebSocketDisconnect:
        return
    except (SQLAlchemyError, OSError, TimeoutError):
        log.warning("websocket authentication failed on the database; client told to retry")
        with contextlib.suppress(Exception):
            await ws.close(code=CLOSE_TRY_AGAIN)
        return
    if opening is None:
        with contextlib.suppress(Exception):
            await ws.close(code=CLOSE_BAD_AUTH)
        return
    conn = hub.open(ws, opening)
    # The frames are read in a task of their own: this coroutine sits under some twenty layers of
    # middleware and routing, and every resumption of it walks back down through all of them
    # (their own frames held ~5 % of a worker's samples while 10,000 acknowledgements came in).
    reader = asyncio.create_task(_read_frames(hub, conn, ws))
    DirectReader.install(ws.scope, functools.partial(take_now, hub, conn))
    try:
        await reader
    finally:
        reader.cancel()
        # Let the writer finish a pending close frame, then forget the connection.
        if conn.writer is not None and not conn.writer.done() and (conn.busy or not conn.queue.empty()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(conn.writer), 0.05)
        await hub.close(conn)


async def _read_frames(hub: Hub, conn: Conn, ws: WebSocket) -> None:
    try:
        while not conn.closed:
            conn.reading = True
            try:
                raw = await ws.receive_text()
            finally:
                conn.reading = False
            if conn.closed:
                break
            await handle_frame(hub, conn, raw)
    except (WebSocketDisconnect, RuntimeError):
        pass


def take_now(hub: Hub, conn: Conn, raw: str) -> bool:
    """A receipt frame handled at once, from the server protocol (``DirectReader``): only while
    the reader task waits for its next frame, so frames are still handled in the order sent.
    False: the frame goes the ASGI way to the reader task."""
    if not conn.reading or conn.closed:
        return False
    frame = _object(raw)
    kind = frame.get("type") if frame is not None else None
    op = _RECEIPT_OPS.get(kind) if isinstance(kind, str) else None
    if frame is None or op is None:
        return False
    hub.direct_reads += 1
    try:
        _release_held(conn, kind)
        op(hub, conn, frame)
    except AppError as exc:
        _refused(conn, exc)
    except Exception:
        # Raised into the server's data_received it would drop the socket without a word.
        log.exception("websocket frame failed")
        conn.close(1011)
    return True


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        return None
    return value


def _object(raw: str) -> dict[str, Any] | None:
    """The frame as a JSON object, or None when it is not one."""
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


async def handle_frame(hub: Hub, conn: Conn, raw: str) -> None:
    frame = _object(raw)
    if frame is None:
        conn.frame({"type": "error", "code": "bad_request", "message": "无法解析的消息"})
        return
    kind = frame.get("type")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    op = _RECEIPT_OPS.get(kind) if isinstance(kind, str) else None
    if handler is None and op is None:
        conn.frame({"type": "error", "code": "bad_request", "message": f"未知的消息类型: {str(kind)[:32]}"})
        return
    _release_held(conn, kind)
    try:
        if op is not None:
            op(hub, conn, frame)
        elif handler is not None:
            await handler(hub, conn, frame)
    except AppError as exc:
        _refused(conn, exc)


def _release_held(conn: Conn, kind: object) -> None:
    if kind != "resume" and conn.held is not None:
        conn.push(("release",))  # a client that does not resume gets live messages from now on


def _refused(conn: Conn, exc: AppError) -> None:
    conn.frame({"type": "error", "code": exc.code, "message": exc.message, "details": exc.details})


async def _on_ping(hub: Hub, conn: Conn, frame: dict[str, Any]) -> None:
    if time.monotonic() - conn.validated_at > PING_RECHECK_SECONDS and not await hub.still_valid(conn):
        return
    conn.frame({"type": "pong"})


async def _on_resume(hub: Hub, conn: Conn, frame: dict[str, Any]) -> None:
    # The first resume follows authentication at once: no need to look the session up again.
    if conn.resumed and not await hub.still_valid(conn):
        return
    conn.resumed = True
    raw = frame.get("cursors")
    if not isinstance(raw, dict):
        raise AppError("cursors 须为对象", code="bad_request")
    cursors: dict[int, int] = {}
    for key, value in raw.items():
        channel_id = _int(int(key)) if str(key).isdigit() and len(str(key)) < 11 else None
        if channel_id is None or isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AppError("无效的 cursors", code="bad_request")
        cursors[channel_id] = value
    conn.push(("resume", cursors))


async def _on_send(hub: Hub, conn: Conn, frame: dict[str, Any]) -> None:
    if not await hub.still_valid(conn):
        return
    channel_id = _int(frame.get("channel_id"))
    if channel_id is None:
        raise AppError("缺少 channel_id", code="bad_request")
    try:
        fields = {
            k: frame[k]
            for k in ("body", "reply_to", "mentions", "attachment_ids", "client_id")
            if frame.get(k) is not None
        }
        if "client_id" in fields:
            fields["client_id"] = str(fields["client_id"])[:64]
        body = schemas.MessageIn.model_validate(fields)
    except ValueError as exc:
        raise AppError(
            "消息格式不正确", code="validation_error", details=[{"message": str(exc)[:300]}]
        ) from exc
    async with hub.write_factory() as session:
        message = await service.send_message(session, conn.principal, channel_id, body)
    conn.frame(
        {"type": "sent", "client_id": frame.get("client_id"), "id": message["id"], "seq": message["seq"]}
    )


def _receipt_op(kind: str) -> Callable[[Hub, Conn, dict[str, Any]], None]:
    # Synchronous (the batcher only queues it): so it can be handled straight from the socket.
    def handler(hub: Hub, conn: Conn, frame: dict[str, Any]) -> None:
        instruction_id = _int(frame.get("instruction_id"))
        if instruction_id is None:
            raise AppError("缺少 instruction_id", code="bad_request")
        unit_id = conn.unit_id
        if unit_id is None:
            raise AppError("只有单位安保人员可以确认指令", code="forbidden")
        text = frame.get("text") if kind == "ack" else None
        if text is not None and (not isinstance(text, str) or len(text) > 500 or "\x00" in text):
            raise AppError("确认回复须为 500 字以内的文字", code="validation_error")
        hub.batcher.put(
            Op(
                kind,
                instruction_id,
                unit_id,
                user_id=conn.user_id,
                auth_id=conn.auth_id,
                text=text,
                conn=conn,
            )
        )

    return handler


async def _on_subscribe(hub: Hub, conn: Conn, frame: dict[str, Any]) -> None:
    topics = frame.get("topics")
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise AppError("topics 须为字符串列表", code="bad_request")
    unknown = [t for t in topics if t != FEED_TOPIC]
    if unknown:
        raise AppError(f"未知的订阅主题: {unknown[:5]}", code="bad_request")
    if topics:
        hub.subscribe_feed(conn)


_HANDLERS: dict[str, Callable[[Hub, Conn, dict[str, Any]], Any]] = {
    "subscribe": _on_subscribe,
    "ping": _on_ping,
    "resume": _on_resume,
    "send": _on_send,
}
_RECEIPT_OPS: dict[str, Callable[[Hub, Conn, dict[str, Any]], None]] = {
    "ack": _receipt_op("ack"),
    "read": _receipt_op("read"),
}


async def channel_ids_of(session: AsyncSession, actor: Principal) -> list[int]:
    return list(await session.scalars(select(Channel.id).where(service.channel_clause(actor))))


@contextlib.asynccontextmanager
async def running(app: Any, redis_url: str | None) -> AsyncIterator[None]:
    """For the app's lifespan: start the process-wide broker, and on the way out close this app's
    WebSocket hub (flushing queued receipts) and the broker."""
    await pubsub.start_broker(redis_url)
    try:
        yield
    finally:
        hub: Hub | None = getattr(app.state, "messaging_hub", None)
        if hub is not None:
            await hub.shutdown()
        await pubsub.stop_broker()
