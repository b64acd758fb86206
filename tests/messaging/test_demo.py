"""The demo's messaging at town scale: every registry channel, notices and instructions whose
acknowledgements depend on each unit's hidden risk, consistent seqs and receipts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from eqian.all_models import Base
from eqian.core.db import make_engine, make_sessionmaker
from eqian.demo.generator import seed_demo
from eqian.demo.messaging import seed_messaging
from eqian.demo.risk import hidden_risk
from eqian.messaging.models import Channel, Instruction, Message, Receipt
from eqian.organizations.models import ServicePoint, Station

SEED = 365
TODAY = dt.date(2026, 11, 23)


async def test_town_demo_messaging(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    factory = make_sessionmaker(engine)
    try:
        await seed_demo(factory, seed=SEED, password="Demo-pass-365", today=TODAY, domains=False)
        async with factory() as session:
            report = await seed_messaging(session, seed=SEED, today=TODAY)
        async with factory() as s:
            stations = await s.scalar(select(func.count()).select_from(Station)) or 0
            points = await s.scalar(select(func.count()).select_from(ServicePoint)) or 0
            assert report["channels"] == stations * 12 + points
            assert await s.scalar(select(func.count()).select_from(Receipt)) == report["receipts"]
            assert report["instructions"] == await s.scalar(select(func.count()).select_from(Instruction))
            # Each channel's seqs run 1..last_seq without a gap.
            for channel in await s.scalars(select(Channel).where(Channel.last_seq > 0)):
                seqs = list(await s.scalars(select(Message.seq).where(Message.channel_id == channel.id)))
                assert sorted(seqs) == list(range(1, channel.last_seq + 1))
            rows = list(
                await s.execute(select(Receipt.unit_id, Receipt.acknowledged_at, Receipt.escalated_at))
            )
        rate = report["acknowledged"] / report["receipts"]
        assert 0.7 < rate < 0.98, rate
        risky = [ack is not None for uid, ack, _ in rows if hidden_risk(SEED, uid) > 0.45]
        safe = [ack is not None for uid, ack, _ in rows if hidden_risk(SEED, uid) < 0.1]
        assert sum(risky) / len(risky) < sum(safe) / len(safe) - 0.1
        assert any(esc is not None for _, _, esc in rows)  # past deadlines were escalated
        again = make_sessionmaker(engine)
        async with again() as session:
            assert await session.scalar(select(func.max(Receipt.deadline))) is not None
    finally:
        await engine.dispose()
