"""The demo's mediation cases and enterprise requests at town scale: volumes fall year over
year, about 98 % of concluded cases succeed, rates follow the hidden risk, the demo mediator has
cases on their list, and the same seed gives the same data."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.all_models import Base
from eqian.core.accounts import Role, User
from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.permissions import Principal
from eqian.demo.generator import seed_demo
from eqian.demo.mediation import seed_mediation
from eqian.demo.requests import seed_requests
from eqian.demo.risk import hidden_risk
from eqian.mediation import service as mediation
from eqian.mediation.models import MediationCase, MediationParty
from eqian.requests.models import EnterpriseRequest

SEED = 365
TODAY = dt.date(2026, 11, 23)


async def _seed(path: str) -> tuple[dict[str, int], list[tuple[int, int, str, str | None]], list[int]]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    factory = make_sessionmaker(engine)
    await seed_demo(factory, seed=SEED, password="Demo-pass-365", today=TODAY, domains=False, units=900)
    async with factory() as s:
        report = await seed_mediation(s, seed=SEED, today=TODAY)
        report |= await seed_requests(s, seed=SEED, today=TODAY)
        cases = [
            (r.id, r.unit_id or 0, r.dispute_type, r.outcome)
            for r in (await s.scalars(select(MediationCase).order_by(MediationCase.id))).all()
        ]
        reqs = list(await s.scalars(select(EnterpriseRequest.id).order_by(EnterpriseRequest.id)))
        await _check(s, report)
    await engine.dispose()
    return report, cases, reqs


async def _check(s: AsyncSession, report: dict[str, int]) -> None:
    start = dt.datetime(2024, 11, 23, 10, tzinfo=dt.UTC)
    year = dt.timedelta(days=365)
    y1 = await s.scalar(
        select(func.count()).where(MediationCase.opened_at >= start, MediationCase.opened_at < start + year)
    )
    y2 = await s.scalar(select(func.count()).where(MediationCase.opened_at >= start + year))
    assert y1
    assert y2
    assert 0.6 < y2 / y1 < 0.9, (y1, y2)  # falling year over year
    assert 400 < report["mediation_cases"] < 2000, report
    concluded = report["mediation_success"] + report["mediation_failed"] + report["mediation_referred"]
    assert 0.96 < report["mediation_success"] / concluded < 0.995, report
    # Riskier units have more disputes.
    per_unit = Counter(
        u for u in await s.scalars(select(MediationCase.unit_id).where(MediationCase.unit_id.is_not(None)))
    )
    risky = [u for u in per_unit if hidden_risk(SEED, u) > 0.4]
    calm = [u for u in per_unit if hidden_risk(SEED, u) < 0.1]
    assert sum(per_unit[u] for u in risky) / len(risky) > sum(per_unit[u] for u in calm) / len(calm)
    # Parties carry valid-looking personal data (masked on the way out).
    assert await s.scalar(select(func.count()).select_from(MediationParty)) == 2 * report["mediation_cases"]
    # The demo mediator has work on their list, and statistics answer.
    mediator = await s.scalar(select(User).where(User.role == Role.MEDIATOR.value))
    assert mediator is not None
    actor = Principal.of(mediator)
    items, total = await mediation.list_cases(s, actor, status="active")
    assert total > 0
    assert {i.team_id for i in items} == {mediator.team_id}
    _, summary = await mediation.stats(s, actor, "team")
    assert summary.success_rate is not None
    assert summary.success_rate > 95
    # Requests: some of each state, ratings 1-5 only on resolved ones.
    assert report["requests"] > 150
    assert 0 < report["requests_overdue"] < report["requests"] * 0.1
    bad = await s.scalar(
        select(func.count()).where(
            EnterpriseRequest.rating.is_not(None), EnterpriseRequest.status != "resolved"
        )
    )
    assert bad == 0


async def test_demo_seed_is_plausible_and_deterministic(tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    a = await _seed(str(tmp_path_factory.mktemp("a") / "a.db"))
    b = await _seed(str(tmp_path_factory.mktemp("b") / "b.db"))
    assert a == b
