"""Demo enterprise requests (涉企诉求): two years of them, fewer in the second year, more from
riskier and bigger units; routed like the service routes them (department by kind, else the
unit's liaison officer); most resolved within their SLA and rated 4–5, a few open and overdue.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.db import Base, table_of
from eqian.demo.risk import hidden_risk
from eqian.organizations.models import LiaisonAssignment, Unit
from eqian.requests.models import EnterpriseRequest, RequestDepartment, RequestEvent
from eqian.requests.schemas import SLA_DAYS
from eqian.requests.service import ensure_departments

YEARS = 2
CHUNK = 10_000
Row = dict[str, Any]
MODELS: tuple[type[Base], ...] = (EnterpriseRequest, RequestEvent)
KIND_WEIGHTS = {
    "fraud_training": 30,
    "brand_protection": 18,
    "internal_corruption": 8,
    "traffic": 22,
    "permits": 14,
    "other": 8,
}
TEXTS = {
    "fraud_training": ("申请开展反诈宣传培训", "新进员工较多，希望安排一次电信网络诈骗防范讲座"),
    "brand_protection": ("品牌商标被仿冒", "发现网店销售仿冒我司品牌的童装，请求协助打击"),
    "internal_corruption": ("员工涉嫌职务侵占", "财务核对发现采购人员涉嫌虚开单据侵占货款"),
    "traffic": ("厂区门口交通拥堵", "上下班高峰厂门口电瓶车、货车混行，请求疏导"),
    "permits": ("咨询外来员工居住证办理", "新招员工较多，希望上门集中办理居住登记"),
    "other": ("厂区周边治安", "夜间厂区周边有可疑人员逗留，请求加强巡逻"),
}
REPLIES = {
    "fraud_training": "已安排民警上门开展反诈讲座",
    "brand_protection": "已移交经侦大队立案调查",
    "internal_corruption": "已受理，经侦大队介入调查",
    "traffic": "已协调交警在高峰时段派员疏导",
    "permits": "已安排户政窗口上门集中办理",
    "other": "已纳入夜间巡逻路线",
}


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


async def seed_requests(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Insert two years of requests with their timelines; commits. Returns counts."""
    await ensure_departments(session)
    await session.flush()
    dept_of: dict[str, int] = {}
    for d in await session.scalars(select(RequestDepartment).order_by(RequestDepartment.id)):
        for kind in d.kinds.split(","):
            dept_of.setdefault(kind, d.id)
    liaison = dict(
        (await session.execute(select(LiaisonAssignment.unit_id, LiaisonAssignment.officer_id))).all()
    )
    units = (
        await session.execute(
            select(Unit.id, Unit.station_id, Unit.employee_count)
            .where(Unit.status != "closed")
            .order_by(Unit.id)
        )
    ).all()
    rng = random.Random(f"requests:{seed}")
    local = dt.timezone(dt.timedelta(hours=8))
    now = dt.datetime.combine(today, dt.time(), local).astimezone(dt.UTC)
    start = now - dt.timedelta(days=365 * YEARS)
    year = dt.timedelta(days=365)
    next_id = {
        m: int(await session.scalar(select(func.coalesce(func.max(table_of(m).c.id), 0))) or 0) + 1
        for m in MODELS
    }
    requests: list[Row] = []
    events: list[Row] = []
    kinds, weights = zip(*KIND_WEIGHTS.items(), strict=True)
    counts = {"requests": 0, "resolved": 0, "rated": 0, "overdue": 0}

    def event(request_id: int, action: str, at: dt.datetime, note: str = "") -> None:
        events.append(
            {
                "id": next_id[RequestEvent],
                "request_id": request_id,
                "action": action,
                "actor_id": None,
                "note": note,
                "at": at,
            }
        )
        next_id[RequestEvent] += 1

    for unit_id, station_id, staff in units:
        risk = hidden_risk(seed, unit_id)
        size = min(1.0, (staff or 0) / 300)
        expected = 0.08 + 0.6 * risk + 0.4 * size
        for y in range(YEARS):
            for _ in range(_poisson(rng, expected * (1.0 if y == 0 else 0.78))):
                at = start + y * year + dt.timedelta(seconds=rng.random() * year.total_seconds())
                at = at.astimezone(local).replace(hour=8 + rng.randrange(10)).astimezone(dt.UTC)
                if at >= now:
                    continue
                kind = rng.choices(kinds, weights)[0]
                sla = SLA_DAYS[kind]
                due = at + dt.timedelta(days=sla)
                # Riskier units' requests take longer (they are harder, not neglected).
                days = rng.uniform(0.3, 1.1) * sla * (0.6 + 0.8 * risk)
                if rng.random() < 0.04 + 0.15 * risk:  # hard ones run past their SLA
                    days = sla * rng.uniform(1.3, 4.0)
                resolved_at = at + dt.timedelta(days=days)
                replied_at = at + dt.timedelta(days=min(days, 1) * rng.random())
                rid = next_id[EnterpriseRequest]
                next_id[EnterpriseRequest] += 1
                department = dept_of.get(kind)
                row: Row = {
                    "id": rid,
                    "unit_id": unit_id,
                    "station_id": station_id,
                    "kind": kind,
                    "title": TEXTS[kind][0],
                    "body": TEXTS[kind][1],
                    "status": "submitted",
                    "department_id": department,
                    "assignee_id": None if department else liaison.get(unit_id),
                    "submitted_by": None,
                    "submitted_at": at,
                    "due_at": due,
                    "reply": "",
                    "replied_at": None,
                    "resolution": "",
                    "resolved_at": None,
                    "rating": None,
                    "rating_comment": "",
                    "rated_at": None,
                    "overdue_since": None,
                    "updated_at": at,
                }
                event(rid, "submitted", at)
                if replied_at < now:
                    row.update(
                        status="in_progress",
                        reply=REPLIES[kind],
                        replied_at=replied_at,
                        updated_at=replied_at,
                    )
                    event(rid, "replied", replied_at, REPLIES[kind])
                if resolved_at < now:
                    row.update(
                        status="resolved",
                        resolution=REPLIES[kind],
                        resolved_at=resolved_at,
                        updated_at=resolved_at,
                    )
                    event(rid, "resolved", resolved_at, REPLIES[kind])
                    counts["resolved"] += 1
                    if rng.random() < 0.8:
                        stars = 5 if rng.random() < 0.7 - 0.4 * risk else rng.choice((3, 4, 4, 5, 2))
                        rated_at = resolved_at + dt.timedelta(hours=rng.randrange(1, 72))
                        if rated_at < now:
                            row.update(rating=stars, rated_at=rated_at)
                            event(rid, "rated", rated_at, f"{stars}★")
                            counts["rated"] += 1
                if row["status"] != "resolved" and due < now:
                    row["overdue_since"] = due
                    event(rid, "overdue", due)
                    counts["overdue"] += 1
                requests.append(row)
                counts["requests"] += 1

    for table_model, rows in ((EnterpriseRequest, requests), (RequestEvent, events)):
        for i in range(0, len(rows), CHUNK):
            await session.execute(insert(table_of(table_model)), rows[i : i + CHUNK])
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        seq_models: tuple[type[Base], ...] = (*MODELS, RequestDepartment)
        for model in seq_models:
            name = table_of(model).name
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608 - names from our models
                    f"COALESCE((SELECT MAX(id) FROM {name}), 1), (SELECT MAX(id) FROM {name}) IS NOT NULL)"
                )
            )
    await session.commit()
    return {f"requests_{k}" if k != "requests" else "requests": v for k, v in counts.items()}
