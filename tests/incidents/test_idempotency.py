"""Retries of POST /api/v1/incidents: one incident however many times and however concurrently a
request is retried with its Idempotency-Key; the same key with another body is refused."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.idempotency import IdempotencyKey
from eqian.incidents.models import Incident
from tests.incidents.helpers import API, make_inc_world

BODY = {"description": "吾悦广场一名五岁男孩走失，家长在三楼服务台求助", "caller_phone": "13812345678"}


async def _count(db: AsyncSession) -> int:
    return await db.scalar(select(func.count()).select_from(Incident)) or 0


async def test_fifty_concurrent_retries_make_one_incident(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    iw = await make_inc_world(db)
    headers = {**iw.headers["station_officer"], "Idempotency-Key": "call-0001"}
    responses = await asyncio.gather(*(client.post(API, json=BODY, headers=headers) for _ in range(50)))
    assert {r.status_code for r in responses} == {201}, {r.status_code: r.text for r in responses}
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 49
    assert await _count(db) == 1
    assert bodies[0]["unit_id"] == iw.world.units["a2"]  # 吾悦广场, by name

    # A later retry answers the same again.
    late = await client.post(API, json=BODY, headers=headers)
    assert late.status_code == 201
    assert late.json() == bodies[0]

    # The same key with another body is refused, and writes nothing.
    other = await client.post(API, json={**BODY, "address": "织里镇中华路1号"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await _count(db) == 1

    # Keys belong to a user: the bureau's "call-0001" is its own request.
    mine = {**iw.headers["bureau_admin"], "Idempotency-Key": "call-0001"}
    r = await client.post(
        API, json={**BODY, "station_id": iw.world.station_a, "number": "110-9"}, headers=mine
    )
    assert r.status_code == 201
    assert r.json()["id"] != bodies[0]["id"]
    assert await db.scalar(select(func.count()).select_from(IdempotencyKey)) == 2

    # A bad key is a 422; a refused request (wrong role) claims nothing.
    bad = await client.post(
        API, json=BODY, headers={**iw.headers["station_officer"], "Idempotency-Key": "a b"}
    )
    assert bad.status_code == 422
    refused = await client.post(
        API, json=BODY, headers={**iw.headers["unit_security"], "Idempotency-Key": "k2"}
    )
    assert refused.status_code == 403
    assert await db.scalar(select(func.count()).select_from(IdempotencyKey)) == 2


async def test_same_110_number_twice_is_a_conflict(client: httpx.AsyncClient, db: AsyncSession) -> None:
    iw = await make_inc_world(db)
    body = {**BODY, "number": "J3305022026030100017"}
    first = await client.post(API, json=body, headers=iw.headers["station_officer"])
    assert first.status_code == 201
    assert first.json()["number"] == "J3305022026030100017"
    second = await client.post(API, json=body, headers=iw.headers["station_officer"])
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "duplicate_incident"
    assert await _count(db) == 1
