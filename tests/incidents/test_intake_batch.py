"""Incidents written many per transaction (incidents/intake.py): every filing in a batch gets its
own answer, the batch's rows are all there and the audit chain holds; two batches racing for
the same 110 numbers store each number once."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, idempotency
from eqian.core.audit import AuditLog
from eqian.core.errors import AppError, Conflict
from eqian.core.idempotency import IdempotencyKey
from eqian.core.outbox import OutboxEvent
from eqian.core.permissions import Principal
from eqian.incidents import intake, linking, schemas
from eqian.incidents.models import Incident, IncidentEvent
from eqian.organizations.models import Unit
from tests.incidents.helpers import API, IncWorld, make_inc_world

TEXT = "织里镇童装厂工人讨薪，老板拖欠三个月工资"


async def _count(db: AsyncSession, model: type, *where: object) -> int:
    return await db.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


async def test_concurrent_posts_are_written_together_and_completely(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    iw = await make_inc_world(db)
    batcher: intake.IntakeBatcher = app.state.intake_batcher
    before, before_steps = batcher.batches, batcher.step_by_step
    n = 60
    responses = await asyncio.gather(
        *(
            client.post(
                API,
                json={"description": f"{TEXT}（第{i}起）", "number": f"110-{i:04d}"},
                headers={**iw.headers["station_officer"], "Idempotency-Key": f"k-{i}"},
            )
            for i in range(n)
        )
    )
    assert [r.status_code for r in responses] == [201] * n, [r.text for r in responses if r.status_code > 201]
    assert batcher.batches - before < n  # some requests shared a transaction
    assert batcher.step_by_step == before_steps  # on PostgreSQL each batch went in one statement
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == n
    assert {r.json()["number"] for r in responses} == {f"110-{i:04d}" for i in range(n)}
    assert await _count(db, Incident) == n
    assert await _count(db, IncidentEvent, IncidentEvent.action == "reported") == n
    assert await _count(db, OutboxEvent, OutboxEvent.topic == "incidents.reported") == n
    created = list(
        await db.scalars(select(AuditLog.entity_id).where(AuditLog.action == "incidents.incident.create"))
    )
    assert sorted(created) == sorted(str(i) for i in ids)
    assert (await audit.verify(db)).ok
    stored = {row.key: row for row in await db.scalars(select(IdempotencyKey))}
    assert len(stored) == n
    for i, r in enumerate(responses):
        assert stored[f"k-{i}"].status_code == 201
        assert stored[f"k-{i}"].response == r.json()


async def _filing(db: AsyncSession, iw: IncWorld, body: dict[str, object], key: str | None) -> intake.Filing:
    actor = Principal.of(iw.world.users["station_officer"])
    parsed = schemas.IncidentIn.model_validate(body)
    digest = idempotency.request_hash(parsed.model_dump(mode="json"))
    return await intake.decide(db, actor, parsed, key, digest, dt.datetime.now(dt.UTC))


def _code(outcome: intake.Outcome) -> str:
    return outcome.code if isinstance(outcome, AppError) else ("replayed" if outcome[1] else "created")


async def test_one_batch_answers_each_filing_on_its_own(app: FastAPI, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    first = await _filing(db, iw, {"description": TEXT, "number": "110-1"}, "k0")
    async with app.state.write_sessionmaker() as session:
        [(first_answer, replayed)] = await intake.store(session, [first])  # type: ignore[misc]
    assert not replayed

    batch = [
        await _filing(db, iw, {"description": TEXT, "number": "110-1"}, "k1"),  # number stored before
        await _filing(db, iw, {"description": TEXT, "number": "110-2"}, "k2"),  # new
        await _filing(db, iw, {"description": TEXT, "number": "110-2"}, None),  # same number again
        await _filing(db, iw, {"description": TEXT, "number": "110-1"}, "k0"),  # a retry of the first
        await _filing(db, iw, {"description": "另一起", "number": "110-3"}, "k0"),  # key reused
        await _filing(db, iw, {"description": TEXT}, None),  # no number, no key: always new
    ]
    async with app.state.write_sessionmaker() as session:
        outcomes = await intake.store(session, batch)
    assert [_code(o) for o in outcomes] == [
        "duplicate_incident",
        "created",
        "duplicate_incident",
        "replayed",
        "idempotency_key_reused",
        "created",
    ]
    assert outcomes[3] == (first_answer, True)
    assert isinstance(outcomes[0], Conflict)
    assert await _count(db, Incident) == 3
    # the refused filing's key was released, the created one's answer stored
    keys = {row.key: row.status_code for row in await db.scalars(select(IdempotencyKey))}
    assert keys == {"k0": 201, "k2": 201}
    assert await _count(db, AuditLog, AuditLog.action == "incidents.incident.create") == 3
    assert (await audit.verify(db)).ok


async def test_racing_batches_store_each_number_once(app: FastAPI, db: AsyncSession) -> None:
    """Two workers' batches with the same 110 numbers in different orders, at the same moment:
    on PostgreSQL the loser meets the winner's rows at insert and is written again one by one."""
    iw = await make_inc_world(db)
    numbers = [f"110-{i:03d}" for i in range(30)]
    left = [await _filing(db, iw, {"description": TEXT, "number": n}, None) for n in numbers]
    right = [await _filing(db, iw, {"description": TEXT, "number": n}, None) for n in reversed(numbers)]

    async def run(filings: list[intake.Filing]) -> list[intake.Outcome]:
        async with app.state.write_sessionmaker() as session:
            return await intake.store(session, filings)

    a, b = await asyncio.gather(run(left), run(right))
    codes = [_code(o) for o in a + b]
    assert codes.count("created") == 30
    assert codes.count("duplicate_incident") == 30
    assert await _count(db, Incident) == 30
    assert await _count(db, AuditLog, AuditLog.action == "incidents.incident.create") == 30
    assert (await audit.verify(db)).ok


async def test_a_stored_request_replays_after_the_registry_changed(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    iw = await make_inc_world(db)
    unit_id = iw.world.units["a1"]
    headers = {**iw.headers["station_officer"], "Idempotency-Key": "by-ref-1"}
    body = {"description": TEXT, "unit_ref": str(unit_id)}
    first = await client.post(API, json=body, headers=headers)
    assert first.status_code == 201
    await db.execute(update(Unit).where(Unit.id == unit_id).values(status="closed"))
    linking.invalidate()
    again = await client.post(API, json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # without the key the same body is now refused, naming the field
    fresh = await client.post(API, json=body, headers=iw.headers["station_officer"])
    assert fresh.status_code == 422
    assert fresh.json()["error"]["details"][0] == {
        "field": "unit_ref",
        "code": "unknown_unit",
        "message": "单位不存在或不在您的辖区内",
    }
    assert await _count(db, Incident) == 1


async def test_a_refusal_that_is_no_duplicate_is_not_called_one(app: FastAPI, db: AsyncSession) -> None:
    """The database refusing a filing for another reason (here a unit that no longer exists) is a
    409 to retry, not "already filed", and the rest of the batch is stored."""
    iw = await make_inc_world(db)
    gone = await _filing(db, iw, {"description": TEXT, "number": "110-9"}, None)
    gone.values["unit_id"] = 987_654
    fine = await _filing(db, iw, {"description": TEXT, "number": "110-10"}, None)
    async with app.state.write_sessionmaker() as session:
        outcomes = await intake.store(session, [gone, fine])
    assert [_code(o) for o in outcomes] == ["intake_conflict", "created"]
    assert await _count(db, Incident) == 1
    assert (await audit.verify(db)).ok


async def test_a_batch_in_one_statement_is_all_or_nothing(app: FastAPI, db: AsyncSession) -> None:
    """PostgreSQL's one-statement batch (``store_at_once``) stores a clean batch whole, keys and
    their answers included; a batch holding anything the database refuses stores nothing at all and
    is left to ``store``, which answers each filing's case."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement batch is PostgreSQL's")
    iw = await make_inc_world(db)
    clean = [
        await _filing(db, iw, {"description": TEXT, "number": "110-1"}, "k1"),
        await _filing(db, iw, {"description": TEXT}, None),
    ]
    async with app.state.write_sessionmaker() as session:
        outcomes = await intake.store_at_once(session, clean)
    assert outcomes is not None
    assert [_code(o) for o in outcomes] == ["created", "created"]
    key = await db.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "k1"))
    assert key is not None
    assert (key.status_code, key.response) == (201, outcomes[0][0])  # type: ignore[index]

    mixed = [
        await _filing(db, iw, {"description": TEXT, "number": "110-2"}, "k2"),  # new
        await _filing(db, iw, {"description": TEXT, "number": "110-1"}, "k1"),  # a retry of the first
    ]
    async with app.state.write_sessionmaker() as session:
        assert await intake.store_at_once(session, mixed) is None
    assert await _count(db, Incident) == 2  # nothing of the refused batch
    assert await _count(db, IdempotencyKey) == 1
    assert await _count(db, AuditLog, AuditLog.action == "incidents.incident.create") == 2
    async with app.state.write_sessionmaker() as session:
        outcomes = await intake.store(session, mixed)
    assert [_code(o) for o in outcomes] == ["created", "replayed"]
    assert await _count(db, Incident) == 3
    assert (await audit.verify(db)).ok


async def test_a_full_batch_goes_in_one_statement(app: FastAPI, db: AsyncSession) -> None:
    """The largest batch a worker takes (``MAX_BATCH`` filings, each with a key) in one statement:
    every incident, key and audit row stored, the chain's links computed by PostgreSQL verify."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement batch is PostgreSQL's")
    iw = await make_inc_world(db)
    batch = [
        await _filing(db, iw, {"description": f"{TEXT}（第{i}起）", "number": f"110-{i:04d}"}, f"k{i}")
        for i in range(intake.MAX_BATCH)
    ]
    async with app.state.write_sessionmaker() as session:
        outcomes = await intake.store_at_once(session, batch)
    assert outcomes is not None
    assert {_code(o) for o in outcomes} == {"created"}
    assert await _count(db, Incident) == intake.MAX_BATCH
    assert await _count(db, IdempotencyKey, IdempotencyKey.status_code == 201) == intake.MAX_BATCH
    created = AuditLog.action == "incidents.incident.create"
    assert await _count(db, AuditLog, created) == intake.MAX_BATCH
    assert (await audit.verify(db)).ok
