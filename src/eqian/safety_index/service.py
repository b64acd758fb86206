"""Rules of the safety index: computing a month, and the scoped reads of scores and history.

``compute_month`` is one facts pass per domain (``eqian.core.facts``), scoring in Python over the
per-unit sums (``compute.score_unit``), ranks within station and category, and one bulk write of
the month, which replaces the month's rows in the same transaction. A month already computed with
another model version is only recomputed with ``replace=True``: a past month never changes silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, TextClause, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import QueuePool

from eqian.core import audit, gcpolicy, outbox
from eqian.core.accounts import Role
from eqian.core.db import bulk_insert, utcnow
from eqian.core.errors import Conflict, Forbidden, NotFound, field_error
from eqian.core.facts import SOURCES, fetch
from eqian.core.facts import load as load_facts
from eqian.core.months import bounds as month_bounds
from eqian.core.months import check as check_month
from eqian.core.months import shift as shift_month
from eqian.core.pacing import BATCH_PACE, Pacer, database_busy
from eqian.core.permissions import Principal
from eqian.organizations.models import Station, Unit
from eqian.organizations.service import affairs_clause
from eqian.safety_index import schemas
from eqian.safety_index.compute import (
    GRADE_LABELS,
    GRADES,
    IndexModel,
    Scored,
    as_config,
    explain,
    group_ranks,
    load_model,
    parse_model,
    score_slices,
)
from eqian.safety_index.models import SafetyIndexModel, SafetyIndexRun, SafetyIndexScore

COMPUTED_TOPIC = "safety_index.computed"
COMPUTE_ROLES = frozenset({Role.BUREAU_ADMIN})
CHUNK = 2000
# Units scored between two yields to the event loop: the monthly job runs inside a server worker,
# and 20,000 units scored in one go (1–3 s of Python) would hold every request on that worker.
SCORE_SLICE = 200
DEFAULT_PACE = BATCH_PACE  # the monthly job's and `eqian index compute`'s (core/pacing.py)
# Core insert: a plain executemany, without the ORM bulk path fetching every new id back.
SCORES = cast(Table, SafetyIndexScore.__table__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# A month's facts are a narrow slice of two years of history, read by index from pages that are
# hot: with the default cost of a random page (4, a spinning disk's) the planner read all 1.9
# million receipts of a city and hashed every residence record to find one month's
# (bench/index.py: receipts 185 → 63 ms, hires 150 → 61 ms). 1.1 is the usual setting for SSDs;
# LOCAL keeps it to the reading transaction (PostgreSQL only).
_HOT_PAGES = text("SET LOCAL random_page_cost = 1.1")
_ONE_WORKER = text("SET LOCAL max_parallel_workers_per_gather = 0")


# --- months ------------------------------------------------------------------------------------


# --- computing ---------------------------------------------------------------------------------


async def unit_metrics(
    session: AsyncSession,
    month: str,
    names: Iterable[str] = SOURCES,
    progress: Progress | None = None,
    pacer: Pacer | None = None,
) -> dict[int, dict[str, float]]:
    """Every unit's summed facts for the month, the units without any left out (the backtest's,
    the tests' and the benchmark's view of ``unit_columns``)."""
    ids = [uid for (uid,) in await fetch(session, select(Unit.id).order_by(Unit.id))]
    sums = await unit_columns(session, month, ids, names, progress, pacer)
    out: dict[int, dict[str, float]] = {}
    for i, uid in enumerate(ids):
        found = {metric: col[i] for metric, col in sums.items() if col[i]}
        if found:
            out[uid] = found
    return out


Columns = dict[str, list[float]]  # metric -> value per unit, by position; one spare slot at the end


async def unit_columns(
    session: AsyncSession,
    month: str,
    unit_ids: Sequence[int],
    names: Iterable[str] = SOURCES,
    progress: Progress | None = None,
    pacer: Pacer | None = None,
) -> Columns:
    """The month's facts of ``unit_ids`` summed per metric: ``columns[metric][i]`` is the sum for
    ``unit_ids[i]``, one pass per domain that has a facts module. Facts of other units (inactive
    ones) and of none (a street incident) fall into the spare slot at the end, which nobody reads:
    a city's 300,000 values a month are added without a test or a dictionary per unit, and scoring
    reads the columns as they are (``compute.score_columns``)."""
    with gcpolicy.young_collections():
        return await _unit_columns(session, month, unit_ids, names, progress, pacer or Pacer())


async def _unit_columns(
    session: AsyncSession,
    month: str,
    unit_ids: Sequence[int],
    names: Iterable[str],
    progress: Progress | None,
    pacer: Pacer,
) -> Columns:
    start, end = month_bounds(month)
    sources = load_facts(names)
    pending = list(sources)
    spare = len(unit_ids)
    position = {uid: i for i, uid in enumerate(unit_ids)}
    columns: Columns = {}
    step = 50 * SCORE_SLICE
    done = 0

    async def lane(reader: AsyncSession, *settings: TextClause) -> None:
        nonlocal done
        for setting in settings:
            await reader.execute(setting)
        while pending:
            source = pending.pop(0)
            # Summed between two awaits: the other lane never sees a half-added slice.
            for block in await source.rows(reader, start, end):
                for lo in range(0, len(block.rows), step):
                    part = block.rows[lo : lo + step]
                    at = [position.get(row[1], spare) for row in part]
                    for j, metric in enumerate(block.metrics, 2):
                        col = columns.get(metric)
                        if col is None:
                            col = columns[metric] = [0.0] * (spare + 1)
                        for i, row in zip(at, part, strict=True):
                            col[i] += float(row[j] or 0)
                    await pacer.step()
            done += 1
            if progress:
                progress("facts", done, len(sources))
            await pacer.step()

    bind = session.bind  # an engine: a session bound to one connection has no second lane
    await session.connection()  # the first lane's, before asking the pool for another
    on_pg = session.get_bind().dialect.name == "postgresql"
    if pacer.ratio > 0 or not (isinstance(bind, AsyncEngine) and _spare_connection(bind)):
        await lane(session, *((_HOT_PAGES,) if on_pg else ()))
        return columns
    # Unpaced on PostgreSQL, two domains are read at once: while one query runs in the database
    # the facts of the last are summed here, so the pass takes about the longer of the two halves,
    # not their sum (bench/index.py). Each lane's statements see what was committed when each
    # began, as one lane's did before (READ COMMITTED); a paced job keeps to one connection. Two
    # lanes and this process already keep two cores busy: parallel workers on top of them made
    # the pass slower (0.53 -> 0.45 s without them).
    async with AsyncSession(bind) as other:
        lanes = [asyncio.ensure_future(lane(reader, _HOT_PAGES, _ONE_WORKER)) for reader in (session, other)]
        try:
            await asyncio.gather(*lanes)
        except BaseException:
            # The other lane stops before its session closes under it; the first error is raised.
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            raise
    return columns


def _spare_connection(engine: AsyncEngine) -> bool:
    """Whether a second connection is to be had on PostgreSQL without waiting for one: an idle one
    in the pool, or room to open one below its size (the job never takes a busy pool's overflow)."""
    if engine.dialect.name != "postgresql":
        return False
    pool = engine.sync_engine.pool
    return not isinstance(pool, QueuePool) or pool.checkedin() > 0 or pool.overflow() < 0


@dataclass(frozen=True)
class ComputeResult:
    month: str
    units: int
    config_version: str
    replaced_version: str | None
    seconds: float
    paused: float = 0.0  # of ``seconds``, pauses for others busy on the database (core.pacing)


async def compute_month(
    session: AsyncSession,
    actor: Principal,
    month: str,
    *,
    replace: bool = False,
    names: Iterable[str] = SOURCES,
    model: IndexModel | None = None,
    progress: Progress | None = None,
    record: bool = True,
    pace: float = 0.0,
) -> ComputeResult:
    """Compute, store and announce one month's index for every active unit. Commits once.

    ``record=False`` (the demo generator only) writes neither the audit row nor the outbox event.
    ``pace`` (``core.pacing``): seconds of pause per second of work while reading and scoring; the
    writing at the end is not paced, so no lock is held longer (SQLite's is the whole database)."""
    if actor.role not in COMPUTE_ROLES:
        raise Forbidden("当前角色无权计算平安指数")
    check_month(month)
    with gcpolicy.young_collections():
        return await _compute_month(
            session, actor, month, replace, names, model or load_model(), progress, record, pace
        )


async def _compute_month(
    session: AsyncSession,
    actor: Principal,
    month: str,
    replace: bool,
    names: Iterable[str],
    model: IndexModel,
    progress: Progress | None,
    record: bool,
    pace: float,
) -> ComputeResult:
    began = time.perf_counter()
    run = await session.get(SafetyIndexRun, month)
    previous_version = run.config_version if run else None
    if run is not None and run.config_version != model.version and not replace:
        raise Conflict(
            f"{month} 的指数已按模型 {run.config_version} 计算，当前模型为 {model.version}；"
            "如需重算请明确指定替换",
            code="version_mismatch",
            details=[{"field": "replace", "code": "version_mismatch", "message": run.config_version}],
        )
    await _keep_model(session, model)
    units = await fetch(
        session,
        select(Unit.id, Unit.station_id, Unit.category_code).where(Unit.status == "active").order_by(Unit.id),
    )
    # SQLite's write transaction (BEGIN IMMEDIATE) holds the whole database from the first statement:
    # pausing inside it would hold up every other writer, so there the job only yields.
    on_pg = session.get_bind().dialect.name == "postgresql"
    pacer = Pacer(pace, busy=database_busy(session)) if on_pg else Pacer()
    columns = await unit_columns(session, month, [uid for uid, _, _ in units], names, progress, pacer)
    previous = await fetch(
        session,
        select(SafetyIndexScore.unit_id, SafetyIndexScore.score).where(
            SafetyIndexScore.month == shift_month(month, -1)
        ),
    )
    last: dict[int, float] = dict(previous)
    scored: list[tuple[float, str, list[Scored]]] = []
    for part in score_slices(model, columns, len(units), SCORE_SLICE):
        scored.extend(part)
        await pacer.step()
    if progress:
        progress("score", len(units), len(units))
    scores = [s[0] for s in scored]
    rank_st, size_st = group_ranks((st for _, st, _ in units), scores)
    rank_cat, size_cat = group_ranks((cat for _, _, cat in units), scores)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    no_advice: list[str] = []  # derived from the deductions when read (models.py)
    for i, ((uid, st, cat), (score, grade, items)) in enumerate(zip(units, scored, strict=True)):
        if i % (5 * SCORE_SLICE) == 0:
            await pacer.step()
        prev = last.get(uid)
        rows.append(
            {
                "month": month,
                "unit_id": uid,
                "station_id": st,
                "category_code": cat,
                "score": score,
                "grade": grade,
                "rank_station": rank_st[i],
                "station_units": size_st[i],
                "rank_category": rank_cat[i],
                "category_units": size_cat[i],
                "change": None if prev is None else round(score - prev, 1),
                "deductions": items,
                "advice": no_advice,
                "config_version": model.version,
                "computed_at": now,
            }
        )
    if on_pg:
        # A month's index can always be computed again, so its commit need not wait for the disk:
        # 20,000 rows of scores and reasons flushed synchronously held up every incident committed
        # behind them (intake p99 while the index ran: 246 → 126 ms in bench/intake.py's loop).
        # WAL stays in order, so a crash can only lose this transaction if it loses every later
        # one too: the audit chain keeps no gap, and the monthly job computes a lost month again.
        # LOCAL: the setting ends with this transaction and never reaches the pool's next user.
        await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    await session.execute(delete(SafetyIndexScore).where(SafetyIndexScore.month == month))
    await bulk_insert(session, SCORES, rows, CHUNK)
    if progress:
        progress("write", len(rows), len(rows))
    seconds = round(time.perf_counter() - began, 3)
    if run is None:
        session.add(
            SafetyIndexRun(month=month, config_version=model.version, units=len(rows), seconds=seconds)
        )
    else:
        run.config_version, run.units, run.seconds, run.computed_at = model.version, len(rows), seconds, now
    if record:
        await audit.record_action(
            session,
            actor,
            "safety_index.compute",
            "safety_index_month",
            month,
            {"units": len(rows), "config_version": model.version, "replaced_version": previous_version},
        )
        outbox.emit(
            session,
            COMPUTED_TOPIC,
            {
                "month": month,
                "units": len(rows),
                "config_version": model.version,
                # Units hear of a month once, and again only when another model replaced it: a
                # re-run for late data must not send every unit of the city the same notice again.
                "notify": previous_version != model.version,
                "station_id": None,
                "unit_id": None,
                "at": now.isoformat(),
            },
        )
    await session.commit()
    return ComputeResult(month, len(rows), model.version, previous_version, seconds, round(pacer.paused, 3))


async def _keep_model(session: AsyncSession, model: IndexModel) -> None:
    """Store the model's version as first used, and refuse a model changed under the same version:
    its months would be explained with texts that did not score them."""
    config = as_config(model)
    stored = await session.get(SafetyIndexModel, model.version)
    if stored is None:
        session.add(SafetyIndexModel(version=model.version, config=config))
    elif stored.config != config:
        raise Conflict(
            f"平安指数模型 {model.version} 的内容与首次使用时不同；修改模型须同时提升 version",
            code="model_changed",
            details=[{"field": "version", "code": "model_changed", "message": model.version}],
        )


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreFilters:
    month: str | None = None
    station_id: int | None = None
    category: str | None = None
    grade: str | None = None
    unit_id: int | None = None
    order: str = "asc"  # asc: riskiest (lowest score) first
    limit: int = 50
    offset: int = 0


def _written_out(row: SafetyIndexScore) -> bool:
    """A row computed before migration 0008: its explanations are stored as they were written."""
    return bool(row.deductions) and isinstance(row.deductions[0], dict)


async def _models(session: AsyncSession, rows: Iterable[SafetyIndexScore]) -> dict[str, IndexModel]:
    """The model versions that explain these rows."""
    versions = {r.config_version for r in rows if r.deductions and not _written_out(r)}
    if not versions:
        return {}
    stored = await session.scalars(select(SafetyIndexModel).where(SafetyIndexModel.version.in_(versions)))
    return {m.version: parse_model(m.config, f"safety_index_models {m.version}") for m in stored}


def _score_out(
    row: SafetyIndexScore, unit_name: str, station_name: str, models: dict[str, IndexModel]
) -> schemas.ScoreOut:
    if _written_out(row):
        deductions = [schemas.DeductionOut.model_validate(d) for d in row.deductions]
        advice = list(row.advice)
    else:
        # The version is stored with its first month; the current file is only a fallback for a
        # version that is not (nothing writes such a row).
        items, tips = explain(
            models.get(row.config_version) or load_model(),
            row.deductions,
            unit_id=row.unit_id,
            month=row.month,
        )
        deductions = [schemas.DeductionOut.model_validate(i.as_json()) for i in items]
        advice = list(tips)
    return schemas.ScoreOut(
        month=row.month,
        unit_id=row.unit_id,
        unit_name=unit_name,
        station_id=row.station_id,
        station_name=station_name,
        category_code=row.category_code,
        score=row.score,
        grade=row.grade,
        grade_label=GRADE_LABELS.get(row.grade, row.grade),
        rank_station=row.rank_station,
        station_units=row.station_units,
        rank_category=row.rank_category,
        category_units=row.category_units,
        change=row.change,
        deductions=deductions,
        advice=advice,
        config_version=row.config_version,
    )


async def latest_month(session: AsyncSession) -> str | None:
    return await session.scalar(select(func.max(SafetyIndexRun.month)))


async def computed_months(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(SafetyIndexRun.month).order_by(SafetyIndexRun.month.desc())))


async def list_scores(
    session: AsyncSession, actor: Principal, f: ScoreFilters
) -> tuple[list[schemas.ScoreOut], int, str | None]:
    """Scores of the month (the latest computed one by default) for units in the actor's scope."""
    month = check_month(f.month) if f.month else await latest_month(session)
    if f.grade is not None and f.grade not in GRADES:
        raise field_error("grade", "等级应为 excellent / good / fair / poor", "invalid_grade")
    if month is None:
        return [], 0, None
    where: list[ColumnElement[bool]] = [SafetyIndexScore.month == month, affairs_clause(actor.scope)]
    if f.station_id is not None:
        where.append(SafetyIndexScore.station_id == f.station_id)
    if f.category:
        where.append(SafetyIndexScore.category_code == f.category)
    if f.grade:
        where.append(SafetyIndexScore.grade == f.grade)
    if f.unit_id is not None:
        where.append(SafetyIndexScore.unit_id == f.unit_id)
    base = select(SafetyIndexScore, Unit.name, Station.name).join(Unit, Unit.id == SafetyIndexScore.unit_id)
    base = base.join(Station, Station.id == SafetyIndexScore.station_id).where(*where)
    total = await session.scalar(
        select(func.count())
        .select_from(SafetyIndexScore)
        .join(Unit, Unit.id == SafetyIndexScore.unit_id)
        .where(*where)
    )
    order = SafetyIndexScore.score.asc() if f.order == "asc" else SafetyIndexScore.score.desc()
    rows = list(
        await session.execute(base.order_by(order, SafetyIndexScore.unit_id).limit(f.limit).offset(f.offset))
    )
    models = await _models(session, (r for r, _, _ in rows))
    return [_score_out(r, un, sn, models) for r, un, sn in rows], int(total or 0), month


async def unit_history(session: AsyncSession, actor: Principal, unit_id: int) -> schemas.UnitHistory:
    """Every computed month of one unit in the actor's scope, oldest first (404 outside scope)."""
    unit = await session.scalar(select(Unit).where(Unit.id == unit_id, affairs_clause(actor.scope)))
    if unit is None:
        raise NotFound("单位不存在")
    rows = list(
        await session.execute(
            select(SafetyIndexScore, Station.name)
            .join(Station, Station.id == SafetyIndexScore.station_id)
            .where(SafetyIndexScore.unit_id == unit_id)
            .order_by(SafetyIndexScore.month)
        )
    )
    models = await _models(session, (r for r, _ in rows))
    items = [_score_out(r, unit.name, sn, models) for r, sn in rows]
    return schemas.UnitHistory(unit_id=unit.id, unit_name=unit.name, items=items, total=len(items))


async def peer_scores(session: AsyncSession, actor: Principal, unit_id: int, month: str) -> list[float]:
    """The scores of the unit's category peers in its station that month, best first, without who
    they are: a unit may compare itself with its peers but not see them (anonymised)."""
    own = await session.scalar(
        select(SafetyIndexScore)
        .join(Unit, Unit.id == SafetyIndexScore.unit_id)
        .where(
            SafetyIndexScore.unit_id == unit_id, SafetyIndexScore.month == month, affairs_clause(actor.scope)
        )
    )
    if own is None:
        return []
    rows = await session.scalars(
        select(SafetyIndexScore.score)
        .where(
            SafetyIndexScore.month == month,
            SafetyIndexScore.station_id == own.station_id,
            SafetyIndexScore.category_code == own.category_code,
        )
        .order_by(SafetyIndexScore.score.desc())
    )
    return list(rows)


async def grade_counts(
    session: AsyncSession, actor: Principal, month: str, station_id: int | None
) -> dict[str, int]:
    where: list[ColumnElement[bool]] = [SafetyIndexScore.month == month, affairs_clause(actor.scope)]
    if station_id is not None:
        where.append(SafetyIndexScore.station_id == station_id)
    rows = await session.execute(
        select(SafetyIndexScore.grade, func.count())
        .join(Unit, Unit.id == SafetyIndexScore.unit_id)
        .where(*where)
        .group_by(SafetyIndexScore.grade)
    )
    counts = dict.fromkeys(GRADES, 0)
    counts.update({g: int(n) for g, n in rows})
    return counts
