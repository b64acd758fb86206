"""Rollups: the domains' monthly facts summed per (month, station, unit category, metric).

How they stay current (staleness bound in docs/cockpit.md):

1. An outbox handler (``events.py``) marks the month of each event's ``at`` dirty, in the
   transaction that marks the event dispatched (``mark_dirty``).
2. The job ``cockpit.refresh`` (every ``REFRESH_SECONDS``) recomputes every dirty month:
   ``eqian.core.facts.collect`` for that month (one set-based query per metric family in each
   domain), summed per station and category in one pass, then the month's rollup rows are
   replaced in one transaction. Idempotent: recomputing a clean month writes the same rows.
3. The job ``cockpit.sweep`` (hourly) marks the current month and the ``SWEEP_MONTHS`` before it
   dirty, so a change attributed to an earlier month (money recovered today for an old fraud) reaches
   the rollups within the hour, and 同比 always compares against fresh figures.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import Float, Integer, String, column, delete, func, insert, inspect, select, table, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eqian.cockpit.models import CockpitMonth, Rollup
from eqian.core import facts as core_facts
from eqian.core.db import dialect_insert, utcnow
from eqian.core.months import between as months_between
from eqian.core.months import bounds, shift
from eqian.core.months import of as month_of
from eqian.organizations.models import Unit

REFRESH_SECONDS = 30
SWEEP_SECONDS = 3600
SWEEP_MONTHS = 13
MAX_PER_RUN = 6  # months recomputed per refresh run; the rest wait for the next run
REFRESH_LOCK = 0x636B7074  # "ckpt": advisory lock class of a month's refresh (PostgreSQL)
NO_STATION = 0
ALL_STATIONS = -1  # pre-summed over every station, so the bureau-wide view reads ~200 rows a month
NO_UNIT = ""
GRADES = ("excellent", "good", "fair", "poor")
GRADE_METRIC = "index.grade.{}"

# The fact sources; tests point this at their own modules.
SOURCES: tuple[str, ...] = core_facts.SOURCES

# The safety-index table belongs to the safety_index domain; read it by name so the cockpit
# works (with no index figures) before that domain lands.
index_scores = table(
    "safety_index_scores",
    column("month", String),
    column("unit_id", Integer),
    column("station_id", Integer),
    column("score", Float),
    column("grade", String),
)


# --- months --------------------------------------------------------------------------------------


# --- dirty marks ---------------------------------------------------------------------------------


_MARKED = "cockpit.marked"  # session.info: (transaction, months marked in it)


async def mark_dirty(session: AsyncSession, months: Iterable[str], *, now: dt.datetime | None = None) -> None:
    """Mark months for recomputation (no commit). Safe to call from several workers at once.

    A month already marked in the session's current transaction is not marked again: the outbox
    hands hundreds of new incidents of the same month to this in one transaction."""
    moment = now or utcnow()
    todo = sorted(set(months) - _marked(session))
    insert = dialect_insert(session)
    for month in todo:
        stmt = insert(CockpitMonth).values(month=month, dirty=True, dirty_since=moment, rows=0)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[CockpitMonth.month], set_={"dirty": True, "dirty_since": moment}
            )
        )
    _marked(session).update(todo)  # the transaction the statements began, if none had begun


def _marked(session: AsyncSession) -> set[str]:
    """The months marked in the session's current transaction."""
    transaction = session.sync_session.get_transaction()
    memo = session.info.get(_MARKED)
    if memo is None or memo[0] is not transaction:
        memo = session.info[_MARKED] = (transaction, set[str]())
    marked: set[str] = memo[1]
    return marked


async def dirty_months(session: AsyncSession) -> list[str]:
    rows = await session.scalars(
        select(CockpitMonth.month).where(CockpitMonth.dirty.is_(True)).order_by(CockpitMonth.month.desc())
    )
    return list(rows)


# --- computation ---------------------------------------------------------------------------------


_tables_seen: set[str] = set()


async def has_table(session: AsyncSession, name: str) -> bool:
    """Whether ``name`` exists (cached once found: tables do not disappear under a running app)."""
    key = f"{session.get_bind().engine.url}:{name}"
    if key in _tables_seen:
        return True
    found = bool(await session.run_sync(lambda s: inspect(s.connection()).has_table(name)))
    if found:
        _tables_seen.add(key)
    return found


async def month_rows(
    session: AsyncSession, month: str, names: Sequence[str] | None = None
) -> dict[tuple[int, str, str], float]:
    """The rollup rows of one month, computed from the raw rows (read-only)."""
    start, end = bounds(month)
    facts = await core_facts.collect(session, start, end, SOURCES if names is None else names)
    units = {
        uid: (station_id, category)
        for uid, station_id, category in await session.execute(
            select(Unit.id, Unit.station_id, Unit.category_code)
        )
    }
    sums: dict[tuple[int, str, str], float] = defaultdict(float)
    for fact in facts:
        unit = units.get(fact.unit_id) if fact.unit_id is not None else None
        station = fact.station_id if fact.station_id is not None else (unit[0] if unit else None)
        key = (station or NO_STATION, unit[1] if unit else NO_UNIT, fact.metric)
        sums[key] += float(fact.value)
    if await has_table(session, "safety_index_scores"):
        grades = await session.execute(
            select(Unit.station_id, Unit.category_code, index_scores.c.grade, func.count())
            .join(Unit, Unit.id == index_scores.c.unit_id)
            .where(index_scores.c.month == month)
            .group_by(Unit.station_id, Unit.category_code, index_scores.c.grade)
        )
        for station_id, category, grade, n in grades:
            sums[(station_id, category, GRADE_METRIC.format(grade))] += float(n)
    totals: dict[tuple[int, str, str], float] = defaultdict(float)
    for (_, category, metric), value in sums.items():
        totals[(ALL_STATIONS, category, metric)] += value
    sums.update(totals)
    return {k: v for k, v in sums.items() if v}


async def _read_rows(
    session: AsyncSession, month: str, names: Sequence[str] | None, apart: bool
) -> dict[tuple[int, str, str], float]:
    bind = session.bind
    if apart and isinstance(bind, AsyncEngine) and bind.dialect.name == "sqlite":
        async with AsyncSession(bind.execution_options(isolation_level="AUTOCOMMIT")) as reader:
            return await month_rows(reader, month, names)
    return await month_rows(session, month, names)


async def refresh_month(
    session: AsyncSession,
    month: str,
    names: Sequence[str] | None = None,
    *,
    now: dt.datetime | None = None,
    commit: bool = True,
    read_apart: bool | None = None,
    only_if_dirty: bool = False,
) -> int:
    """Replace one month's rollup rows from the raw rows, and clear its dirty mark unless an event
    marked it again while this ran. Commits unless told not to. Returns the number of rows written.

    ``read_apart`` (default: when committing) reads the facts outside the write transaction: on
    SQLite a write transaction holds the database's only write lock, and incident intake must not
    wait for seconds of aggregation. The seed passes False: it must read its own uncommitted rows.
    """
    started = now or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        # Every worker runs the refresh job: without this, two refreshing the same month both
        # delete the old rows and the second insert hits pk_cockpit_rollups (found by the soak).
        await session.execute(select(func.pg_advisory_xact_lock(REFRESH_LOCK, int(month.replace("-", "")))))
    if only_if_dirty and not await session.scalar(
        select(CockpitMonth.dirty).where(CockpitMonth.month == month)
    ):
        # Another worker refreshed it while this one waited for the lock: the same rows again
        # would cost seconds of aggregation at city scale for nothing.
        await session.rollback()
        return 0
    rows = await _read_rows(session, month, names, commit if read_apart is None else read_apart)
    await session.execute(delete(Rollup).where(Rollup.month == month))
    if rows:
        await session.execute(
            insert(Rollup),
            [
                {"month": month, "station_id": s, "category": c, "metric": m, "value": v}
                for (s, c, m), v in rows.items()
            ],
        )
    await session.execute(  # make sure the month's row exists, without touching a newer mark
        dialect_insert(session)(CockpitMonth)
        .values(month=month, dirty=True, dirty_since=started, rows=0)
        .on_conflict_do_nothing(index_elements=[CockpitMonth.month])
    )
    await session.execute(
        update(CockpitMonth)
        .where(CockpitMonth.month == month, CockpitMonth.dirty_since <= started)
        .values(dirty=False, computed_at=utcnow(), rows=len(rows))
    )
    if commit:
        await session.commit()
    return len(rows)


async def refresh_dirty(
    session: AsyncSession, names: Sequence[str] | None = None, *, limit: int = MAX_PER_RUN
) -> int:
    """Recompute the dirty months, newest first, at most ``limit`` of them. Commits each."""
    months = (await dirty_months(session))[:limit]
    await session.rollback()  # end the read so each month gets its own write transaction
    for month in months:
        await refresh_month(session, month, names, only_if_dirty=True)
    return len(months)


async def rebuild(
    session: AsyncSession, first: str, last: str, names: Sequence[str] | None = None, *, commit: bool = True
) -> dict[str, int]:
    """Recompute every month in ``[first, last]`` (CLI, demo seed)."""
    return {
        month: await refresh_month(session, month, names, commit=commit)
        for month in months_between(first, last)
    }


async def sweep(session: AsyncSession, now: dt.datetime) -> int:
    """Mark the current month and the ``SWEEP_MONTHS`` before it dirty. Commits."""
    current = month_of(now)
    months = [shift(current, -i) for i in range(SWEEP_MONTHS + 1)]
    await mark_dirty(session, months, now=now)
    await session.commit()
    return len(months)
