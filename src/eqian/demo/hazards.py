"""Demo inspections and hazards: two years of them for every unit, driven by its hidden risk.

Riskier units fail more checklist items and fix them more slowly, so a few of their hazards are
overdue today. Everything is drawn from one ``random.Random`` seeded by ``seed``, written with Core
bulk inserts and explicit ids (then PostgreSQL's sequences are moved past them).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.db import Base, table_of
from eqian.demo.risk import hidden_risk
from eqian.hazards.jobs import level_for
from eqian.hazards.models import ChecklistItem, Hazard, HazardEvent, Inspection, InspectionResult
from eqian.hazards.service import GENERIC, LOCAL_TZ, ensure_checklists, load_config
from eqian.organizations.models import LiaisonAssignment, Unit

YEARS = 2
CHUNK = 20_000
PAGE = 3000  # rows per INSERT; SQLAlchemy shrinks a page to stay under the driver's parameter limit
RECENT = dt.timedelta(days=60)  # a hazard stuck longer than this was fixed late, not left open
Row = dict[str, Any]
MODELS: tuple[type[Base], ...] = (Inspection, InspectionResult, Hazard, HazardEvent)


def _fail_rate(risk: float) -> float:
    # Mean hidden risk is ~0.23: about 7.5 % of checks fail on average, ~1.5 hazards a unit a year.
    return 0.025 + 0.22 * risk


def _working_time(day: dt.date, rng: random.Random) -> dt.datetime:
    local = dt.datetime.combine(day, dt.time(9), LOCAL_TZ) + dt.timedelta(minutes=rng.randrange(8 * 60))
    return local.astimezone(dt.UTC)


async def _next_ids(session: AsyncSession) -> dict[type[Base], int]:
    ids: dict[type[Base], int] = {}
    for model in MODELS:
        table = table_of(model)
        ids[model] = int(await session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1
    return ids


async def seed_hazards(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Insert two years of inspections and hazards for the units already there; commits.

    Returns row counts per kind (``inspections``, ``results``, ``hazards``, ``events``,
    ``verified``, ``overdue``).
    """
    await ensure_checklists(session)
    await session.flush()
    cfg = load_config()
    items_by_cat: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for item in await session.scalars(
        select(ChecklistItem)
        .where(ChecklistItem.active.is_(True))
        .order_by(ChecklistItem.sort_order, ChecklistItem.id)
    ):
        items_by_cat[item.category_code].append((item.id, item.severity))
    item_text = dict((await session.execute(select(ChecklistItem.id, ChecklistItem.text))).all())

    units = (
        await session.execute(
            select(Unit.id, Unit.category_code, Unit.station_id)
            .where(Unit.status != "closed")
            .order_by(Unit.id)
        )
    ).all()
    officers: dict[int, list[int]] = defaultdict(list)
    security: dict[int, int] = {}
    for uid, role, station_id, unit_id in (
        await session.execute(select(User.id, User.role, User.station_id, User.unit_id).order_by(User.id))
    ).all():
        if role == Role.STATION_OFFICER.value and station_id is not None:
            officers[station_id].append(uid)
        elif role == Role.UNIT_SECURITY.value and unit_id is not None:
            security.setdefault(unit_id, uid)
    liaison = dict(
        (await session.execute(select(LiaisonAssignment.unit_id, LiaisonAssignment.officer_id))).all()
    )

    rng = random.Random(f"hazards:{seed}")
    now = dt.datetime.combine(today, dt.time(), LOCAL_TZ).astimezone(dt.UTC)
    start = today - dt.timedelta(days=365 * YEARS)
    span = (today - start).days
    ids = await _next_ids(session)
    inspections: list[Row] = []
    results: list[Row] = []
    hazards: list[Row] = []
    events: list[Row] = []
    verified = overdue = 0

    for unit_id, category, station_id in units:
        risk = hidden_risk(seed, unit_id)
        checklist = items_by_cat.get(category) or items_by_cat[GENERIC]
        rate = _fail_rate(risk)
        count = 6 + rng.randrange(3) + round(4 * risk)  # quarterly visits plus some self-inspections
        days = sorted(rng.randrange(span) for _ in range(count))
        station_officers = officers.get(station_id, [])
        for day_offset in days:
            at = _working_time(start + dt.timedelta(days=day_offset), rng)
            if at > now:
                continue
            self_check = unit_id in security and rng.random() < 0.3
            inspector: int | None
            if self_check:
                kind, inspector = "self_inspection", security[unit_id]
            else:
                choices = [*station_officers, *([liaison[unit_id]] * 2 if unit_id in liaison else [])]
                kind, inspector = "inspection", (rng.choice(choices) if choices else None)
            inspection_id = ids[Inspection]
            ids[Inspection] += 1
            inspections.append(
                {
                    "id": inspection_id,
                    "unit_id": unit_id,
                    "kind": kind,
                    "inspector_id": inspector,
                    "inspected_at": at,
                    "note": "",
                    "created_at": at,
                }
            )
            for item_id, severity in checklist:
                outcome = "fail" if rng.random() < rate else ("na" if rng.random() < 0.03 else "pass")
                results.append(
                    {
                        "id": ids[InspectionResult],
                        "inspection_id": inspection_id,
                        "item_id": item_id,
                        "result": outcome,
                        "note": "",
                        "photo": None,
                    }
                )
                ids[InspectionResult] += 1
                if outcome != "fail":
                    continue
                hazard_id = ids[Hazard]
                ids[Hazard] += 1
                allowed = cfg.deadline_days[severity]
                deadline = at + dt.timedelta(days=allowed)
                # Riskier units take longer; a few never get round to it.
                fix_days = rng.expovariate(1 / (allowed * (0.3 + 1.4 * risk)))
                if rng.random() < 0.01 + 0.05 * risk:  # stuck: still open if recent, else fixed very late
                    fix_days = 10_000.0 if now - at < RECENT else allowed * 4 + rng.randrange(60)
                fixed_at = at + dt.timedelta(days=fix_days, hours=1)
                verified_at = fixed_at + dt.timedelta(hours=rng.randrange(2, 48))
                row: Row = {
                    "id": hazard_id,
                    "unit_id": unit_id,
                    "inspection_id": inspection_id,
                    "item_id": item_id,
                    "description": item_text[item_id],
                    "severity": severity,
                    "found_at": at,
                    "deadline": deadline,
                    "verified_at": None,
                    "overdue_since": None,
                    "escalation_level": 0,
                    "updated_at": at,
                }
                hazard_events: list[tuple[dt.datetime, str, int | None, str]] = [(at, "found", inspector, "")]
                if verified_at <= now:
                    row.update(status="verified", verified_at=verified_at, updated_at=verified_at)
                    hazard_events += [
                        (fixed_at, "fix_submitted", security.get(unit_id), "已按要求整改"),
                        (verified_at, "verified", inspector if not self_check else None, ""),
                    ]
                    verified += 1
                elif fixed_at <= now:
                    row.update(status="fix_submitted", updated_at=fixed_at)
                    hazard_events.append((fixed_at, "fix_submitted", security.get(unit_id), "已按要求整改"))
                else:
                    row["status"] = "open"
                if row["status"] != "verified" and deadline < now:
                    # Already escalated to today's level, so the job's first run adds nothing old.
                    row.update(overdue_since=deadline, escalation_level=level_for(deadline, now))
                    overdue += 1
                hazards.append(row)
                for when, action, actor, note in hazard_events:
                    events.append(
                        {
                            "id": ids[HazardEvent],
                            "hazard_id": hazard_id,
                            "action": action,
                            "actor_id": actor,
                            "note": note,
                            "photo": None,
                            "at": when,
                        }
                    )
                    ids[HazardEvent] += 1

    batches: tuple[tuple[type[Base], list[Row]], ...] = (
        (Inspection, inspections),
        (InspectionResult, results),
        (Hazard, hazards),
        (HazardEvent, events),
    )
    for table_model, rows in batches:
        for i in range(0, len(rows), CHUNK):
            await session.execute(
                insert(table_of(table_model)).execution_options(insertmanyvalues_page_size=PAGE),
                rows[i : i + CHUNK],
            )
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
        "inspections": len(inspections),
        "results": len(results),
        "hazards": len(hazards),
        "events": len(events),
        "verified": verified,
        "overdue": overdue,
    }
