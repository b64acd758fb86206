"""Aluminium-ash mass balance (铝灰物料平衡) per smelter and calendar month.

For a smelter and a month (Asia/Shanghai), in tonnes of ash:

- expected    = Σ effective production aluminium_t × process coefficient_kg_per_t / 1000
- shipped     = Σ received_t of the effective receipt of each effective manifest shipped in the month
- unconfirmed = Σ shipped_t of the effective manifests shipped in the month without a receipt
- stock_start = the last effective count before the month starts, stock_end the last one before it ends
- delta_stock = (stock_end or 0) − (stock_start or 0) when stock_end exists, else 0
- accounted   = shipped + delta_stock; unaccounted = expected − accounted (positive: ash missing)
- tolerance   = max(expected × tolerance_pct / 100, tolerance_min_t)

Status: ``no_data`` without production and manifests; otherwise ``green`` when |unaccounted| ≤
tolerance, ``amber`` up to twice that, ``red`` beyond. Tonnes are rounded to 3 decimals and the
status is decided on the rounded figures, so the board never shows a colour its numbers deny.

"Effective" rows are those no other row supersedes (the ledger is append-only). A receipt belongs
to a manifest by (unit_id, manifest_no); were a manifest confirmed twice without a correction,
the latest receipt counts. Every component is one set-based query grouped by unit (and month, when
several months are asked at once), portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Subquery, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from eqian.environment.config import EnvConfig, load_config
from eqian.environment.models import Manifest, ManifestReceipt, ProductionReport, SmelterProcess, StockCount
from eqian.environment.schemas import BalanceRow, BalanceStatus
from eqian.organizations.models import Unit

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")

L = TypeVar("L", ProductionReport, StockCount, Manifest, ManifestReceipt)


# --- periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    """A calendar month in Asia/Shanghai: its local dates and its bounds in UTC (end exclusive)."""

    period: str
    first_day: dt.date
    next_first_day: dt.date
    start: dt.datetime
    end: dt.datetime


def month(period: str) -> Month:
    """Bounds of ``period`` ("YYYY-MM"); ``ValueError`` for anything else."""
    match = _PERIOD.fullmatch(period) if isinstance(period, str) else None
    if match is None:
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    year, mon = int(match.group(1)), int(match.group(2))
    if not 1900 <= year <= 9998:
        # Outside this the UTC conversion of the bounds overflows; no ledger lives there anyway.
        raise ValueError(f"period must be YYYY-MM between 1900 and 9998, got {period!r}")
    first = dt.date(year, mon, 1)
    following = dt.date(year + mon // 12, mon % 12 + 1, 1)
    start = dt.datetime.combine(first, dt.time(), LOCAL_TZ).astimezone(dt.UTC)
    end = dt.datetime.combine(following, dt.time(), LOCAL_TZ).astimezone(dt.UTC)
    return Month(period, first, following, start, end)


def period_of(moment: dt.datetime) -> str:
    """The local month ("YYYY-MM") an aware datetime falls in."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused: pass a timezone-aware one")
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m")


def shift_period(period: str, months: int) -> str:
    """``period`` moved by ``months`` (negative: back)."""
    first = month(period).first_day
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# --- building blocks ----------------------------------------------------------------------------


@cache
def _newer(model: type[L]) -> Any:
    return aliased(model, name=f"newer_{model.__tablename__}")


def effective(model: type[L]) -> ColumnElement[bool]:
    """Rows of ``model`` that no other row supersedes."""
    newer = _newer(model)
    return ~exists().where(newer.supersedes_id == model.id)


def confirmed_receipts(unit_ids: Sequence[int] | None = None) -> Subquery:
    """The effective receipt of each (unit_id, manifest_no).

    Columns: id, unit_id, manifest_no, received_t, received_at.
    """
    R = ManifestReceipt
    latest = select(func.max(R.id)).where(effective(R)).group_by(R.unit_id, R.manifest_no)
    if unit_ids is not None:
        latest = latest.where(R.unit_id.in_(unit_ids))
    return (
        select(R.id, R.unit_id, R.manifest_no, R.received_t, R.received_at)
        .where(R.id.in_(latest))
        .subquery("receipt")
    )


def _month_of(column: Any, months: Sequence[Month], *, dates: bool = False) -> ColumnElement[str]:
    """The period (of ``months``) a date or datetime column falls in, NULL outside them."""
    if dates:
        whens = [((column >= m.first_day) & (column < m.next_first_day), m.period) for m in months]
    else:
        whens = [((column >= m.start) & (column < m.end), m.period) for m in months]
    return case(*whens)


async def _smelters(session: AsyncSession, unit_ids: Select[Any] | Collection[int]) -> list[tuple[int, str]]:
    has_process = exists().where(SmelterProcess.unit_id == Unit.id)
    query = select(Unit.id, Unit.name).where(has_process)
    if isinstance(unit_ids, Select):
        query = query.where(Unit.id.in_(unit_ids))
    else:
        ids = sorted(set(unit_ids))
        if not ids:
            return []
        query = query.where(Unit.id.in_(ids))
    rows = [(int(uid), str(name)) for uid, name in (await session.execute(query)).all()]
    # Sorted here, not in SQL: collations differ between databases, the board must not.
    return sorted(rows, key=lambda r: (r[1], r[0]))


@dataclass
class _Production:
    rows: int = 0
    aluminium_t: float = 0.0
    ash_kg: float = 0.0


async def _production(
    session: AsyncSession, ids: list[int], months: Sequence[Month]
) -> dict[tuple[int, str], _Production]:
    P = ProductionReport
    # The month is computed in a subquery and grouped on outside: PostgreSQL would not see two
    # copies of a CASE with bound parameters as the same expression.
    rows = (
        select(
            P.unit_id,
            _month_of(P.produced_on, months, dates=True).label("period"),
            P.aluminium_t,
            (P.aluminium_t * SmelterProcess.coefficient_kg_per_t).label("ash_kg"),
        )
        .join(SmelterProcess, SmelterProcess.id == P.process_id)
        .where(
            effective(P),
            P.unit_id.in_(ids),
            P.produced_on >= min(m.first_day for m in months),
            P.produced_on < max(m.next_first_day for m in months),
        )
        .subquery()
    )
    query = (
        select(
            rows.c.unit_id, rows.c.period, func.count(), func.sum(rows.c.aluminium_t), func.sum(rows.c.ash_kg)
        )
        .where(rows.c.period.is_not(None))
        .group_by(rows.c.unit_id, rows.c.period)
    )
    return {
        (int(uid), str(period)): _Production(int(n), float(al or 0), float(kg or 0))
        for uid, period, n, al, kg in (await session.execute(query)).all()
    }


@dataclass
class _Shipments:
    manifests: int = 0
    received_t: float = 0.0
    unconfirmed_t: float = 0.0


async def _shipments(
    session: AsyncSession, ids: list[int], months: Sequence[Month]
) -> dict[tuple[int, str], _Shipments]:
    M = Manifest
    rc = confirmed_receipts(ids)
    rows = (
        select(
            M.unit_id,
            _month_of(M.shipped_at, months).label("period"),
            M.shipped_t,
            rc.c.id.label("receipt_id"),
            rc.c.received_t,
        )
        .outerjoin(rc, (rc.c.unit_id == M.unit_id) & (rc.c.manifest_no == M.manifest_no))
        .where(
            effective(M),
            M.unit_id.in_(ids),
            M.shipped_at >= min(m.start for m in months),
            M.shipped_at < max(m.end for m in months),
        )
        .subquery()
    )
    query = (
        select(
            rows.c.unit_id,
            rows.c.period,
            func.count(),
            func.sum(rows.c.received_t),  # NULL (no receipt) is skipped by SUM
            func.sum(rows.c.shipped_t).filter(rows.c.receipt_id.is_(None)),
        )
        .where(rows.c.period.is_not(None))
        .group_by(rows.c.unit_id, rows.c.period)
    )
    return {
        (int(uid), str(period)): _Shipments(int(n), float(received or 0), float(unconfirmed or 0))
        for uid, period, n, received, unconfirmed in (await session.execute(query)).all()
    }


async def stock_counts_before(
    session: AsyncSession, ids: Sequence[int], bounds: Collection[dt.datetime]
) -> dict[tuple[int, dt.datetime], tuple[int, float]]:
    """Per unit and bound, the (id, ash_t) of the last effective stock count strictly before it.

    One query for all bounds: counts are bucketed between consecutive bounds, the last of each
    bucket kept, and the last before a bound is the last of the latest non-empty bucket before it.
    """
    S = StockCount
    ordered = sorted(set(bounds))
    if not ids or not ordered:
        return {}
    bucket = case(*((S.counted_at < bound, i) for i, bound in enumerate(ordered)))
    counts = (
        select(S.unit_id, S.id, S.ash_t, S.counted_at, bucket.label("bucket"))
        .where(effective(S), S.unit_id.in_(ids), S.counted_at < ordered[-1])
        .subquery()
    )
    rank = func.row_number().over(
        partition_by=(counts.c.unit_id, counts.c.bucket),
        order_by=(counts.c.counted_at.desc(), counts.c.id.desc()),
    )
    ranked = select(counts, rank.label("rank")).subquery()
    query = select(ranked.c.unit_id, ranked.c.bucket, ranked.c.id, ranked.c.ash_t).where(ranked.c.rank == 1)
    last_in: dict[int, dict[int, tuple[int, float]]] = defaultdict(dict)
    for uid, index, sid, ash in (await session.execute(query)).all():
        last_in[int(uid)][int(index)] = (int(sid), float(ash))
    found: dict[tuple[int, dt.datetime], tuple[int, float]] = {}
    for uid, buckets in last_in.items():
        latest: tuple[int, float] | None = None
        for i, bound in enumerate(ordered):
            latest = buckets.get(i, latest)
            if latest is not None:
                found[uid, bound] = latest
    return found


async def last_stock_counts(
    session: AsyncSession, ids: Sequence[int], before: dt.datetime
) -> dict[int, tuple[int, float]]:
    """Per unit, the (id, ash_t) of the last effective stock count strictly before ``before``."""
    return {uid: entry for (uid, _), entry in (await stock_counts_before(session, ids, [before])).items()}


def _t(value: float) -> float:
    return round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0


def classify(unaccounted_t: float, tolerance_t: float) -> BalanceStatus:
    off = abs(_t(unaccounted_t))
    tol = _t(tolerance_t)
    if off <= tol:
        return "green"
    return "amber" if off <= _t(2 * tolerance_t) else "red"


# --- the balance --------------------------------------------------------------------------------


async def compute_balances(
    session: AsyncSession,
    unit_ids: Select[Any] | Collection[int],
    periods: Collection[str],
    *,
    config: EnvConfig | None = None,
) -> dict[str, list[BalanceRow]]:
    """``compute_balance`` for several months at once (same number of queries as for one)."""
    cfg = config or load_config()
    months = [month(p) for p in sorted(set(periods))]
    if not months:
        return {}
    smelters = await _smelters(session, unit_ids)
    if not smelters:
        return {m.period: [] for m in months}
    ids = [uid for uid, _ in smelters]
    production = await _production(session, ids, months)
    shipments = await _shipments(session, ids, months)
    stock = await stock_counts_before(session, ids, [b for m in months for b in (m.start, m.end)])

    by_period: dict[str, list[BalanceRow]] = {}
    for m in months:
        rows = by_period[m.period] = []
        for uid, name in smelters:
            made = production.get((uid, m.period), _Production())
            sent = shipments.get((uid, m.period), _Shipments())
            start = stock[uid, m.start][1] if (uid, m.start) in stock else None
            end = stock[uid, m.end][1] if (uid, m.end) in stock else None
            expected = made.ash_kg / 1000
            delta = (end - (start or 0.0)) if end is not None else 0.0
            accounted = sent.received_t + delta
            unaccounted = expected - accounted
            tolerance = max(expected * cfg.tolerance_pct / 100, cfg.tolerance_min_t)
            status: BalanceStatus = (
                "no_data" if made.rows == 0 and sent.manifests == 0 else classify(unaccounted, tolerance)
            )
            rows.append(
                BalanceRow(
                    unit_id=uid,
                    unit_name=name,
                    period=m.period,
                    aluminium_t=_t(made.aluminium_t),
                    expected_t=_t(expected),
                    shipped_t=_t(sent.received_t),
                    unconfirmed_t=_t(sent.unconfirmed_t),
                    stock_start_t=None if start is None else _t(start),
                    stock_end_t=None if end is None else _t(end),
                    delta_stock_t=_t(delta),
                    accounted_t=_t(accounted),
                    unaccounted_t=_t(unaccounted),
                    tolerance_t=_t(tolerance),
                    status=status,
                )
            )
    return by_period


async def compute_balance(
    session: AsyncSession,
    unit_ids: Select[Any] | Collection[int],
    period: str,
    *,
    config: EnvConfig | None = None,
) -> list[BalanceRow]:
    """One row per smelter (a unit with at least one process) among ``unit_ids``, sorted by name.

    ``unit_ids`` is a collection of ids or a one-column SELECT of them (e.g. a scope's
    ``visible_unit_ids``).
    """
    return (await compute_balances(session, unit_ids, [period], config=config))[period]


async def balance_series(
    session: AsyncSession, unit_id: int, months: list[str], *, config: EnvConfig | None = None
) -> list[BalanceRow]:
    """A smelter's balance month by month, in the order of ``months`` (empty if it is no smelter)."""
    by_period = await compute_balances(session, [unit_id], months, config=config)
    return [row for period in months for row in by_period[period]]


async def entry_ids(
    session: AsyncSession, unit_ids: Collection[int], period: str
) -> dict[int, dict[str, list[int]]]:
    """The ledger entries behind each unit's balance of ``period``, ids ascending.

    ``production``: effective reports of the month; ``manifest``: effective manifests shipped in
    it; ``receipt``: their effective receipts; ``stock``: the opening count and the effective
    counts within the month.
    """
    ids = sorted(set(unit_ids))
    found: dict[int, dict[str, list[int]]] = {
        uid: {"production": [], "manifest": [], "receipt": [], "stock": []} for uid in ids
    }
    if not ids:
        return found
    m = month(period)
    P, M, S = ProductionReport, Manifest, StockCount
    rc = confirmed_receipts(ids)
    queries: dict[str, Select[int, int]] = {
        "production": select(P.unit_id, P.id).where(
            effective(P), P.unit_id.in_(ids), P.produced_on >= m.first_day, P.produced_on < m.next_first_day
        ),
        "manifest": select(M.unit_id, M.id).where(
            effective(M), M.unit_id.in_(ids), M.shipped_at >= m.start, M.shipped_at < m.end
        ),
        "receipt": select(M.unit_id, rc.c.id)
        .join(rc, (rc.c.unit_id == M.unit_id) & (rc.c.manifest_no == M.manifest_no))
        .where(effective(M), M.unit_id.in_(ids), M.shipped_at >= m.start, M.shipped_at < m.end),
        "stock": select(S.unit_id, S.id).where(
            effective(S), S.unit_id.in_(ids), S.counted_at >= m.start, S.counted_at < m.end
        ),
    }
    collected: dict[str, defaultdict[int, set[int]]] = {kind: defaultdict(set) for kind in queries}
    for kind, query in queries.items():
        for uid, entry_id in (await session.execute(query)).all():
            collected[kind][int(uid)].add(int(entry_id))
    for uid, (stock_id, _) in (await last_stock_counts(session, ids, m.start)).items():
        collected["stock"][uid].add(stock_id)
    for kind, by_unit in collected.items():
        for uid, entries in by_unit.items():
            found[uid][kind] = sorted(entries)
    return found
