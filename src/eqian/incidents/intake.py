"""Filing incidents: decided per request, stored many per transaction.

A request is classified, linked and routed in the request's own coroutine (CPU only, against the
cached registry and policy). What is left is writing: the idempotency key's claim and answer, the
incident, its first timeline entry, the ``incidents.reported`` outbox event and the audit record.
Done one request at a time that is about ten round trips and one step of the audit chain's global
lock per incident, and at a few hundred incidents a second the lock, not the work, sets the pace.
So each worker's ``IntakeBatcher`` writes whatever requests are waiting in one transaction: one
multi-row statement per table and one step of the chain for the whole batch. A request waits for
the commit of its batch, so a ``201`` still means stored. While a batch is being written the next
one gathers; an idle worker writes a lone request at once.

A problem of one filing (its 110 number already stored, its key reused with another body) is that
filing's answer, not the batch's. A batch the database refuses as a whole (a 110 number another
worker stored between our check and our insert) is written again one filing per transaction,
which sorts out who gets the conflict.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import audit, idempotency, unnest
from eqian.core.db import dialect_insert, table_of, utcnow
from eqian.core.errors import AppError, Conflict, ValidationFailed
from eqian.core.idempotency import IdempotencyKey
from eqian.core.outbox import OutboxEvent
from eqian.core.permissions import Principal
from eqian.incidents import linking, routing, schemas, service
from eqian.incidents.models import Incident, IncidentEvent

log = logging.getLogger(__name__)

MAX_BATCH = 200  # filings per transaction (bounds a batch's statements and its lock time)
# Batches a worker writes at once. While one waits for the audit chain's lock or its commit, the
# next claims its keys and takes its ids: with one at a time a worker's intake was bounded by a
# batch's five round trips, each waiting for the busy event loop (docs/benchmarks.md, stop 20).
IN_FLIGHT = 2
STOP_SECONDS = 5.0  # how long stopping waits for queued filings to be written
DUPLICATE = "该警情已录入（接警编号重复）"

# As many incident ids as the batch stores, from the table's sequence (PostgreSQL).
_IDS = text(
    "SELECT ARRAY(SELECT nextval(pg_get_serial_sequence('incidents', 'id')) FROM generate_series(1, :n))"
)

Outcome = tuple[dict[str, Any], bool] | AppError  # (the incident as JSON, replayed?) or the refusal


@dataclass(eq=False)
class Filing:
    """One request's incident, decided and waiting to be written."""

    actor: Principal
    values: dict[str, Any]  # the incident's columns (``service.prepare``)
    names: tuple[str, str | None]  # station and unit names for the answer
    key: str | None  # Idempotency-Key
    digest: str  # hash of the request body, for the key
    numbered: bool  # carries a 110 number: a second filing of it is a duplicate
    now: dt.datetime


async def create_incident(
    session: AsyncSession,
    actor: Principal,
    body: schemas.IncidentIn,
    *,
    idempotency_key: str | None = None,
    batcher: IntakeBatcher | None = None,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """File one incident: classified, linked, routed, audited, ``incidents.reported`` emitted.

    Returns (the incident as JSON, replayed?). With an ``Idempotency-Key`` a retry returns the first
    answer and creates nothing; a repeat of a 110 number answers 409 ``duplicate_incident``. With a
    ``batcher`` the writing joins the worker's next batch; without, it is a batch of one on ``session``.
    """
    service.require_intake(actor)
    digest = idempotency.request_hash(body.model_dump(mode="json"))
    now = now or utcnow()
    try:
        filing = await decide(session, actor, body, idempotency_key, digest, now)
    except ValidationFailed:
        # A retry of a request that was stored answers as the first time, even if the registry
        # has changed since and the same body would no longer pass.
        if idempotency_key is not None:
            with contextlib.suppress(Conflict):  # no stored answer for this key and body
                stored = await idempotency.replay(
                    session,
                    user_id=actor.user_id,
                    scope=service.IDEMPOTENCY_SCOPE,
                    key=idempotency_key,
                    request_hash=digest,
                )
                return stored.body, True
        raise
    # End the request's read transaction first: on SQLite it holds the write lock that the batch
    # needs, and a transaction left open across the wait would pin a pooled connection.
    await session.rollback()
    if batcher is not None:
        return await batcher.submit(filing)
    [outcome] = await store(session, [filing])
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


async def decide(
    session: AsyncSession,
    actor: Principal,
    body: schemas.IncidentIn,
    key: str | None,
    digest: str,
    now: dt.datetime,
) -> Filing:
    """Classify, link and route ``body`` (raises ``ValidationFailed`` naming the field)."""
    linker = await linking.get_linker(session)
    policy = await routing.get_policy(session)
    try:
        prepared = _prepare(actor, body, now, linker, policy)
    except ValidationFailed:
        # A unit or station registered a moment ago, perhaps through another worker, is not in
        # the cached registry yet: ask the database once more before refusing.
        linker = await linking.get_linker(session, fresh=True)
        prepared = _prepare(actor, body, now, linker, policy)
    v = prepared.values
    if body.number is None:
        # Without a 110 number an API call is its own incident (retries are what Idempotency-Key is for).
        v["source_key"] = f"u:{uuid.uuid4().hex}"
    station_name = linker.station_names.get(v["station_id"])
    unit = linker.units.get(v["unit_id"]) if v["unit_id"] else None
    names = (
        (station_name, unit.name if unit else None)
        if station_name is not None
        else await service.names_of(session, v["station_id"], v["unit_id"])  # registry changed since
    )
    return Filing(actor, v, names, key, digest, body.number is not None, now)


def _prepare(
    actor: Principal,
    body: schemas.IncidentIn,
    now: dt.datetime,
    linker: linking.Linker,
    policy: routing.Policy,
) -> service.Prepared:
    return service.prepare(
        text=body.description,
        reported_at=body.reported_at or now,
        number=body.number,
        phone=body.caller_phone,
        address=body.address,
        lat=body.lat,
        lng=body.lng,
        unit_ref=body.unit_ref,
        category=body.category,
        police=body.police,
        severity=body.severity,
        fraud_loss=body.fraud_loss_yuan,
        station_id=body.station_id,
        stations=service.stations_of(actor),
        linker=linker,
        policy=policy,
        source="api",
        created_by=actor.user_id or None,
    )


# --- writing -----------------------------------------------------------------------------------


async def store(session: AsyncSession, filings: list[Filing]) -> list[Outcome]:
    """Write ``filings`` in one transaction (committed here); one outcome per filing, in order."""
    try:
        outcomes = await _write(session, filings)
        await session.commit()
        return outcomes
    except IntegrityError as exc:
        await session.rollback()
        if len(filings) > 1:
            log.info("an intake batch of %d met a concurrent duplicate; writing one by one", len(filings))
            return [outcome for f in filings for outcome in await store(session, [f])]
        return [await _lost_race(session, filings[0], exc)]


async def _lost_race(session: AsyncSession, f: Filing, exc: IntegrityError) -> Outcome:
    """A lone filing refused at insert or commit: its key or its number was stored meanwhile, or
    (what the registry's cache should never let through) a row it refers to is gone."""
    try:
        if f.key is not None:
            return await _replay(session, f)
        if f.numbered and await session.scalar(
            select(Incident.id).where(Incident.source_key == f.values["source_key"])
        ):
            return Conflict(DUPLICATE, code="duplicate_incident")
    finally:
        await session.rollback()
    log.error("an incident could not be stored: %s", exc.orig)
    return Conflict("警情未能保存（数据已变化），请重试", code="intake_conflict")


async def _replay(session: AsyncSession, f: Filing) -> Outcome:
    """The stored answer to ``f``'s key, or why there is none to give."""
    try:
        stored = await idempotency.replay(
            session,
            user_id=f.actor.user_id,
            scope=service.IDEMPOTENCY_SCOPE,
            key=f.key or "",
            request_hash=f.digest,
        )
    except AppError as exc:
        return exc
    return stored.body, True


async def _write(session: AsyncSession, filings: list[Filing]) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(filings)
    claims = await _claim_keys(session, filings, outcomes)
    await _refuse_duplicates(session, filings, outcomes, claims)
    todo = sorted(
        (i for i, o in enumerate(outcomes) if o is None), key=lambda i: filings[i].values["source_key"]
    )
    if todo:
        insert_batch = _insert_pg if session.get_bind().dialect.name == "postgresql" else _insert
        answers = await insert_batch(session, filings, todo, claims)
        for i in todo:
            outcomes[i] = (answers[i], False)
    return [o for o in outcomes if o is not None]


@dataclass
class Rows:
    """What a batch writes besides the incidents, and the answers, once the incidents' ids are known."""

    answers: dict[int, dict[str, Any]]
    events: list[dict[str, Any]]
    outbox: list[dict[str, Any]]
    remembered: list[tuple[int, dict[str, Any]]]  # (filing index, the answer its key keeps)
    audit: list[audit.Entry]


def _rows(
    filings: list[Filing], todo: list[int], incidents: list[dict[str, Any]], claims: dict[int, int]
) -> Rows:
    """``incidents`` are the stored rows of ``todo``'s filings, in order, ids included (completed
    with the columns' defaults: the answers are built from exactly what is stored)."""
    rows = Rows({}, [], [], [], [])
    for i, row in zip(todo, incidents, strict=True):
        f = filings[i]
        # Read through attributes as from a loaded Incident: an ORM object built for this alone
        # cost a worker more than the row's share of the batch's statements.
        answer = service.incident_out(cast(Incident, SimpleNamespace(**row)), f.names, f.now).model_dump(
            mode="json"
        )
        rows.answers[i] = answer
        rows.events.append(
            {
                "incident_id": row["id"],
                "action": "reported",
                "to_status": "reported",
                "actor_id": f.actor.user_id or None,
                "at": f.now,
            }
        )
        rows.outbox.append(
            {"topic": service.REPORTED_TOPIC, "payload": service.reported_payload(row["id"], f.values)}
        )
        if f.key is not None:  # claimed before (``claims``) or with the batch (``claim_now``)
            rows.remembered.append((i, answer))
        rows.audit.append(
            audit.entry_for(
                f.actor,
                "incidents.incident.create",
                "incident",
                row["id"],
                {k: f.values[k] for k in ("category", "police", "unit_id", "route")},
            )
        )
    return rows


async def _insert(
    session: AsyncSession, filings: list[Filing], todo: list[int], claims: dict[int, int]
) -> dict[int, dict[str, Any]]:
    """The batch as Core statements, a table each (SQLite, and any database but PostgreSQL); the
    answers of ``todo``'s filings."""
    table = table_of(Incident)
    stored = [unnest.complete(table, filings[i].values) for i in todo]
    ids = (
        await session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), stored)
    ).scalars()
    for row, incident_id in zip(stored, ids, strict=True):
        row["id"] = incident_id
    rows = _rows(filings, todo, stored, claims)
    await session.execute(insert(table_of(IncidentEvent)), rows.events)
    await session.execute(insert(table_of(OutboxEvent)), rows.outbox)
    if rows.remembered:
        keys = table_of(IdempotencyKey)
        await session.execute(
            update(keys)
            .where(keys.c.id == bindparam("key_id"))
            .values(status_code=201, response=bindparam("answer")),
            [{"key_id": claims[i], "answer": answer} for i, answer in rows.remembered],
        )
    await audit.record_many(session, rows.audit)
    return rows.answers


async def _insert_pg(
    session: AsyncSession,
    filings: list[Filing],
    todo: list[int],
    claims: dict[int, int],
    *,
    claim_now: bool = False,
) -> dict[int, dict[str, Any]]:
    """The batch in two statements on PostgreSQL: the incidents' ids from their sequence, then every
    row — incidents, timeline, outbox, the keys' answers — as ``unnest`` inserts (``core.unnest``)
    in one ``WITH`` statement that also appends the audit rows, linked by the database under the
    chain's lock (``audit.pg_append``). The keys were claimed before (``claims``), or with
    ``claim_now`` are inserted here with their answers (``store_at_once``)."""
    table = table_of(Incident)
    ids = await session.scalar(_IDS, {"n": len(todo)})
    stored = [
        unnest.complete(table, {**filings[i].values, "id": incident_id})
        for i, incident_id in zip(todo, ids, strict=True)
    ]
    rows = _rows(filings, todo, stored, claims)
    dialect = session.get_bind().dialect
    parts = [
        unnest.insert_sql(table, stored, dialect, "inc", completed=True),
        unnest.insert_sql(table_of(IncidentEvent), rows.events, dialect, "ev"),
        unnest.insert_sql(table_of(OutboxEvent), rows.outbox, dialect, "ob"),
    ]
    keys = table_of(IdempotencyKey)
    if rows.remembered and claim_now:
        at = utcnow()
        answered = [
            {
                "user_id": filings[i].actor.user_id,
                "scope": service.IDEMPOTENCY_SCOPE,
                "key": filings[i].key,
                "request_hash": filings[i].digest,
                "status_code": 201,
                "response": answer,
                "created_at": at,
            }
            for i, answer in rows.remembered
        ]
        parts.append(unnest.insert_sql(keys, answered, dialect, "key"))
    elif rows.remembered:
        answer = keys.c.response.type.dialect_impl(dialect).bind_processor(dialect) or json.dumps
        parts.append(
            (
                "UPDATE idempotency_keys SET status_code = 201, response = CAST(k.answer AS JSON) "
                "FROM unnest(CAST(:key_ids AS INTEGER[]), CAST(:key_answers AS TEXT[])) AS k(id, answer) "
                "WHERE idempotency_keys.id = k.id",
                {
                    "key_ids": [claims[i] for i, _ in rows.remembered],
                    "key_answers": [answer(a) for _, a in rows.remembered],
                },
            )
        )
    names = tuple(f"w{n}" for n in range(len(parts)))
    chain_ctes, chain_insert, chain_params = audit.pg_append(rows.audit, after=names)
    ctes = [f"{name} AS ({part} RETURNING 1)" for name, (part, _) in zip(names, parts, strict=True)]
    ctes += chain_ctes
    params = {k: v for _, part_params in parts for k, v in part_params.items()} | chain_params
    seqs = (
        await session.execute(unnest.statement(f"WITH RECURSIVE {', '.join(ctes)} {chain_insert}"), params)
    ).scalars()
    if len(list(seqs)) != len(todo):  # the statement links one row per entry or fails; never quietly less
        raise RuntimeError("the audit chain took fewer rows than the batch stored")
    return rows.answers


async def store_at_once(session: AsyncSession, filings: list[Filing]) -> list[Outcome] | None:
    """PostgreSQL, the common case: the whole batch as one statement that commits by itself, keys
    claimed with their answers in it. None when the database refused it (a key used before, a 110
    number stored before or twice in the batch): nothing of it was stored, and the caller writes
    the batch with ``store``, which tells each filing's case apart. ``session`` must be unused.

    Why: two workers' batches queue on the audit chain's lock, held to the commit. Ending the
    transaction with the statement that takes the lock holds it for the server's own work only;
    with a COMMIT after it, the lock also waited for the worker's busy event loop to send that
    COMMIT (pg_stat_activity under load: a batch "idle in transaction" holding the lock, another
    waiting for it, most of the time)."""
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    todo = sorted(range(len(filings)), key=lambda i: filings[i].values["source_key"])
    try:
        answers = await _insert_pg(session, filings, todo, {}, claim_now=True)
    except IntegrityError:
        return None
    return [(answers[i], False) for i in range(len(filings))]


async def _claim_keys(
    session: AsyncSession, filings: list[Filing], outcomes: list[Outcome | None]
) -> dict[int, int]:
    """Claim every filing's key in one statement (sorted, so two batches claiming the same keys
    wait for each other rather than deadlock); a key claimed before answers with its stored answer.
    Returns filing index -> claimed row id."""
    keyed = sorted(
        (i for i, f in enumerate(filings) if f.key is not None),
        key=lambda i: (filings[i].actor.user_id, filings[i].key),
    )
    if not keyed:
        return {}
    at = utcnow()
    keys = table_of(IdempotencyKey)
    # One statement for the table, with the batch's rows as parameters (the driver's executemany,
    # sent as multi-row VALUES): compiled once, where rows inlined with .values() compiled anew for
    # every batch size.
    rows = await session.execute(
        dialect_insert(session)(keys)
        .on_conflict_do_nothing(index_elements=["user_id", "scope", "key"])
        .returning(keys.c.id, keys.c.user_id, keys.c.key),
        [
            {
                "user_id": filings[i].actor.user_id,
                "scope": service.IDEMPOTENCY_SCOPE,
                "key": filings[i].key,
                "request_hash": filings[i].digest,
                "status_code": idempotency.PENDING,
                "created_at": at,
            }
            for i in keyed
        ],
    )
    claimed = {(user_id, key): row_id for row_id, user_id, key in rows}
    claims: dict[int, int] = {}
    for i in keyed:
        f = filings[i]
        row_id = claimed.get((f.actor.user_id, f.key))
        if row_id is None:
            outcomes[i] = await _replay(session, f)
        else:
            claims[i] = row_id
    return claims


async def _refuse_duplicates(
    session: AsyncSession, filings: list[Filing], outcomes: list[Outcome | None], claims: dict[int, int]
) -> None:
    """A 110 number stored before, or twice in this batch, is a ``duplicate_incident``; the key it
    claimed is released (as the rollback of a lone request would)."""
    numbered = [i for i, f in enumerate(filings) if f.numbered and outcomes[i] is None]
    if not numbered:
        return
    keys = {filings[i].values["source_key"] for i in numbered}
    seen = set(await session.scalars(select(Incident.source_key).where(Incident.source_key.in_(keys))))
    released = []
    for i in numbered:
        source_key = filings[i].values["source_key"]
        if source_key in seen:
            outcomes[i] = Conflict(DUPLICATE, code="duplicate_incident")
            if i in claims:
                released.append(claims.pop(i))
        seen.add(source_key)
    if released:
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(released)))


# --- the batcher -------------------------------------------------------------------------------

Waiting = tuple[Filing, "asyncio.Future[tuple[dict[str, Any], bool]]"]


class IntakeBatcher:
    """Per worker: filings queue here and are written a batch per transaction (see the module)."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        self.queue: collections.deque[Waiting] = collections.deque()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.in_flight: set[asyncio.Task[None]] = set()
        bind = factory.kw.get("bind")
        self.postgres = bind is not None and bind.dialect.name == "postgresql"
        # SQLite writes one transaction at a time: a second batch would only wait for its lock.
        self.limit = IN_FLIGHT if self.postgres else 1
        self.batches = 0
        self.step_by_step = 0  # PostgreSQL batches refused at once and written step by step
        self.stored = 0

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop (tests run each in its own): new state
            self.loop, self.wakeup, self.task, self.in_flight = loop, asyncio.Event(), None, set()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())
        return loop

    async def submit(self, filing: Filing) -> tuple[dict[str, Any], bool]:
        """Wait until the batch holding ``filing`` has committed; its answer or its refusal."""
        future: asyncio.Future[tuple[dict[str, Any], bool]] = self._start().create_future()
        # If the request is gone by then, its refusal is nobody's to read: not an asyncio warning.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.queue.append((filing, future))
        self.wakeup.set()
        # A client that goes away does not take its filing back: it is written with its batch,
        # and a retry with the same key gets its answer.
        return await asyncio.shield(future)

    def _take(self) -> list[Waiting]:
        """Up to ``MAX_BATCH`` in arrival order; a second use of a key waits for the next batch,
        where it finds the first one's answer."""
        batch: list[Waiting] = []
        later: list[Waiting] = []
        keys: set[tuple[int, str]] = set()
        while self.queue and len(batch) < MAX_BATCH:
            item = self.queue.popleft()
            f = item[0]
            if f.key is not None:
                if (f.actor.user_id, f.key) in keys:
                    later.append(item)
                    continue
                keys.add((f.actor.user_id, f.key))
            batch.append(item)
        self.queue.extendleft(reversed(later))
        return batch

    @property
    def writing(self) -> bool:
        return bool(self.in_flight)

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue and len(self.in_flight) < self.limit:
                task = asyncio.create_task(self._write(self._take()))
                self.in_flight.add(task)
                task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.wakeup.set()  # a place is free: look at the queue again

    async def _write(self, batch: list[Waiting]) -> None:
        outcomes: list[Outcome | Exception]
        try:
            outcomes = list(await self._store([f for f, _ in batch]))
        except Exception as exc:  # the database is down, say: every waiting request answers so
            log.exception("an intake batch of %d could not be written", len(batch))
            outcomes = [exc] * len(batch)
        self.batches += 1
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                self.stored += not outcome[1]
                future.set_result(outcome)

    async def _store(self, filings: list[Filing]) -> list[Outcome]:
        if self.postgres:
            async with self.factory() as session:
                if (outcomes := await store_at_once(session, filings)) is not None:
                    return outcomes
            self.step_by_step += 1
        async with self.factory() as session:
            return await store(session, filings)

    async def stop(self) -> None:
        """Write what is queued (for at most ``STOP_SECONDS``), then stop."""
        if self.task is None:
            return
        for _ in range(int(STOP_SECONDS / 0.05)):
            if not (self.queue or self.writing):
                break
            await asyncio.sleep(0.05)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.task = None
