"""The aluminium-ash checks: findings become ``EnvAlert`` rows, each explained by its evidence.

``run_checks`` looks at the window of the 12 full months before ``now``'s month plus that month
(Asia/Shanghai) and finds:

- ``unaccounted_ash`` (red): a smelter's month is red with ash missing (unaccounted above twice
  the tolerance); an amber month, or a surplus, is no alert.
- ``manifest_unconfirmed`` (amber; red once overdue by as long again): no receipt
  ``confirm_within_hours`` after shipping.
- ``weight_shortfall`` (amber; red beyond twice the tolerance): received below shipped by more than
  ``weight_tolerance_pct`` % of the shipped weight.
- ``facility_over_licence`` (red): a facility received more in a calendar year (by receipt time)
  than its licence; judged only when every unit is checked.
- ``shipping_without_production`` (red): manifests in the last ``production_lookback_days`` and no
  production (> 0 t) reported in them.
- ``production_without_shipments`` (amber): production on at least 7 days of the last
  ``max_days_without_shipment`` and not one manifest in them.

Every finding has a stable fingerprint. A run creates the alerts it has not seen, refreshes the
open ones it finds again, reopens resolved ones that reappear, and resolves the open alerts of the
checked scope it no longer finds (those of months before the window are left as they are: they
were not checked again). Each created or reopened alert queues one ``environment.alert`` outbox
event. Nothing is committed here: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from sqlalchemy import ColumnElement, Select, distinct, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import outbox
from eqian.core.db import dialect_insert
from eqian.environment.balance import (
    LOCAL_TZ,
    compute_balances,
    confirmed_receipts,
    effective,
    entry_ids,
    month,
    period_of,
    shift_period,
)
from eqian.environment.config import EnvConfig, load_config
from eqian.environment.models import (
    DisposalFacility,
    EnvAlert,
    Manifest,
    ProductionReport,
    SmelterProcess,
)
from eqian.environment.schemas import AlertKind
from eqian.organizations.models import Unit

ALERT_TOPIC = "environment.alert"
HISTORY_MONTHS = 12  # full months before the current one
MIN_PRODUCTION_DAYS = 7  # production_without_shipments needs this many production days in its window
EVIDENCE_ID_CAP = 200
KINDS: tuple[str, ...] = get_args(AlertKind)
_ALWAYS_RECHECKED = {"shipping_without_production", "production_without_shipments"}
_MESSAGE_MAX = 300


@dataclass
class CheckReport:
    created: int  # new alerts, and resolved ones that reappeared (each queued one outbox event)
    resolved: int  # open alerts of the checked scope no longer found
    still_open: int  # open alerts found again (evidence refreshed, no event)
    by_kind: dict[str, int] = field(default_factory=dict)  # findings of this run by kind


@dataclass
class _Finding:
    fingerprint: str
    kind: str
    severity: str
    period: str
    message: str
    evidence: dict[str, Any]
    unit_id: int | None = None
    facility_id: int | None = None


@dataclass(frozen=True)
class _Window:
    now: dt.datetime
    months: list[str]  # oldest first, the current month last
    start: dt.datetime  # UTC start of the oldest month


def _cap(ids: Collection[int]) -> list[int]:
    return sorted(ids)[:EVIDENCE_ID_CAP]


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _t(value: float) -> float:
    return round(value, 3) + 0.0


def _unit_clause(column: Any, unit_ids: Sequence[int] | None) -> ColumnElement[bool]:
    return true() if unit_ids is None else column.in_(unit_ids)


# --- the checks ---------------------------------------------------------------------------------


async def _unaccounted_ash(
    session: AsyncSession, unit_ids: Sequence[int] | None, window: _Window, cfg: EnvConfig
) -> list[_Finding]:
    scope: Select[Any] | Sequence[int] = select(Unit.id) if unit_ids is None else unit_ids
    findings = []
    balances = await compute_balances(session, scope, window.months, config=cfg)
    for period in window.months:
        red = [row for row in balances[period] if row.status == "red" and row.unaccounted_t > 0]
        if not red:
            continue
        entries = await entry_ids(session, [row.unit_id for row in red], period)
        for row in red:
            ids = entries[row.unit_id]
            evidence: dict[str, Any] = row.model_dump(mode="json")
            for kind, kind_ids in ids.items():
                evidence[f"{kind}_ids"] = _cap(kind_ids)
            evidence["ids_truncated"] = any(len(v) > EVIDENCE_ID_CAP for v in ids.values())
            extra = f"，另有未确认联单 {row.unconfirmed_t:.1f} 吨" if row.unconfirmed_t else ""
            findings.append(
                _Finding(
                    fingerprint=f"unaccounted_ash:{row.unit_id}:{period}",
                    kind="unaccounted_ash",
                    severity="red",
                    period=period,
                    unit_id=row.unit_id,
                    message=(
                        f"{row.unit_name} {period} 铝灰去向不明 {row.unaccounted_t:.1f} 吨"
                        f"（产生 {row.expected_t:.1f} 吨，已处置 {row.shipped_t:.1f} 吨，"
                        f"库存变化 {row.delta_stock_t:+.1f} 吨，容差 {row.tolerance_t:.1f} 吨{extra}）"
                    ),
                    evidence=evidence,
                )
            )
    return findings


async def _manifests(
    session: AsyncSession, unit_ids: Sequence[int] | None, window: _Window, cfg: EnvConfig
) -> list[_Finding]:
    """``manifest_unconfirmed`` and ``weight_shortfall`` over the manifests shipped in the window."""
    M, F = Manifest, DisposalFacility
    rc = confirmed_receipts(unit_ids)
    query = (
        select(
            M.id,
            M.unit_id,
            Unit.name,
            M.manifest_no,
            M.shipped_at,
            M.shipped_t,
            M.vehicle_plate,
            F.id,
            F.name,
            rc.c.id,
            rc.c.received_t,
            rc.c.received_at,
        )
        .join(Unit, Unit.id == M.unit_id)
        .join(F, F.id == M.facility_id)
        .outerjoin(rc, (rc.c.unit_id == M.unit_id) & (rc.c.manifest_no == M.manifest_no))
        .where(
            effective(M),
            _unit_clause(M.unit_id, unit_ids),
            M.shipped_at >= window.start,
            M.shipped_at <= window.now,
            # unconfirmed and overdue, or confirmed with any shortfall (the tolerance is applied below)
            (rc.c.id.is_(None) & (M.shipped_at < window.now - dt.timedelta(hours=cfg.confirm_within_hours)))
            | (rc.c.received_t < M.shipped_t),
        )
        .order_by(M.id)
    )
    findings = []
    for row in (await session.execute(query)).all():
        (mid, uid, name, no, shipped_at, shipped_t, plate, fid, fname, rid, received_t, received_at) = row
        base = {
            "manifest_id": mid,
            "manifest_no": no,
            "shipped_at": shipped_at.isoformat(),
            "shipped_t": _t(shipped_t),
            "vehicle_plate": plate,
            "facility_id": fid,
            "facility_name": fname,
        }
        if rid is None:
            waited = (window.now - shipped_at).total_seconds() / 3600
            overdue = waited - cfg.confirm_within_hours
            findings.append(
                _Finding(
                    fingerprint=f"manifest_unconfirmed:{uid}:{no}",
                    kind="manifest_unconfirmed",
                    severity="red" if overdue > cfg.confirm_within_hours else "amber",
                    period=period_of(shipped_at),
                    unit_id=uid,
                    message=(
                        f"{name} 联单 {no}（{_local(shipped_at)} 发出 {shipped_t:.2f} 吨，运往 {fname}）"
                        f"超过 {cfg.confirm_within_hours:g} 小时未经接收单位确认，已超时 {overdue:.1f} 小时"
                    ),
                    evidence={
                        **base,
                        "confirm_within_hours": cfg.confirm_within_hours,
                        "hours_overdue": round(overdue, 1),
                    },
                )
            )
            continue
        shortfall = _t(shipped_t - received_t)
        allowed = _t(shipped_t * cfg.weight_tolerance_pct / 100)
        if shortfall <= allowed:
            continue
        pct = shortfall / shipped_t * 100
        findings.append(
            _Finding(
                fingerprint=f"weight_shortfall:{uid}:{no}",
                kind="weight_shortfall",
                severity="red" if shortfall > _t(2 * shipped_t * cfg.weight_tolerance_pct / 100) else "amber",
                period=period_of(shipped_at),
                unit_id=uid,
                message=(
                    f"{name} 联单 {no} 发出 {shipped_t:.2f} 吨，{fname} 仅接收 {received_t:.2f} 吨，"
                    f"短少 {shortfall:.2f} 吨（{pct:.1f}%，容差 {cfg.weight_tolerance_pct:g}%）"
                ),
                evidence={
                    **base,
                    "receipt_id": rid,
                    "received_at": received_at.isoformat(),
                    "received_t": _t(received_t),
                    "shortfall_t": shortfall,
                    "shortfall_pct": round(pct, 2),
                    "weight_tolerance_pct": cfg.weight_tolerance_pct,
                },
            )
        )
    return findings


async def _facilities(session: AsyncSession, window: _Window) -> list[_Finding]:
    """``facility_over_licence`` for each calendar year (Asia/Shanghai, by receipt time) in the window."""
    M, F = Manifest, DisposalFacility
    findings = []
    first_year = month(window.months[0]).first_day.year
    for year in range(first_year, month(window.months[-1]).first_day.year + 1):
        start, end = month(f"{year:04d}-01").start, month(f"{year + 1:04d}-01").start
        rc = confirmed_receipts()
        received = (
            select(M.facility_id, M.id.label("manifest_id"), rc.c.received_t)
            .join(rc, (rc.c.unit_id == M.unit_id) & (rc.c.manifest_no == M.manifest_no))
            .where(effective(M), rc.c.received_at >= start, rc.c.received_at < end)
            .subquery()
        )
        totals = (
            select(F.id, F.name, F.licensed_capacity_t_per_year, func.sum(received.c.received_t))
            .join(received, received.c.facility_id == F.id)
            .group_by(F.id, F.name, F.licensed_capacity_t_per_year)
            .having(func.sum(received.c.received_t) > F.licensed_capacity_t_per_year)
        )
        over = [
            (fid, fname, cap, _t(total))
            for fid, fname, cap, total in (await session.execute(totals)).all()
            if _t(total) > cap
        ]
        if not over:
            continue
        manifest_ids: defaultdict[int, list[int]] = defaultdict(list)
        listing = select(received.c.facility_id, received.c.manifest_id).where(
            received.c.facility_id.in_([fid for fid, *_ in over])
        )
        for fid, mid in (await session.execute(listing)).all():
            manifest_ids[fid].append(mid)
        for fid, fname, cap, total in over:
            findings.append(
                _Finding(
                    fingerprint=f"facility_over_licence:{fid}:{year}",
                    kind="facility_over_licence",
                    severity="red",
                    period=f"{year:04d}",
                    facility_id=fid,
                    message=(
                        f"{fname} {year} 年接收铝灰 {total:.1f} 吨，超过许可处置能力 {cap:.1f} 吨/年"
                        f"（超出 {total - cap:.1f} 吨）"
                    ),
                    evidence={
                        "facility_id": fid,
                        "facility_name": fname,
                        "year": year,
                        "received_t": total,
                        "licensed_capacity_t_per_year": cap,
                        "excess_t": _t(total - cap),
                        "manifest_count": len(manifest_ids[fid]),
                        "manifest_ids": _cap(manifest_ids[fid]),
                    },
                )
            )
    return findings


async def _activity(
    session: AsyncSession, unit_ids: Sequence[int] | None, window: _Window, cfg: EnvConfig
) -> list[_Finding]:
    """``shipping_without_production`` and ``production_without_shipments``."""
    M, P = Manifest, ProductionReport
    now = window.now
    findings = []

    async def shipped(since: dt.datetime) -> dict[int, tuple[str, int, float, list[int]]]:
        query = (
            select(M.unit_id, Unit.name, M.id, M.shipped_t)
            .join(Unit, Unit.id == M.unit_id)
            .where(
                effective(M), _unit_clause(M.unit_id, unit_ids), M.shipped_at >= since, M.shipped_at <= now
            )
            .order_by(M.id)
        )
        out: dict[int, tuple[str, int, float, list[int]]] = {}
        for uid, name, mid, tonnes in (await session.execute(query)).all():
            _, n, total, ids = out.get(uid, (name, 0, 0.0, []))
            out[uid] = (name, n + 1, total + tonnes, [*ids, mid])
        return out

    def produced(since: dt.datetime) -> Select[int, str, int, float, float]:
        return (
            select(
                P.unit_id,
                Unit.name,
                func.count(distinct(P.produced_on)),
                func.sum(P.aluminium_t),
                func.sum(P.aluminium_t * SmelterProcess.coefficient_kg_per_t),
            )
            .join(Unit, Unit.id == P.unit_id)
            .join(SmelterProcess, SmelterProcess.id == P.process_id)
            .where(
                effective(P),
                _unit_clause(P.unit_id, unit_ids),
                P.aluminium_t > 0,
                P.produced_on >= since.astimezone(LOCAL_TZ).date(),
                P.produced_on <= now.astimezone(LOCAL_TZ).date(),
            )
            .group_by(P.unit_id, Unit.name)
        )

    # Shipping while no production was reported in the preceding window.
    days = cfg.production_lookback_days
    since = now - dt.timedelta(days=days)
    shipping = await shipped(since)
    producing = {int(uid) for uid, *_ in (await session.execute(produced(since))).all()}
    for uid, (name, n, total, ids) in sorted(shipping.items()):
        if uid in producing:
            continue
        findings.append(
            _Finding(
                fingerprint=f"shipping_without_production:{uid}",
                kind="shipping_without_production",
                severity="red",
                period=period_of(now),
                unit_id=uid,
                message=f"{name} 近 {days} 天无生产记录，却转移铝灰 {n} 车 {total:.1f} 吨",
                evidence={
                    "window_start": since.astimezone(dt.UTC).isoformat(),
                    "window_end": now.astimezone(dt.UTC).isoformat(),
                    "lookback_days": days,
                    "manifest_count": n,
                    "shipped_t": _t(total),
                    "manifest_ids": _cap(ids),
                },
            )
        )

    # Production but no shipment for too long.
    days = cfg.max_days_without_shipment
    since = now - dt.timedelta(days=days)
    shipping = await shipped(since)
    candidates = [
        (int(uid), str(name), int(n_days), float(al), float(kg) / 1000)
        for uid, name, n_days, al, kg in (await session.execute(produced(since))).all()
        if int(uid) not in shipping and n_days >= MIN_PRODUCTION_DAYS
    ]
    if candidates:
        last = select(M.unit_id, func.max(M.shipped_at)).where(
            effective(M), M.unit_id.in_([c[0] for c in candidates]), M.shipped_at <= now
        )
        last_shipped = {int(uid): at for uid, at in (await session.execute(last.group_by(M.unit_id))).all()}
        reports = select(P.unit_id, P.id).where(
            effective(P),
            P.unit_id.in_([c[0] for c in candidates]),
            P.aluminium_t > 0,
            P.produced_on >= since.astimezone(LOCAL_TZ).date(),
            P.produced_on <= now.astimezone(LOCAL_TZ).date(),
        )
        production_ids: defaultdict[int, list[int]] = defaultdict(list)
        for uid, pid in (await session.execute(reports)).all():
            production_ids[int(uid)].append(int(pid))
        for uid, name, n_days, al, ash in sorted(candidates):
            previous = last_shipped.get(uid)
            findings.append(
                _Finding(
                    fingerprint=f"production_without_shipments:{uid}",
                    kind="production_without_shipments",
                    severity="amber",
                    period=period_of(now),
                    unit_id=uid,
                    message=(
                        f"{name} 近 {days} 天生产 {n_days} 天（铝 {al:.1f} 吨，应产生铝灰 {ash:.1f} 吨），"
                        "却无一张铝灰转移联单"
                    ),
                    evidence={
                        "window_start": since.astimezone(dt.UTC).isoformat(),
                        "window_end": now.astimezone(dt.UTC).isoformat(),
                        "max_days_without_shipment": days,
                        "production_days": n_days,
                        "aluminium_t": _t(al),
                        "expected_ash_t": _t(ash),
                        "last_shipped_at": previous.isoformat() if previous else None,
                        "production_ids": _cap(production_ids[uid]),
                    },
                )
            )
    return findings


# --- alerts -------------------------------------------------------------------------------------


def _rechecked(alert: EnvAlert, window: _Window) -> bool:
    """Whether this run looked again at what ``alert`` is about (older months are left alone)."""
    if alert.kind in _ALWAYS_RECHECKED:
        return True
    if alert.kind == "facility_over_licence":
        return alert.period >= window.months[0][:4]
    return alert.period >= window.months[0]


async def _alerts(session: AsyncSession, fingerprints: Sequence[str]) -> dict[str, EnvAlert]:
    found: dict[str, EnvAlert] = {}
    for i in range(0, len(fingerprints), 500):
        chunk = select(EnvAlert).where(EnvAlert.fingerprint.in_(fingerprints[i : i + 500]))
        found.update((a.fingerprint, a) for a in await session.scalars(chunk))
    return found


async def _insert_new(
    session: AsyncSession, findings: Sequence[_Finding], now: dt.datetime
) -> dict[str, int]:
    """Insert alerts for new findings; fingerprint → id of those this run inserted.

    ON CONFLICT DO NOTHING: when a concurrent run (another ledger write of the same unit) inserts
    the same fingerprint first, this transaction neither fails nor announces it a second time.
    """
    if not findings:
        return {}
    values = [
        {
            "fingerprint": f.fingerprint,
            "unit_id": f.unit_id,
            "facility_id": f.facility_id,
            "kind": f.kind,
            "severity": f.severity,
            "period": f.period,
            "message": f.message[:_MESSAGE_MAX],
            "evidence": f.evidence,
            "status": "open",
            "created_at": now,
        }
        for f in findings
    ]
    returning = (EnvAlert.fingerprint, EnvAlert.id)
    new = dialect_insert(session)(EnvAlert).on_conflict_do_nothing(index_elements=[EnvAlert.fingerprint])
    result = await session.execute(new.returning(*returning), values)
    return {str(fingerprint): int(alert_id) for fingerprint, alert_id in result.all()}


async def run_checks(
    session: AsyncSession,
    *,
    now: dt.datetime,
    unit_ids: Collection[int] | None = None,
    config: EnvConfig | None = None,
) -> CheckReport:
    """Run every check as of ``now`` over ``unit_ids`` (all units and facilities when None).

    Flushes but does not commit.
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime refused: pass a timezone-aware now")
    cfg = config or load_config()
    scope = None if unit_ids is None else sorted(set(unit_ids))
    current = period_of(now)
    months = [shift_period(current, -back) for back in range(HISTORY_MONTHS, -1, -1)]
    window = _Window(now=now, months=months, start=month(months[0]).start)

    findings = await _unaccounted_ash(session, scope, window, cfg)
    findings += await _manifests(session, scope, window, cfg)
    if scope is None:  # a facility's yearly total spans every unit: only a full run can judge it
        findings += await _facilities(session, window)
    findings += await _activity(session, scope, window, cfg)

    by_fingerprint = {f.fingerprint: f for f in findings}
    prints = sorted(by_fingerprint)
    existing = await _alerts(session, prints)
    inserted = await _insert_new(session, [by_fingerprint[p] for p in prints if p not in existing], now)
    raced = [p for p in prints if p not in existing and p not in inserted]
    if raced:  # created meanwhile by a concurrent run, which also announced them
        existing.update(await _alerts(session, raced))

    report = CheckReport(created=0, resolved=0, still_open=0, by_kind=dict(Counter(f.kind for f in findings)))
    announce: list[tuple[int, _Finding]] = []
    for print_ in prints:
        finding = by_fingerprint[print_]
        if print_ in inserted:
            report.created += 1
            announce.append((inserted[print_], finding))
            continue
        alert = existing[print_]
        if alert.status == "open":
            report.still_open += 1
        else:  # reopened
            report.created += 1
            announce.append((alert.id, finding))
            alert.status = "open"
            alert.resolved_at = None
        alert.unit_id = finding.unit_id
        alert.facility_id = finding.facility_id
        alert.severity = finding.severity
        alert.period = finding.period
        alert.message = finding.message[:_MESSAGE_MAX]
        alert.evidence = finding.evidence

    stale = select(EnvAlert).where(
        EnvAlert.status == "open",
        EnvAlert.kind.in_(KINDS),
        true() if scope is None else EnvAlert.unit_id.in_(scope),
    )
    for alert in await session.scalars(stale):
        if alert.fingerprint not in by_fingerprint and _rechecked(alert, window):
            alert.status = "resolved"
            alert.resolved_at = now
            report.resolved += 1

    if announce:
        unit_ids_ = {f.unit_id for _, f in announce if f.unit_id is not None}
        query = select(Unit.id, Unit.station_id, Unit.joint_zone_id).where(Unit.id.in_(unit_ids_))
        units = {
            uid: (station_id, zone_id) for uid, station_id, zone_id in (await session.execute(query)).all()
        }
        for alert_id, finding in announce:
            station_id, zone_id = units.get(finding.unit_id or 0, (None, None))
            outbox.emit(
                session,
                ALERT_TOPIC,
                {
                    "alert_id": alert_id,
                    "unit_id": finding.unit_id,
                    "facility_id": finding.facility_id,
                    "kind": finding.kind,
                    "station_id": station_id,
                    "zone_id": zone_id,
                },
            )
    await session.flush()
    return report
