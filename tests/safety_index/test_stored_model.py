"""A month is stored as figures and explained with the texts of the model version that scored it:
a past month reads the same after the model has moved on, a model changed without a new version is
refused, and rows written out before migration 0008 read as they were stored."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.errors import Conflict
from eqian.core.facts import Fact
from eqian.core.permissions import SYSTEM
from eqian.safety_index import service
from eqian.safety_index.compute import IndexModel, as_config, load_model, parse_model
from eqian.safety_index.models import SafetyIndexModel, SafetyIndexRun, SafetyIndexScore
from tests.factories import bearer
from tests.safety_index import fake_facts
from tests.safety_index.helpers import world_with_b1_security

NAMES = (fake_facts.NAME,)
API = "/api/v1/safety-index"
OLD_REASON = "本月涉及本单位警务类警情 2 起、非警务类 0 起，其中严重警情 0 起"


@pytest.fixture(autouse=True)
def _facts() -> None:
    fake_facts.FACTS.clear()


def _reworded(model: IndexModel, version: str, reason: str) -> IndexModel:
    components = tuple(
        dataclasses.replace(c, reason=reason) if c.code == "incidents" else c for c in model.components
    )
    return dataclasses.replace(model, version=version, components=components)


async def _incidents_item(client: httpx.AsyncClient, headers: dict[str, str], month: str, unit: int) -> dict:
    r = await client.get(API, params={"month": month, "unit_id": unit}, headers=headers)
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    (deduction,) = [d for d in item["deductions"] if d["code"] == "incidents"]
    return deduction


def test_the_stored_config_reads_back_as_the_same_model() -> None:
    model = load_model()
    assert parse_model(as_config(model)) == model
    assert as_config(model)["version"] == model.version


async def test_a_past_month_keeps_the_words_it_was_scored_with(
    db: AsyncSession, client: httpx.AsyncClient
) -> None:
    w = await world_with_b1_security(db)
    a1, sa = w.units["a1"], w.station_a
    headers = await bearer(db, w.users["bureau_admin"])
    for month in ("2026-02", "2026-03", "2026-04"):
        fake_facts.FACTS[month] = [Fact(sa, a1, "incidents.police", 2)]
    first = _reworded(load_model(), "t-1", load_model().by_code["incidents"].reason)
    second = _reworded(load_model(), "t-2", "新措辞：警务类 {v0} 起")

    await service.compute_month(db, SYSTEM, "2026-02", names=NAMES, model=first)
    await service.compute_month(db, SYSTEM, "2026-03", names=NAMES, model=second)

    feb = await _incidents_item(client, headers, "2026-02", a1)
    mar = await _incidents_item(client, headers, "2026-03", a1)
    assert (feb["reason"], feb["points"], feb["link"]) == (
        OLD_REASON,
        6.0,
        f"/incidents?unit_id={a1}&month=2026-02",
    )
    assert (mar["reason"], mar["points"]) == ("新措辞：警务类 2 起", 6.0)
    r = await client.get(f"/api/v1/units/{a1}/safety-index", headers=headers)
    reasons = [[d["reason"] for d in i["deductions"]] for i in r.json()["items"]]
    assert reasons == [[OLD_REASON], ["新措辞：警务类 2 起"]]

    # The first version's file edited without a new version number: refused, nothing written.
    edited = _reworded(load_model(), "t-1", "改过的措辞 {v0}")
    with pytest.raises(Conflict) as refused:
        await service.compute_month(db, SYSTEM, "2026-04", names=NAMES, model=edited)
    assert refused.value.code == "model_changed"
    await db.rollback()
    assert await db.get(SafetyIndexRun, "2026-04") is None
    assert (
        await db.scalar(
            select(func.count()).select_from(SafetyIndexScore).where(SafetyIndexScore.month == "2026-04")
        )
        == 0
    )
    stored = await db.get(SafetyIndexModel, "t-1")
    assert stored is not None
    assert parse_model(stored.config) == first
    assert (await _incidents_item(client, headers, "2026-02", a1))["reason"] == OLD_REASON


async def test_rows_written_out_before_figures_read_as_stored(
    db: AsyncSession, client: httpx.AsyncClient
) -> None:
    w = await world_with_b1_security(db)
    a1 = w.units["a1"]
    written = {
        "code": "hazards",
        "name": "安全隐患",
        "sign": "deduction",
        "points": 4.0,
        "reason": "当年的原话",
        "metrics": ["hazards.overdue_open"],
        "link": f"/hazards?unit_id={a1}&month=2025-12",
    }
    db.add(SafetyIndexRun(month="2025-12", config_version="2025.9", units=1, seconds=0.1))
    db.add(
        SafetyIndexScore(
            month="2025-12",
            unit_id=a1,
            station_id=w.station_a,
            category_code="garment",
            score=96.0,
            grade="excellent",
            rank_station=1,
            station_units=1,
            rank_category=1,
            category_units=1,
            change=None,
            deductions=[written],
            advice=["当年的建议"],
            config_version="2025.9",
        )
    )
    await db.commit()
    r = await client.get(API, params={"month": "2025-12"}, headers=await bearer(db, w.users["bureau_admin"]))
    (item,) = r.json()["items"]
    assert (item["deductions"], item["advice"]) == ([written], ["当年的建议"])
