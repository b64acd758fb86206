"""The backtest on a constructed district where the answer is known: the index sees the units that
will have incidents next month (their overdue hazards), the naive baseline looks at the wrong ones."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from eqian.core.errors import ValidationFailed
from eqian.core.facts import Fact
from eqian.organizations.models import Unit
from eqian.safety_index.backtest import run_backtest
from tests.factories import credit_code, make_world
from tests.safety_index import fake_facts


async def test_backtest_known_answer(db: AsyncSession) -> None:
    fake_facts.FACTS.clear()
    w = await make_world(db)
    for n in range(15):
        db.add(
            Unit(
                name=f"测试单位{n}",
                credit_code=credit_code(),
                category_code="garment",
                station_id=w.station_a,
            )
        )
    await db.commit()
    ids = sorted(await db.scalars(select(Unit.id)))
    assert len(ids) == 20
    risky, noisy = ids[:5], ids[5:10]
    fake_facts.FACTS["2026-01"] = [
        *(Fact(None, u, "hazards.overdue_open", 2) for u in risky),  # index: 92
        *(Fact(None, u, "incidents.non_police", 1) for u in noisy),  # index: 99
        *(Fact(None, u, "incidents.total", 1) for u in noisy),  # the naive baseline's pick
    ]
    fake_facts.FACTS["2026-02"] = [Fact(None, u, "incidents.total", 1) for u in risky]
    result = await run_backtest(db, "2026-01", "2026-01", names=(fake_facts.NAME,))
    (m,) = result.months
    assert (m.units, m.positives) == (20, 5)
    assert m.auc == 1.0
    assert m.baseline_auc == pytest.approx(1 / 3, abs=1e-4)  # positives all tie with 10 of 15 negatives
    assert m.top_decile == 0.4  # 2 places among 5 equally risky positives: 2 of 5 captured
    assert m.baseline_top_decile == 0.0
    s = result.summary()
    assert (s["auc"], s["baseline_auc"], s["months"]) == (1.0, 0.3333, 1)
    json.dumps(s)  # the CLI's last line
    with pytest.raises(ValidationFailed):
        await run_backtest(db, "2026-13", "2026-01")


def test_cli_refuses_a_bad_month() -> None:
    from eqian.safety_index.cli import app

    result = CliRunner().invoke(app, ["compute", "--month", "2026-1", "--nice", "0"])
    assert result.exit_code == 1
    assert "YYYY-MM" in result.output
