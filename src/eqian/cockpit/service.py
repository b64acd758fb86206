"""Rules of the cockpit: KPIs with 同比 (year over year) and 环比 (month over month), chart series,
the map, the live feed's backlog and the drill-down, all read from the rollups and scoped.

Scope: the bureau sees every station; a station officer sees their own station (a ``station_id``
filter naming another station answers 404). Every other role is refused: the cockpit's figures
are per station and category, and a unit's own figures live on its safety-index page.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.cockpit import rollups
from eqian.cockpit.models import CockpitMonth, Rollup
from eqian.core import audit
from eqian.core import facts as core_facts
from eqian.core.accounts import Role
from eqian.core.errors import Forbidden, NotFound, field_error
from eqian.core.months import LOCAL_TZ
from eqian.core.months import bounds as month_bounds
from eqian.core.months import check as check_month
from eqian.core.months import shift as shift_month
from eqian.core.outbox import OutboxEvent
from eqian.core.permissions import Principal, ScopeKind
from eqian.organizations.models import Station, Unit, UnitCategory

COCKPIT_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER})
Kind = Literal["count", "yuan", "rate"]
FEED_TOPICS = ("incidents.reported", "messaging.instruction_sent")


@dataclass(frozen=True)
class KpiDef:
    code: str
    label: str
    kind: Kind
    numerator: tuple[str, ...]
    denominator: tuple[str, ...] = ()
    unit_only: bool = False  # count only facts linked to a unit (企业相关)
    link: str = ""  # the domain list behind the figure (filters added by ``link_for``)
    better: Literal["up", "down", ""] = ""  # which way is good news (colours the change)


KPIS: tuple[KpiDef, ...] = (
    KpiDef("incidents_total", "警情总数", "count", ("incidents.total",), link="/incidents", better="down"),
    KpiDef(
        "incidents_enterprise",
        "涉企警情",
        "count",
        ("incidents.total",),
        unit_only=True,
        link="/incidents",
        better="down",
    ),
    KpiDef(
        "non_police_share",
        "非警务警情占比",
        "rate",
        ("incidents.non_police",),
        ("incidents.total",),
        link="/incidents",
    ),
    KpiDef("mediation_cases", "矛盾纠纷调解数", "count", ("mediation.cases",), link="/mediation"),
    KpiDef(
        "mediation_success_rate",
        "调解成功率",
        "rate",
        ("mediation.success",),
        ("mediation.success", "mediation.failed", "mediation.referred"),
        link="/mediation",
        better="up",
    ),
    KpiDef(
        "amount_recovered",
        "调解挽回金额（元）",
        "yuan",
        ("mediation.amount_recovered_yuan",),
        link="/mediation",
        better="up",
    ),
    KpiDef("hazards_found", "发现隐患", "count", ("hazards.found",), link="/hazards"),
    KpiDef("hazards_rectified", "整改隐患", "count", ("hazards.rectified",), link="/hazards", better="up"),
    KpiDef("requests_submitted", "收集诉求", "count", ("requests.submitted",), link="/requests"),
    KpiDef("requests_resolved", "解决诉求", "count", ("requests.resolved",), link="/requests", better="up"),
    KpiDef(
        "fraud_loss",
        "诈骗损失（元）",
        "yuan",
        ("incidents.fraud_loss_yuan",),
        link="/incidents",
        better="down",
    ),
    KpiDef(
        "fraud_recovery_rate",
        "追赃挽损率",
        "rate",
        ("incidents.fraud_recovered_yuan",),
        ("incidents.fraud_loss_yuan",),
        link="/incidents",
        better="up",
    ),
    KpiDef(
        "ack_rate",
        "指令签收率",
        "rate",
        ("messaging.acknowledged",),
        ("messaging.instructions",),
        link="/messaging",
        better="up",
    ),
)
KPI_BY_CODE = {k.code: k for k in KPIS}
GRADE_LABELS = {"excellent": "优", "good": "良", "fair": "中", "poor": "差"}
GRADE_COLOURS = {"excellent": "#2e7d32", "good": "#1565c0", "fair": "#f9a825", "poor": "#c62828"}


@dataclass(frozen=True)
class Filters:
    month: str
    station_id: int | None = None
    category: str | None = None


def kpi_def(code: str) -> KpiDef:
    kpi = KPI_BY_CODE.get(code)
    if kpi is None:
        raise field_error("kpi", "未知的指标", "invalid")
    return kpi


# --- scope ---------------------------------------------------------------------------------------


def station_ids(actor: Principal) -> frozenset[int] | None:
    """The stations the actor may see in the cockpit; ``None`` means all of them."""
    if actor.role not in COCKPIT_ROLES:
        raise Forbidden("当前角色无权查看数字驾驶舱")
    if actor.scope.kind is ScopeKind.ALL:
        return None
    if actor.scope.kind is ScopeKind.STATIONS and actor.scope.station_ids:
        return frozenset(actor.scope.station_ids)
    raise Forbidden("当前角色无权查看数字驾驶舱")


def _rollup_where(actor: Principal, f: Filters, *, totals: bool = True) -> list[ColumnElement[bool]]:
    """Rollup rows in scope; ``totals``: an unfiltered bureau view reads the all-stations rows."""
    allowed = station_ids(actor)
    where: list[ColumnElement[bool]] = []
    if f.station_id is not None:
        if allowed is not None and f.station_id not in allowed:
            raise NotFound("派出所不存在")
        where.append(Rollup.station_id == f.station_id)
    elif allowed is not None:
        where.append(Rollup.station_id.in_(allowed))
    elif totals:
        where.append(Rollup.station_id == rollups.ALL_STATIONS)
    else:
        where.append(Rollup.station_id != rollups.ALL_STATIONS)
    if f.category:
        where.append(Rollup.category == f.category)
    return where


def _unit_where(actor: Principal, f: Filters) -> ColumnElement[bool]:
    allowed = station_ids(actor)
    parts: list[ColumnElement[bool]] = [true()]
    if f.station_id is not None:
        if allowed is not None and f.station_id not in allowed:
            raise NotFound("派出所不存在")
        parts.append(Unit.station_id == f.station_id)
    elif allowed is not None:
        parts.append(Unit.station_id.in_(allowed))
    if f.category:
        parts.append(Unit.category_code == f.category)
    return and_(*parts)


# --- sums ----------------------------------------------------------------------------------------

Sums = dict[tuple[str, str, bool], float]  # (month, metric, linked to a unit) -> value


async def _sums(
    session: AsyncSession, actor: Principal, f: Filters, months: Sequence[str], metrics: Sequence[str]
) -> Sums:
    where = _rollup_where(actor, f)
    linked = Rollup.category != rollups.NO_UNIT
    rows = await session.execute(
        select(Rollup.month, Rollup.metric, linked.label("linked"), func.sum(Rollup.value))
        .where(Rollup.month.in_(list(months)), Rollup.metric.in_(list(metrics)), *where)
        .group_by(Rollup.month, Rollup.metric, linked)
    )
    return {(m, metric, bool(is_linked)): float(v or 0) for m, metric, is_linked, v in rows}


def _metric(sums: Sums, month: str, metric: str, unit_only: bool) -> float:
    total = sums.get((month, metric, True), 0.0)
    if not unit_only:
        total += sums.get((month, metric, False), 0.0)
    return total


def _value(kpi: KpiDef, sums: Sums, month: str) -> tuple[float | None, float, float]:
    """(value, numerator, denominator); a rate with a zero denominator has no value."""
    num = sum(_metric(sums, month, m, kpi.unit_only) for m in kpi.numerator)
    if kpi.kind != "rate":
        return num, num, 0.0
    den = sum(_metric(sums, month, m, kpi.unit_only) for m in kpi.denominator)
    return (num / den if den else None), num, den


def _change(value: float | None, before: float | None, kind: Kind) -> dict[str, float | None]:
    """Absolute change (percentage points for rates) and relative change in percent."""
    if value is None or before is None:
        return {"change": None, "change_pct": None}
    delta = value - before
    if kind == "rate":
        return {"change": round(delta * 100, 2), "change_pct": None}
    return {"change": round(delta, 2), "change_pct": round(delta / before * 100, 1) if before else None}


def all_metrics() -> list[str]:
    names = {m for k in KPIS for m in (*k.numerator, *k.denominator)}
    names.update(rollups.GRADE_METRIC.format(g) for g in rollups.GRADES)
    return sorted(names)


def link_for(kpi: KpiDef, f: Filters) -> str:
    params = [f"month={f.month}"]
    if f.station_id is not None:
        params.append(f"station_id={f.station_id}")
    if f.category:
        params.append(f"category={f.category}")
    return f"{kpi.link}?{'&'.join(params)}"


async def freshness(session: AsyncSession, months: Sequence[str]) -> dict[str, Any]:
    rows = list(
        await session.execute(
            select(CockpitMonth.month, CockpitMonth.dirty, CockpitMonth.computed_at).where(
                CockpitMonth.month.in_(list(months))
            )
        )
    )
    computed = [r.computed_at for r in rows if r.computed_at is not None]
    return {
        "computed_at": min(computed).isoformat() if computed else None,
        "pending": sorted({r.month for r in rows if r.dirty} | (set(months) - {r.month for r in rows})),
    }


async def summary(session: AsyncSession, actor: Principal, f: Filters) -> dict[str, Any]:
    month, mom, yoy = f.month, shift_month(f.month, -1), shift_month(f.month, -12)
    sums = await _sums(session, actor, f, [month, mom, yoy], all_metrics())
    kpis = []
    for kpi in KPIS:
        value, num, den = _value(kpi, sums, month)
        before_year, _, _ = _value(kpi, sums, yoy)
        before_month, _, _ = _value(kpi, sums, mom)
        yoy_change = _change(value, before_year, kpi.kind)
        mom_change = _change(value, before_month, kpi.kind)
        kpis.append(
            {
                "code": kpi.code,
                "label": kpi.label,
                "kind": kpi.kind,
                "better": kpi.better,
                "value": value,
                "numerator": num,
                "denominator": den if kpi.kind == "rate" else None,
                "year_before": before_year,
                "month_before": before_month,
                "yoy_change": yoy_change["change"],
                "yoy_change_pct": yoy_change["change_pct"],
                "mom_change": mom_change["change"],
                "mom_change_pct": mom_change["change_pct"],
                "drill": f"/cockpit/drill?kpi={kpi.code}&{link_for(kpi, f).split('?', 1)[1]}",
                "link": link_for(kpi, f),
            }
        )
    distribution = {
        grade: {
            "label": GRADE_LABELS[grade],
            "colour": GRADE_COLOURS[grade],
            "value": _metric(sums, month, rollups.GRADE_METRIC.format(grade), True),
            "year_before": _metric(sums, yoy, rollups.GRADE_METRIC.format(grade), True),
            "month_before": _metric(sums, mom, rollups.GRADE_METRIC.format(grade), True),
        }
        for grade in rollups.GRADES
    }
    return {
        "month": month,
        "month_before": mom,
        "year_before": yoy,
        "station_id": f.station_id,
        "category": f.category,
        "kpis": kpis,
        "index_distribution": distribution,
        "freshness": await freshness(session, [month, mom, yoy]),
    }


async def trend(
    session: AsyncSession, actor: Principal, f: Filters, kpi_code: str, months: int
) -> list[dict[str, Any]]:
    """The KPI for each of ``months`` months up to ``f.month``, with the same month a year before."""
    kpi = kpi_def(kpi_code)
    span = [shift_month(f.month, -i) for i in range(months - 1, -1, -1)]
    wanted = span + [shift_month(m, -12) for m in span]
    sums = await _sums(session, actor, f, wanted, [*kpi.numerator, *kpi.denominator])
    out = []
    for m in span:
        value = _value(kpi, sums, m)[0]
        out.append({"month": m, "value": value, "year_before": _value(kpi, sums, shift_month(m, -12))[0]})
    return out


async def breakdown(
    session: AsyncSession, actor: Principal, f: Filters, kpi_code: str, by: Literal["station", "category"]
) -> list[dict[str, Any]]:
    """The KPI per station or per unit category for one month (bars)."""
    kpi = kpi_def(kpi_code)
    where = _rollup_where(actor, f, totals=by != "station")
    key = Rollup.station_id if by == "station" else Rollup.category
    linked = Rollup.category != rollups.NO_UNIT
    rows = await session.execute(
        select(key, Rollup.metric, linked, func.sum(Rollup.value))
        .where(Rollup.month == f.month, Rollup.metric.in_([*kpi.numerator, *kpi.denominator]), *where)
        .group_by(key, Rollup.metric, linked)
    )
    per: dict[Any, Sums] = defaultdict(dict)
    for k, metric, is_linked, v in rows:
        if by == "category" and k == rollups.NO_UNIT:
            continue  # facts without a unit have no category
        per[k][(f.month, metric, bool(is_linked))] = float(v or 0)
    names: dict[Any, str]
    if by == "station":
        names = {r[0]: r[1] for r in await session.execute(select(Station.id, Station.name))}
    else:
        names = {r[0]: r[1] for r in await session.execute(select(UnitCategory.code, UnitCategory.name_zh))}
    out = []
    for k, sums in per.items():
        value, num, den = _value(kpi, sums, f.month)
        out.append(
            {"key": k, "label": names.get(k, "—"), "value": value, "numerator": num, "denominator": den}
        )
    out.sort(key=lambda r: (-(r["value"] or 0), str(r["key"])))
    return out


async def unit_points(session: AsyncSession, actor: Principal, f: Filters) -> list[dict[str, Any]]:
    """Units with a location, coloured by their safety-index grade of the month (map)."""
    where = _unit_where(actor, f)
    if not await rollups.has_table(session, "safety_index_scores"):
        rows = await session.execute(
            select(Unit.id, Unit.name, Unit.lat, Unit.lng, Unit.category_code, Unit.station_id).where(
                where, Unit.lat.is_not(None), Unit.lng.is_not(None)
            )
        )
        return [
            {
                "unit_id": r[0],
                "name": r[1],
                "lat": r[2],
                "lng": r[3],
                "category": r[4],
                "station_id": r[5],
                "score": None,
                "grade": None,
            }
            for r in rows
        ]
    s = rollups.index_scores
    scored: Any = await session.execute(
        select(
            Unit.id, Unit.name, Unit.lat, Unit.lng, Unit.category_code, Unit.station_id, s.c.score, s.c.grade
        )
        .outerjoin(s, and_(s.c.unit_id == Unit.id, s.c.month == f.month))
        .where(where, Unit.lat.is_not(None), Unit.lng.is_not(None))
    )
    return [
        {
            "unit_id": r[0],
            "name": r[1],
            "lat": r[2],
            "lng": r[3],
            "category": r[4],
            "station_id": r[5],
            "score": r[6],
            "grade": r[7],
        }
        for r in scored
    ]


async def feed_backlog(session: AsyncSession, actor: Principal, limit: int = 20) -> list[dict[str, Any]]:
    """The latest live-feed items (new incidents, instructions) from the outbox, in scope."""
    allowed = station_ids(actor)
    rows = await session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.topic.in_(FEED_TOPICS))
        .order_by(OutboxEvent.id.desc())
        .limit(500)
    )
    items: list[dict[str, Any]] = []
    for event in rows:
        item = feed_item(event.topic, event.payload)
        if item is None or (allowed is not None and item["station_id"] not in allowed):
            continue
        items.append(item)
        if len(items) >= limit:
            break
    return items


def feed_item(topic: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The live-feed item (contract ``feed``) for an outbox event, or ``None``."""
    try:
        station_id = int(payload["station_id"]) if payload.get("station_id") is not None else None
    except (TypeError, ValueError):
        return None
    at = str(payload.get("at") or "")
    if topic == "incidents.reported" and payload.get("incident_id") is not None:
        police = "警情" if payload.get("police") else "非警务"
        return {
            "kind": "incident",
            "station_id": station_id,
            "at": at,
            "title": f"[{police}] {str(payload.get('summary') or '')[:60]}",
            "link": f"/incidents/{int(payload['incident_id'])}",
        }
    if topic == "messaging.instruction_sent" and payload.get("instruction_id") is not None:
        return {
            "kind": "instruction",
            "station_id": station_id,
            "at": at,
            "title": f"[指令] {str(payload.get('title') or '')[:60]}",
            "link": f"/messaging/instructions/{int(payload['instruction_id'])}",
        }
    return None


async def drill(session: AsyncSession, actor: Principal, f: Filters, kpi_code: str) -> dict[str, Any]:
    """The rows behind a figure: the month's facts of the KPI's metrics per unit, computed from the
    raw rows (read-only, one month), plus facts not linked to a unit and the domain list's link."""
    kpi = kpi_def(kpi_code)
    allowed = station_ids(actor)
    if f.station_id is not None and allowed is not None and f.station_id not in allowed:
        raise NotFound("派出所不存在")
    start, end = month_bounds(f.month)
    wanted = {*kpi.numerator, *kpi.denominator}
    found = [x for x in await core_facts.collect(session, start, end, rollups.SOURCES) if x.metric in wanted]
    unit_ids = {x.unit_id for x in found if x.unit_id is not None}
    units = (
        {
            r[0]: r
            for r in await session.execute(
                select(
                    Unit.id,
                    Unit.name,
                    Unit.station_id,
                    Unit.category_code,
                    Station.name,
                    UnitCategory.name_zh,
                )
                .join(Station, Station.id == Unit.station_id)
                .join(UnitCategory, UnitCategory.code == Unit.category_code)
                .where(Unit.id.in_(unit_ids))
            )
        }
        if unit_ids
        else {}
    )
    per: dict[int | None, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for x in found:
        unit = units.get(x.unit_id) if x.unit_id is not None else None
        station = x.station_id if x.station_id is not None else (unit[2] if unit else None)
        if allowed is not None and station not in allowed:
            continue
        if f.station_id is not None and station != f.station_id:
            continue
        if (f.category or kpi.unit_only) and unit is None:
            continue
        if f.category and unit is not None and unit[3] != f.category:
            continue
        bucket = per[x.unit_id if unit is not None else None]
        if x.metric in kpi.numerator:
            bucket["numerator"] += float(x.value)
        if x.metric in kpi.denominator:
            bucket["denominator"] += float(x.value)
    items: list[dict[str, Any]] = []
    for uid, b in per.items():
        unit = units.get(uid) if uid is not None else None
        items.append(
            {
                "unit_id": uid,
                "unit_name": unit[1] if unit else "（未关联单位）",
                "station": unit[4] if unit else None,
                "category": unit[3] if unit else None,
                "category_label": unit[5] if unit else None,
                "numerator": b["numerator"],
                "denominator": b["denominator"] if kpi.kind == "rate" else None,
            }
        )
    items.sort(key=lambda r: (-float(r["numerator"]), int(r["unit_id"] or 0)))
    return {
        "kpi": kpi.code,
        "label": kpi.label,
        "kind": kpi.kind,
        "month": f.month,
        "link": link_for(kpi, f),
        "numerator": sum(i["numerator"] for i in items),
        "denominator": sum(i["denominator"] or 0 for i in items) if kpi.kind == "rate" else None,
        "items": items,
        "total": len(items),
    }


REFRESH_LIMIT = 36


async def refresh(session: AsyncSession, actor: Principal, months: Sequence[str]) -> dict[str, int]:
    """Recompute the rollups of these months now (bureau admin; the jobs do it within their
    staleness bound anyway). One transaction, audited. Returns rows written per month."""
    if actor.role is not Role.BUREAU_ADMIN:
        raise Forbidden("仅分局可以立即刷新驾驶舱统计")
    wanted = sorted({check_month(m, "months") for m in months})
    if not wanted or len(wanted) > REFRESH_LIMIT:
        raise field_error("months", f"请给出 1 至 {REFRESH_LIMIT} 个月份", "invalid")
    done = {m: await rollups.refresh_month(session, m, commit=False, read_apart=True) for m in wanted}
    await audit.record_action(
        session, actor, "cockpit.rollups.refresh", "cockpit_rollups", None, {"months": wanted}
    )
    await session.commit()
    return done


def default_month(today: dt.date | None = None) -> str:
    """The last complete month: the cockpit opens on it."""
    day = today or dt.datetime.now(LOCAL_TZ).date()
    return shift_month(f"{day.year:04d}-{day.month:02d}", -1)
