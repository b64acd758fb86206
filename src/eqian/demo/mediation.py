"""Demo mediation: specialties and members for the district's teams, a unit's own advisors in the
biggest garment firms, and two years of cases whose number falls year over year (the seeds'
"矛盾不出企业" effect) and whose rate per unit follows its hidden risk. About 98 % end in an
agreement (the seeds report 1,297 of 1,320), the rest fail or go to court or labour arbitration.

When the incidents domain has already seeded dispute incidents (labour, processing fees, economic,
contract, family, neighbour), a share of the cases are opened from them (same time, unit, station,
``incident_id`` set); otherwise the cases stand alone. Everything is drawn from one
``random.Random`` seeded by ``seed`` and written with Core bulk inserts and explicit ids.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any

from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.db import Base, table_of
from eqian.core.ids import make_resident_id
from eqian.demo import names
from eqian.demo.risk import hidden_risk
from eqian.mediation.models import (
    MediationCase,
    MediationMember,
    MediationParty,
    MediationSession,
    MediationTeam,
)
from eqian.organizations.models import Unit

YEARS = 2
CHUNK = 10_000
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8))
Row = dict[str, Any]
MODELS: tuple[type[Base], ...] = (
    MediationTeam,
    MediationMember,
    MediationCase,
    MediationParty,
    MediationSession,
)
DISPUTES = ("labor", "processing_fee", "economic", "contract", "family", "neighbor")
# Shares of the dispute types (wages and processing fees dominate in a garment town).
TYPE_WEIGHTS = {
    "labor": 34,
    "processing_fee": 22,
    "economic": 10,
    "contract": 6,
    "family": 9,
    "neighbor": 8,
    "traffic": 6,
    "consumer": 4,
    "other": 1,
}
TEAM_SPECIALTIES = {
    "volunteer": "labor,family,neighbor,processing_fee,consumer",
    "veterans": "labor,processing_fee,neighbor,traffic",
    "community": "family,neighbor,consumer,other",
    "lawyers": "contract,economic,labor,processing_fee,traffic",
}
MEMBER_NAMES = ("大姐", "班长", "老师", "律师")
SUMMARIES = {
    "labor": "{n} 名工人反映{u}拖欠{m}个月工资共 {a} 元",
    "processing_fee": "加工户反映{u}拖欠加工费 {a} 元",
    "economic": "与{u}因货款结算发生纠纷，涉及 {a} 元",
    "contract": "与{u}因供货合同违约发生争议，涉及 {a} 元",
    "family": "夫妻因家庭琐事争吵，要求调解",
    "neighbor": "邻里因房屋漏水、噪音发生纠纷",
    "traffic": "电瓶车与三轮车碰擦，双方就赔偿协商未果",
    "consumer": "顾客在{u}购买童装后要求退货遭拒",
    "other": "其他民间纠纷",
}
AMOUNTS = {  # yuan, lognormal-ish ranges per type
    "labor": (3_000, 60_000),
    "processing_fee": (5_000, 200_000),
    "economic": (5_000, 300_000),
    "contract": (10_000, 500_000),
    "traffic": (500, 20_000),
    "consumer": (100, 3_000),
}


async def _next_ids(session: AsyncSession) -> dict[type[Base], int]:
    out: dict[type[Base], int] = {}
    for model in MODELS:
        t = table_of(model)
        out[model] = int(await session.scalar(select(func.coalesce(func.max(t.c.id), 0))) or 0) + 1
    return out


def _person(rng: random.Random) -> tuple[str, str, str]:
    name = rng.choice(names.SURNAMES) + rng.choice("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英")
    birth = dt.date(1965 + rng.randrange(40), 1 + rng.randrange(12), 1 + rng.randrange(28))
    region = rng.choice(("330502", "342221", "511321", "412726", "522422", "330503"))
    phone = rng.choice(names.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    return name, make_resident_id(region, birth, rng.randrange(1000)), phone


async def _dispute_incidents(session: AsyncSession) -> list[tuple[int, dt.datetime, int | None, int, str]]:
    """(id, time, unit_id, station_id, category) of dispute incidents, if the incidents domain has
    seeded any; the table's columns are read, not assumed, so a missing or different table is fine."""

    def columns(sync_session: Any) -> set[str]:
        insp = inspect(sync_session.connection())
        if not insp.has_table("incidents"):
            return set()
        return {c["name"] for c in insp.get_columns("incidents")}

    cols = await session.run_sync(columns)
    time_col = next(
        (c for c in ("reported_at", "occurred_at", "received_at", "created_at") if c in cols), None
    )
    if not time_col or not {"id", "category", "unit_id", "station_id"} <= cols:
        return []
    where = "category IN ('labor','processing_fee','economic','contract','family','neighbor')"
    if "route" in cols:
        where += " AND route = 'mediation'"
    rows = await session.execute(
        text(f"SELECT id, {time_col}, unit_id, station_id, category FROM incidents WHERE {where} ORDER BY id")  # noqa: S608 - column names from the inspector
    )
    out = []
    for iid, at, unit_id, station_id, category in rows.all():
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at)
        if at is None or station_id is None:
            continue
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        out.append((int(iid), at, unit_id, int(station_id), str(category)))
    return out


async def seed_mediation(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Teams' specialties and members, units' own advisors, two years of cases; commits."""
    rng = random.Random(f"mediation:{seed}")
    ids = await _next_ids(session)
    now = dt.datetime.combine(today, dt.time(), LOCAL_TZ).astimezone(dt.UTC)
    start = now - dt.timedelta(days=365 * YEARS)

    teams = list(await session.scalars(select(MediationTeam).order_by(MediationTeam.id)))
    for team in teams:
        if team.kind in TEAM_SPECIALTIES and not team.specialties:
            team.specialties = TEAM_SPECIALTIES[team.kind]
            await session.execute(
                update(MediationTeam).where(MediationTeam.id == team.id).values(specialties=team.specialties)
            )
    mediator_users: dict[int | None, list[tuple[int | None, str]]] = defaultdict(list)
    for uid, team_id, display in (
        await session.execute(
            select(User.id, User.team_id, User.display_name).where(User.role == Role.MEDIATOR.value)
        )
    ).all():
        mediator_users[team_id].append((uid, display))

    units = (
        await session.execute(
            select(
                Unit.id,
                Unit.station_id,
                Unit.service_point_id,
                Unit.name,
                Unit.category_code,
                Unit.employee_count,
            )
            .where(Unit.status != "closed")
            .order_by(Unit.id)
        )
    ).all()
    # The 12 biggest garment firms have their own advisors (企业内部调解小组).
    big = sorted((u for u in units if u.category_code == "garment"), key=lambda u: (-u.employee_count, u.id))[
        :12
    ]
    names_taken = {t.name for t in teams}
    new_teams: list[Row] = []
    for u in big:
        if f"{u.name[:50]}调解小组" in names_taken:
            continue
        new_teams.append(
            {
                "id": ids[MediationTeam],
                "name": f"{u.name[:50]}调解小组",
                "kind": "unit",
                "station_id": u.station_id,
                "unit_id": u.id,
                "specialties": "labor,processing_fee,contract",
                "active": True,
            }
        )
        ids[MediationTeam] += 1
    team_rows = [
        {"id": t.id, "station_id": t.station_id, "unit_id": t.unit_id, "spec": t.specialties} for t in teams
    ] + [
        {"id": t["id"], "station_id": t["station_id"], "unit_id": t["unit_id"], "spec": t["specialties"]}
        for t in new_teams
    ]
    unit_team: dict[int, int] = {
        int(t["unit_id"]): int(t["id"]) for t in team_rows if t["unit_id"] is not None
    }

    members: list[Row] = []
    members_of: dict[int, list[int]] = defaultdict(list)
    for t in team_rows:
        users = list(mediator_users.get(t["id"], []))
        for i in range(2 if t["unit_id"] else 4):
            user_id, display = users.pop(0) if users else (None, "")
            name = (display or "").split("（")[0] or rng.choice(names.SURNAMES) + MEMBER_NAMES[
                i % len(MEMBER_NAMES)
            ]
            specs = t["spec"].split(",") if t["spec"] else []
            members.append(
                {
                    "id": ids[MediationMember],
                    "team_id": t["id"],
                    "user_id": user_id,
                    "name": name[:64],
                    "specialties": ",".join(rng.sample(specs, min(2, len(specs)))) if specs else "",
                    "active": True,
                }
            )
            members_of[t["id"]].append(ids[MediationMember])
            ids[MediationMember] += 1

    def team_for(station_id: int, unit_id: int | None, dispute: str) -> int | None:
        if unit_id in unit_team and dispute in ("labor", "processing_fee", "contract") and rng.random() < 0.6:
            return unit_team[unit_id]
        fit = [
            t["id"]
            for t in team_rows
            if t["unit_id"] is None and dispute in t["spec"].split(",") and t["station_id"] == station_id
        ] or [t["id"] for t in team_rows if t["unit_id"] is None and dispute in t["spec"].split(",")]
        return rng.choice(fit) if fit else None

    cases: list[Row] = []
    parties: list[Row] = []
    sessions: list[Row] = []
    counts = {"cases": 0, "from_incidents": 0, "agreement": 0, "failed": 0, "referred": 0}
    span = (now - start).total_seconds()

    def add_case(
        at: dt.datetime,
        station_id: int,
        unit: Any | None,
        dispute: str,
        incident_id: int | None,
        sp: int | None,
    ) -> None:
        team_id = team_for(station_id, unit.id if unit else None, dispute)
        member_id = rng.choice(members_of[team_id]) if team_id and members_of[team_id] else None
        amount = None
        if dispute in AMOUNTS:
            lo, hi = AMOUNTS[dispute]
            amount = round(lo * (hi / lo) ** rng.random())
        unit_name = unit.name if unit else "对方"
        summary = SUMMARIES[dispute].format(
            n=rng.randrange(2, 15), u=unit_name, m=rng.randrange(1, 6), a=f"{amount or 0:,}"
        )
        duration = dt.timedelta(hours=rng.randrange(4, 24 * 20))
        closed_at = at + duration if at + duration < now else None
        r = rng.random()
        outcome = (
            None
            if closed_at is None
            else ("agreement" if r < 0.983 else "failed" if r < 0.992 else "referred")
        )
        case_id = ids[MediationCase]
        ids[MediationCase] += 1
        recovered = 0
        agreement_fen = None
        text_ = ""
        if outcome == "agreement":
            agreement_fen = round((amount or 0) * rng.uniform(0.6, 1.0)) * 100 if amount else None
            recovered = agreement_fen or 0
            text_ = "双方自愿达成调解协议" + (
                f"，一次性支付 {agreement_fen // 100:,} 元" if agreement_fen else "，握手言和"
            )
        cases.append(
            {
                "id": case_id,
                "incident_id": incident_id,
                "source": "incident"
                if incident_id
                else ("service_point" if sp and rng.random() < 0.5 else ("unit" if unit else "walk_in")),
                "station_id": station_id,
                "unit_id": unit.id if unit else None,
                "service_point_id": sp,
                "team_id": team_id,
                "member_id": member_id,
                "dispute_type": dispute,
                "summary": summary[:1000],
                "amount_in_dispute_fen": amount * 100 if amount else None,
                "status": "closed" if closed_at else ("in_progress" if rng.random() < 0.6 else "open"),
                "outcome": outcome,
                "referred_to": rng.choice(("court", "labour_arbitration")) if outcome == "referred" else None,
                "agreement_text": text_,
                "agreement_amount_fen": agreement_fen,
                "payment_schedule": rng.choice(("当场支付", "分两期支付", "7 日内付清"))
                if agreement_fen
                else "",
                "amount_recovered_fen": recovered,
                "outcome_note": "",
                "opened_by": None,
                "opened_at": at,
                "closed_at": closed_at,
                "updated_at": closed_at or at,
            }
        )
        counts["cases"] += 1
        if outcome:
            counts[outcome] += 1
        for role in ("applicant", "respondent"):
            name, rid, phone = _person(rng)
            rid_: str | None = rid
            if (
                role == "respondent"
                and unit is not None
                and dispute in ("labor", "processing_fee", "economic", "contract", "consumer")
            ):
                name, rid_ = unit.name[:64], None
            parties.append(
                {
                    "id": ids[MediationParty],
                    "case_id": case_id,
                    "name": name,
                    "role": role,
                    "id_number": rid_,
                    "phone": phone,
                }
            )
            ids[MediationParty] += 1
        for k in range(1 if closed_at else rng.randrange(0, 2)):
            held = at + dt.timedelta(hours=2 + k)
            if held < now:
                sessions.append(
                    {
                        "id": ids[MediationSession],
                        "case_id": case_id,
                        "held_at": held,
                        "place": "调解室",
                        "note": "召集双方当面调解，释法明理",
                        "actor_id": None,
                        "created_at": held,
                    }
                )
                ids[MediationSession] += 1

    # Cases from dispute incidents, if there are any (a share: the rest were settled on the spot).
    by_id = {u.id: u for u in units}
    linked = await _dispute_incidents(session)
    for iid, at, unit_id, station_id, category in linked:
        if at < start or at > now or rng.random() > 0.6:
            continue
        unit = by_id.get(unit_id) if unit_id is not None else None
        add_case(at, station_id, unit, category if category in TYPE_WEIGHTS else "other", iid, None)
        counts["from_incidents"] += 1
    # Stand-alone cases (at service points, by units, walk-ins): per unit, by hidden risk; the
    # second year has about a quarter fewer than the first.
    kinds, weights = zip(*TYPE_WEIGHTS.items(), strict=True)
    # The stand-alone cases make up what the incidents did not bring, down to a fifth of the
    # usual number (walk-ins and service-point cases never reach the 110 system).
    base = 0.75 * sum(0.15 + 2.2 * hidden_risk(seed, u.id) for u in units) * (1 + 0.75)
    scale = 0.75 * max(0.2, 1 - counts["from_incidents"] / base) if base else 0.75
    for u in units:
        risk = hidden_risk(seed, u.id)
        expected = scale * (0.15 + 2.2 * risk)
        for year in range(YEARS):
            n = _poisson(rng, expected * (1.0 if year == 0 else 0.75))
            for _ in range(n):
                offset = rng.random() * span / YEARS + year * span / YEARS
                at = start + dt.timedelta(seconds=offset)
                local = at.astimezone(LOCAL_TZ)
                at = local.replace(hour=8 + rng.randrange(11)).astimezone(dt.UTC)
                if at > now:
                    continue
                dispute = rng.choices(kinds, weights)[0]
                add_case(at, u.station_id, u, dispute, None, u.service_point_id)

    batches: tuple[tuple[type[Base], list[Row]], ...] = (
        (MediationTeam, new_teams),
        (MediationMember, members),
        (MediationCase, cases),
        (MediationParty, parties),
        (MediationSession, sessions),
    )
    for table_model, rows in batches:
        for i in range(0, len(rows), CHUNK):
            await session.execute(insert(table_of(table_model)), rows[i : i + CHUNK])
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        for model in MODELS:
            name = table_of(model).name
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608 - names from our models
                    f"COALESCE((SELECT MAX(id) FROM {name}), 1), (SELECT MAX(id) FROM {name}) IS NOT NULL)"
                )
            )
    await session.commit()
    return {
        "mediation_teams": len(new_teams),
        "mediation_members": len(members),
        "mediation_cases": counts["cases"],
        "mediation_from_incidents": counts["from_incidents"],
        "mediation_success": counts["agreement"],
        "mediation_failed": counts["failed"],
        "mediation_referred": counts["referred"],
    }


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small here.
    limit, k, p = pow(2.718281828459045, -lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
