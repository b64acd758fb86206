"""Receipts written in batches: many acknowledgements per transaction, ``acked`` only after the
commit, repeats and strangers refused or ignored, and a dead session's acks not stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any, cast

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import pubsub
from eqian.core.accounts import AuthSession
from eqian.core.db import utcnow
from eqian.core.permissions import Principal
from eqian.messaging import schemas, service
from eqian.messaging.direct import Shared
from eqian.messaging.models import Instruction, Receipt
from eqian.messaging.ws import AckBatcher, Conn, Op
from eqian.organizations.models import Unit
from tests.factories import credit_code
from tests.messaging.helpers import MsgWorld, make_msg_world

UNITS = 1200


class FakeConn:
    """Records what the batcher would send to a socket."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed_with: int | None = None

    def frame(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def raw(self, out: str | Shared) -> None:
        self.frames.append(json.loads(out if isinstance(out, str) else out.text))

    def close(self, code: int) -> None:
        self.closed_with = code


async def _instruct_station_a(
    mw: MsgWorld, sessionmaker: async_sessionmaker[AsyncSession], title: str
) -> int:
    """An instruction from station A's officer to every unit of station A; its id."""
    async with sessionmaker() as session:
        out = await service.create_instruction(
            session,
            Principal.of(mw.user("station_officer")),
            schemas.InstructionIn(
                channel_id=mw.channels[f"station:{mw.world.station_a}"],
                title=title,
                deadline=utcnow() + dt.timedelta(hours=1),
            ),
        )
    return out.id


async def test_acks_are_batched_idempotent_and_confirmed_after_commit(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mw = await make_msg_world(db)
    w = mw.world
    await db.execute(
        insert(Unit),
        [
            {
                "name": f"织北测试企业{n}",
                "credit_code": credit_code(),
                "category_code": "garment",
                "station_id": w.station_a,
                "employee_count": 10,
            }
            for n in range(UNITS)
        ],
    )
    ch = mw.channels[f"station:{w.station_a}"]
    iid = await _instruct_station_a(mw, sessionmaker, "春季安全检查")
    unit_ids = list(await db.scalars(select(Receipt.unit_id).where(Receipt.instruction_id == iid)))
    assert len(unit_ids) == UNITS + 3
    a2_user = mw.user("unit_security_a2")
    live_auth = await db.scalar(select(AuthSession.id).where(AuthSession.user_id == a2_user.id))
    dead_auth = await db.scalar(
        select(AuthSession.id).where(AuthSession.user_id == mw.user("unit_security").id)
    )
    await db.execute(update(AuthSession).where(AuthSession.id == dead_auth).values(revoked_at=utcnow()))

    boards: list[dict[str, Any]] = []
    sub = pubsub.get_broker().subscribe(
        service.channel_topic(ch), lambda _t, m: boards.append(m) if m.get("type") == "progress" else None
    )
    batcher = AckBatcher(sessionmaker)
    unit_ids.remove(w.units["a1"])  # a1 acknowledges below, from a session that has ended
    fakes = [FakeConn() for _ in unit_ids]
    for uid, fake in zip(unit_ids, fakes, strict=True):
        op = Op("ack", iid, uid, user_id=a2_user.id, auth_id=live_auth, text="收到", conn=cast(Conn, fake))
        batcher.put(op)
        assert fake.frames == []  # nothing is confirmed before the batch commits
    repeat = FakeConn()
    batcher.put(
        Op(
            "ack",
            iid,
            unit_ids[0],
            user_id=a2_user.id,
            auth_id=live_auth,
            text="第二次",
            conn=cast(Conn, repeat),
        )
    )
    stranger = FakeConn()
    batcher.put(
        Op("ack", iid + 1, unit_ids[0], user_id=a2_user.id, auth_id=live_auth, conn=cast(Conn, stranger))
    )
    ended = FakeConn()
    batcher.put(Op("ack", iid, w.units["a1"], user_id=1, auth_id=dead_auth, conn=cast(Conn, ended)))
    deadline = time.monotonic() + 30
    while not all(f.frames for f in fakes) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    await batcher.stop()
    sub.close()

    assert all(f.frames == [{"type": "acked", "instruction_id": iid}] for f in fakes)
    # The officer's board, published after the commits (batches may commit side by side on
    # PostgreSQL), ends on the final count, never on an older one.
    assert boards
    assert boards[-1]["instruction_id"] == iid
    assert boards[-1]["acknowledged"] == UNITS + 2
    assert repeat.frames == [{"type": "acked", "instruction_id": iid}]
    assert stranger.frames[0]["code"] == "not_found"
    assert ended.closed_with == 4001
    acked = await db.scalar(
        select(func.count())
        .select_from(Receipt)
        .where(Receipt.instruction_id == iid, Receipt.acknowledged_at.is_not(None))
    )
    assert acked == UNITS + 2  # everyone but a1, whose acknowledgement came from an ended session
    assert await db.scalar(select(Receipt.ack_text).where(Receipt.unit_id == unit_ids[0])) == "收到"
    # Each stored latency is its acknowledgement's time after the instruction was created (the
    # safety index's input); on PostgreSQL the database computes it.
    created = await db.scalar(select(Instruction.created_at).where(Instruction.id == iid))
    assert created is not None
    stored = (
        await db.execute(
            select(Receipt.acknowledged_at, Receipt.ack_latency_seconds).where(
                Receipt.instruction_id == iid, Receipt.acknowledged_at.is_not(None)
            )
        )
    ).all()
    assert all(
        lat is not None and at is not None and abs(lat - (at - created).total_seconds()) < 0.01
        for at, lat in stored
    )
    # 1,200 acknowledgements in a handful of transactions, not one each.
    assert batcher.batches <= 6, batcher.batches
    assert batcher.stored_acks == UNITS + 3  # the repeat matched no row but was part of a batch


async def test_delivered_marks_wait_for_acknowledgements_and_keep_their_time(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A delivered mark is held (DELIVERED_HOLD) so that an acknowledgement coming soon after stores
    both in one write, with delivered_at the time the frame went out; a mark without an
    acknowledgement is written after the hold (or when the batcher stops)."""
    mw = await make_msg_world(db)
    iid = await _instruct_station_a(mw, sessionmaker, "消防检查")
    units = list(await db.scalars(select(Receipt.unit_id).where(Receipt.instruction_id == iid)))
    acker, silent = units[0], units[1]
    user = mw.user("unit_security_a2")
    auth_id = await db.scalar(select(AuthSession.id).where(AuthSession.user_id == user.id))
    sent_at = utcnow() - dt.timedelta(seconds=3)
    batcher = AckBatcher(sessionmaker)
    batcher.put(Op("delivered", iid, acker, at=sent_at))
    batcher.put(Op("delivered", iid, silent, at=sent_at))
    fake = FakeConn()
    batcher.put(Op("ack", iid, acker, user_id=user.id, auth_id=auth_id, conn=cast(Conn, fake)))
    deadline = time.monotonic() + 10
    while not fake.frames and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)

    def receipt(unit_id: int) -> Any:
        return select(Receipt.delivered_at, Receipt.acknowledged_at).where(
            Receipt.instruction_id == iid, Receipt.unit_id == unit_id
        )

    delivered, acknowledged = (await db.execute(receipt(acker))).one()
    assert acknowledged is not None
    assert abs((delivered - sent_at).total_seconds()) < 0.01  # the send time, not the ack's
    await asyncio.sleep(0.5)  # well past a batch's gathering, well inside the hold
    assert (await db.execute(receipt(silent))).one()[0] is None  # still on hold
    assert batcher.batches == 1
    await batcher.stop()
    delivered, acknowledged = (await db.execute(receipt(silent))).one()
    assert acknowledged is None
    assert abs((delivered - sent_at).total_seconds()) < 0.01
