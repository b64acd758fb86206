"""Demo incidents: two years of 110 calls, about units and on the street, with Chinese descriptions.

Descriptions are composed from templates per category (so the classifier mostly agrees with the
category the call was generated as); each template is classified once and its verdict reused.
Units with a higher hidden risk call more; volumes fall year over year (enterprise-related calls
by about a quarter, street calls a little), as in the Zhili reports. Old incidents are closed;
recent ones are spread over the lifecycle, a few past their SLA. Core bulk inserts, explicit ids.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.db import table_of
from eqian.demo.risk import hidden_risk
from eqian.incidents import classifier, routing
from eqian.incidents.models import Incident, IncidentEvent
from eqian.incidents.service import severity_for
from eqian.organizations.models import Station, Unit

YEARS = 2
CHUNK = 5000
LOCAL = dt.timezone(dt.timedelta(hours=8))
Row = dict[str, Any]

# category -> templates; {unit} a unit's name (calls about a unit), {road}, {n}, {amount}, {item}
UNIT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "labor": (
        "{unit}的{n}名工人反映老板拖欠工资两个多月，要求结清工资",
        "{unit}员工称被辞退后公司不给结算工资，双方发生争执",
        "{unit}车工报警称工资被克扣，老板拒绝支付加班费",
    ),
    "processing_fee": (
        "{unit}老板称外发加工的童装已交货，对方拖欠加工费{amount}元不给",
        "加工户报警称{unit}拖欠加工费，上门讨要发生口角",
    ),
    "economic": (
        "{unit}与供货商因货款结算发生经济纠纷，对方欠款{amount}元",
        "{unit}老板称合伙人卷走货款，要求处理经济纠纷",
    ),
    "contract": (
        "{unit}与客户因订单合同违约发生纠纷，对方拒不退还定金",
        "{unit}反映房东单方面解除厂房租赁合同，双方争执",
    ),
    "theft": (
        "{unit}仓库被盗，丢失童装{n}箱，门锁有撬痕",
        "{unit}员工宿舍内手机被盗，价值约{amount}元",
        "{unit}门口停放的电动车被盗",
    ),
    "fraud": (
        "{unit}财务接到冒充老板的电话，被骗转账{amount}元",
        "{unit}员工网上刷单被骗{amount}元，对方已失联",
    ),
    "fire": (
        "{unit}车间电线起火冒烟，员工已用灭火器扑救",
        "{unit}三合一场所内电瓶车充电起火",
    ),
    "help": (
        "{unit}内一名{n}岁儿童走失，家长在服务台求助",
        "{unit}有老人迷路走失，家属请求帮助寻找",
    ),
    "public_order": (
        "{unit}门口有人酒后打架斗殴，一人受轻伤",
        "{unit}内有人寻衅滋事，砸坏店内物品",
    ),
    "traffic": ("{unit}门口货车倒车与电动车发生碰撞，有人受伤",),
    "neighbor": ("{unit}反映隔壁邻居装修噪音扰民，双方发生争吵",),
    "environment": ("{unit}附近河道有人非法排放污水，河水发黑发臭",),
}
STREET_TEMPLATES: dict[str, tuple[str, ...]] = {
    "family": (
        "{road}一住户夫妻吵架，妻子称被丈夫推搡，请求处理家庭纠纷",
        "{road}母子因赡养问题发生家庭矛盾，互相指责",
    ),
    "neighbor": (
        "{road}小区邻居因楼道堆放杂物发生口角",
        "{road}两户邻居因漏水问题发生纠纷，争吵不休",
    ),
    "traffic": (
        "{road}与织里南路路口两辆电动车相撞，一人受伤倒地",
        "{road}一辆小轿车追尾货车，造成交通事故",
    ),
    "theft": ("{road}一辆电动车被盗，车主报警", "{road}出租房内现金{amount}元被盗"),
    "fraud": (
        "{road}一居民接到冒充公检法电话，被骗转账{amount}元",
        "{road}一女子网络投资理财被骗{amount}元",
    ),
    "help": ("{road}一名{n}岁小孩走失，家长求助", "{road}有醉酒男子倒在路边，请求救助"),
    "public_order": ("{road}夜市有人酒后闹事打架", "{road}烧烤店门口多人聚众斗殴"),
    "fire": ("{road}一出租房电瓶车充电起火", "{road}路边垃圾堆着火冒烟"),
    "environment": ("{road}附近河道有人电鱼，破坏生态", "{road}有人倾倒铝灰等固体废物"),
    "other": ("{road}有人反映路灯损坏，夜间出行不便", "{road}噪音扰民，深夜有人大声喧哗"),
}
ROADS = (
    "大港路",
    "珍贝路",
    "织里南路",
    "康泰路",
    "吴兴大道",
    "富民路",
    "中华东路",
    "利济路",
    "栋梁路",
    "香圩路",
)
# per unit per year at risk 0 and the extra at risk 1; street calls per station per year
UNIT_BASE, UNIT_RISK = 0.8, 7.0
STREET_PER_STATION = 1500
FULL_TIMELINE = dt.timedelta(days=90)
UNIT_DECLINE, STREET_DECLINE = 0.25, 0.0  # fall per year: enterprise-related -25 %, street calls flat


def _weights(templates: dict[str, tuple[str, ...]], risk: float) -> tuple[list[str], list[float]]:
    # Riskier units have more wage and fee disputes, the heart of the Zhili model.
    base = {
        "labor": 3 + 6 * risk,
        "processing_fee": 2 + 4 * risk,
        "economic": 1.5,
        "contract": 1,
        "theft": 2,
        "fraud": 1.2,
        "fire": 0.4 + 1.5 * risk,
        "help": 0.8,
        "public_order": 1,
        "traffic": 0.8,
        "neighbor": 0.5,
        "environment": 0.3,
        "family": 3,
        "other": 1,
    }
    cats = list(templates)
    return cats, [base.get(c, 1.0) for c in cats]


def _fill(template: str, rng: random.Random, unit: str, road: str) -> str:
    return template.format(
        unit=unit,
        road=road,
        n=rng.randint(2, 12),
        amount=rng.choice((800, 2600, 5000, 12000, 38000, 96000, 150000)),
        item="童装",
    )


async def seed_incidents(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Insert two years of incidents for the units and stations already there; commits."""
    rng = random.Random(f"incidents:{seed}")
    await routing.ensure_rules(session)
    await session.flush()
    policy = await routing.get_policy(session)
    verdicts: dict[str, classifier.Classification] = {}
    for templates in (UNIT_TEMPLATES, STREET_TEMPLATES):
        for tpls in templates.values():
            for tpl in tpls:
                verdicts[tpl] = classifier.classify(_fill(tpl, random.Random(0), "某单位", "某路"))
    units = (
        await session.execute(
            select(Unit.id, Unit.name, Unit.station_id, Unit.category_code, Unit.address).where(
                Unit.status == "active"
            )
        )
    ).all()
    stations = [sid for (sid,) in (await session.execute(select(Station.id).order_by(Station.id))).all()]
    officers: dict[int, list[int]] = {}
    for uid, station_id in (
        await session.execute(
            select(User.id, User.station_id).where(User.role == Role.STATION_OFFICER.value).order_by(User.id)
        )
    ).all():
        if station_id is not None:
            officers.setdefault(station_id, []).append(uid)

    now = dt.datetime.combine(today, dt.time(), LOCAL).astimezone(dt.UTC)
    start = now - dt.timedelta(days=365 * YEARS)
    span_minutes = 365 * YEARS * 24 * 60
    next_id = int(await session.scalar(select(func.coalesce(func.max(Incident.id), 0))) or 0) + 1
    next_event = int(await session.scalar(select(func.coalesce(func.max(IncidentEvent.id), 0))) or 0) + 1
    incidents: list[Row] = []
    events: list[Row] = []
    counts: Counter[str] = Counter()

    def when(decline: float) -> dt.datetime:
        # Thinning: a call t years into the span survives with weight (1 - decline) ** t, so each
        # year has ``decline`` fewer calls than the one before.
        while True:
            minute = rng.randrange(span_minutes)
            years_in = minute / (365 * 24 * 60)
            if rng.random() < (1 - decline) ** years_in:
                return start + dt.timedelta(minutes=minute)

    def add(at: dt.datetime, tpl: str, station_id: int, unit: tuple[Any, ...] | None, road: str) -> None:
        nonlocal next_id, next_event
        found = verdicts[tpl]
        description = _fill(tpl, rng, unit[1] if unit else "", road)
        unit_category = unit[3] if unit else None
        decision = policy.decide(found.category, found.police, unit_category)
        route = decision.route
        if route == "self_governance" and unit is None:
            route = "dispatch" if found.police else "mediation"
        sla = decision.sla_hours if route == decision.route else routing.DEFAULT_SLA[route]
        due = at + dt.timedelta(hours=sla)
        loss = recovered = None
        if found.category == "fraud":
            loss = Decimal(rng.choice((800, 2600, 5000, 12000, 38000, 96000, 150000)))
        age = now - at
        # lifecycle: the old are closed; recent ones spread; a few handled late
        late = rng.random() < (0.04 + 0.25 * (hidden_risk(seed, unit[0]) if unit else 0.1))
        handle_hours = sla * (1.3 + rng.random() * 2 if late else 0.2 + rng.random() * 0.7)
        resolved_at: dt.datetime | None = at + dt.timedelta(hours=handle_hours)
        if resolved_at is not None and resolved_at > now:
            status = (
                rng.choice(("reported", "assigned", "in_progress"))
                if age < dt.timedelta(days=2)
                else "in_progress"
            )
            resolved_at = None
        elif age < dt.timedelta(days=7):
            status = "resolved"
        else:
            status = "closed"
        if loss is not None and resolved_at is not None:
            recovered = (loss * Decimal(rng.choice((0, 0, 0.2, 0.5, 1)))).quantize(Decimal("1"))
        triaged = status != "reported"
        assignee = None
        if triaged and route == "dispatch" and officers.get(station_id):
            assignee = rng.choice(officers[station_id])
        incident_id = next_id
        next_id += 1
        t_triage = at + dt.timedelta(minutes=rng.randint(3, 40))
        row: Row = {
            "id": incident_id,
            "source_key": f"n:DEMO{seed}-{incident_id:08d}",
            "source": "demo",
            "reported_at": at,
            "station_id": station_id,
            "unit_id": unit[0] if unit else None,
            "address": unit[4] if unit else f"织里镇{road}",
            "lat": None,
            "lng": None,
            "description": description,
            "caller_phone": f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
            "category": found.category,
            "police": found.police,
            "confidence": found.confidence,
            "evidence": list(found.evidence),
            "classifier_version": found.version[:32],
            "category_source": "classifier",
            "severity": severity_for(found.category, found.police, loss),
            "link_method": "name" if unit else "none",
            "link_reason": f"文本中出现单位名称「{unit[1]}」" if unit else "未能关联到单位",
            "route": route,
            "sla_hours": sla,
            "due_at": due,
            "overdue_since": due if (resolved_at or now) > due and status != "reported" else None,
            "status": status,
            "assignee_id": assignee,
            "mediation_case_id": None,
            "fraud_loss_yuan": loss,
            "fraud_recovered_yuan": recovered,
            "triaged_at": t_triage if triaged else None,
            "assigned_at": t_triage if triaged else None,
            "started_at": t_triage + dt.timedelta(minutes=20)
            if status not in ("reported", "assigned")
            else None,
            "resolved_at": resolved_at,
            "closed_at": resolved_at + dt.timedelta(days=1) if status == "closed" and resolved_at else None,
            "reopen_count": 0,
            "created_by": None,
            "created_at": at,
            "updated_at": resolved_at or at,
        }
        incidents.append(row)
        steps: list[tuple[str, str | None, str, dt.datetime]] = [("reported", None, "reported", at)]
        if triaged:
            steps += [
                ("triaged", "reported", "triaged", t_triage),
                ("assigned", "triaged", "assigned", t_triage),
            ]
        if row["started_at"]:
            steps.append(("started", "assigned", "in_progress", row["started_at"]))
        if resolved_at:
            steps.append(("resolved", "in_progress", "resolved", resolved_at))
        if row["closed_at"]:
            steps.append(("closed", "resolved", "closed", row["closed_at"]))
        if age > FULL_TIMELINE and len(steps) > 2:
            steps = [steps[0], steps[-1]]  # old matters: when reported and how it ended (keeps the seed fast)
        for action, frm, to, t in steps:
            events.append(
                {
                    "id": next_event,
                    "incident_id": incident_id,
                    "action": action,
                    "from_status": frm,
                    "to_status": to,
                    "actor_id": None,
                    "note": "",
                    "at": t,
                }
            )
            next_event += 1
        counts[route] += 1
        counts[status] += 1

    for unit in units:
        risk = hidden_risk(seed, unit[0])
        expected = (UNIT_BASE + UNIT_RISK * risk) * YEARS
        n = int(expected) + (rng.random() < expected - int(expected))
        cats, weights = _weights(UNIT_TEMPLATES, risk)
        for _ in range(n):
            category = rng.choices(cats, weights)[0]
            add(
                when(UNIT_DECLINE),
                rng.choice(UNIT_TEMPLATES[category]),
                unit[2],
                unit,
                rng.choice(ROADS),
            )
    street_cats, street_weights = _weights(STREET_TEMPLATES, 0.0)
    for station_id in stations:
        for _ in range(STREET_PER_STATION * YEARS):
            category = rng.choices(street_cats, street_weights)[0]
            tpl = rng.choice(STREET_TEMPLATES[category])
            add(when(STREET_DECLINE), tpl, station_id, None, rng.choice(ROADS))

    for model, rows in ((Incident, incidents), (IncidentEvent, events)):
        for i in range(0, len(rows), CHUNK):
            await session.execute(insert(table_of(model)), rows[i : i + CHUNK])
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        for model in (Incident, IncidentEvent):
            name = table_of(model).name
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608 - names from our models
                    f"COALESCE((SELECT MAX(id) FROM {name}), 1), (SELECT MAX(id) FROM {name}) IS NOT NULL)"
                )
            )
    await session.commit()
    return {
        "incidents": len(incidents),
        "incident_events": len(events),
        "self_governed": counts["self_governance"],
        "mediation_route": counts["mediation"],
        "open": counts["reported"] + counts["assigned"] + counts["in_progress"],
    }
