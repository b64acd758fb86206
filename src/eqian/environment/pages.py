"""HTML pages of eco-policing (生态警务): the mass-balance board, a smelter's drill-down, the ledger
entry forms, the alert list and the eco map.

They call the same service functions as the JSON API; this module only parses, authorises and
lays out (period arithmetic, the SVG geometry of the trend chart and the map).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, get_args
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import i18n
from eqian.core.errors import AppError, Conflict, NotFound, ValidationFailed
from eqian.core.permissions import Principal
from eqian.environment import schemas, service
from eqian.environment.balance import shift_period
from eqian.environment.config import load_config
from eqian.organizations import service as org_service
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # ASCII digits: \d would also take full-width ones
PERIOD_CHOICES = 24  # months offered by the month selectors
TREND_MONTHS = 6
STATUS_ORDER = {"red": 0, "amber": 1, "green": 2, "no_data": 3}
ALERT_KINDS: tuple[schemas.AlertKind, ...] = get_args(schemas.AlertKind)
LEDGER_KINDS = ("production", "stock", "manifest")
MAP_LIST_SIZE = 20  # latest incidents and patrols listed under the map
MAP_MARKERS = 500  # at most this many of each drawn on it …
MAP_DAYS = 90  # … from this many days back
MAX_ROWS = 500  # the API's largest page; a district has tens of smelters, not hundreds

Period = Annotated[str | None, Query(max_length=7, pattern=PERIOD_PATTERN)]


# --- periods ------------------------------------------------------------------------------------


def current_period() -> str:
    return service.current_period()


def last_full_period() -> str:
    """The default month of the board: the last one whose ledger is complete."""
    return shift_period(service.current_period(), -1)


def period_choices(selected: str) -> list[str]:
    """The last two years (current month first), plus the selected month if it is older."""
    now = current_period()
    choices = [shift_period(now, -i) for i in range(PERIOD_CHOICES)]
    if selected not in choices:
        choices.append(selected)
    return choices


def _opt_int(value: str | None) -> int | None:
    # Empty <select> options arrive as "", which means "no filter", not a bad request.
    return int(value) if value and value.isascii() and value.isdigit() else None


# --- the trend chart ----------------------------------------------------------------------------


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (a readable top for an axis)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = step * 10.0**exp
        if top >= value * (1 - 1e-9):
            return top
    return 10.0 ** (exp + 1)  # pragma: no cover - the loop always returns


def _tick_label(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


def trend_chart(rows: Sequence[schemas.BalanceRow], current: str) -> dict[str, Any]:
    """Geometry of a grouped bar chart: expected vs accounted ash per month, in SVG user units."""
    width, height = 640, 240
    left, right, top, bottom = 52, 632, 20, 206
    top_value = _nice_ceiling(max([max(r.expected_t, r.accounted_t, 0.0) for r in rows] or [0.0]))
    scale = (bottom - top) / top_value

    def bar(x: float, w: float, value: float) -> dict[str, float]:
        h = round(max(value, 0.0) * scale, 1)
        return {"x": round(x, 1), "y": round(bottom - h, 1), "w": round(w, 1), "h": h}

    slot = (right - left) / max(len(rows), 1)
    bar_w = min(slot * 0.34, 36.0)
    groups = []
    for i, r in enumerate(rows):
        centre = left + slot * (i + 0.5)
        groups.append(
            {
                "period": r.period,
                "label": r.period[2:].replace("-", "/"),
                "current": r.period == current,
                "status": r.status,
                "expected_t": r.expected_t,
                "accounted_t": r.accounted_t,
                "expected": bar(centre - bar_w - 1, bar_w, r.expected_t),
                "accounted": bar(centre + 1, bar_w, r.accounted_t),
                "label_x": round(centre, 1),
            }
        )
    ticks = [
        {"y": round(bottom - top_value * f * scale, 1), "label": _tick_label(top_value * f)}
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "base": bottom,
        "ticks": ticks,
        "groups": groups,
    }


# --- the map ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapBox:
    """A fixed lat/lng box, drawn on an equirectangular projection true to scale at its middle."""

    south: float
    north: float
    west: float
    east: float
    width: int = 800

    @property
    def height(self) -> int:
        mid = math.radians((self.south + self.north) / 2)
        return round(self.width * (self.north - self.south) / ((self.east - self.west) * math.cos(mid)))

    def contains(self, lat: float | None, lng: float | None) -> bool:
        return (
            lat is not None
            and lng is not None
            and self.south <= lat <= self.north
            and self.west <= lng <= self.east
        )

    def project(self, lat: float, lng: float) -> tuple[float, float]:
        """SVG (x, y) of a point; points outside the box are clamped onto its edge."""
        lat = min(max(lat, self.south), self.north)
        lng = min(max(lng, self.west), self.east)
        x = (lng - self.west) / (self.east - self.west) * self.width
        y = (self.north - lat) / (self.north - self.south) * self.height
        return round(x, 1), round(y, 1)


# Zhili town (织里镇, about 30.80–30.88 °N, 120.22–120.33 °E) and, north of it on the southern shore
# of Lake Tai, the 乔溇 joint zone (about 30.90–30.93 °N).
ZHILI_MAP = MapBox(south=30.795, north=30.938, west=120.200, east=120.350)
KM_PER_DEGREE_LAT = 111.195
SCALE_KM = 2


def _graticule(box: MapBox, step: float = 0.05) -> list[dict[str, Any]]:
    """Faint parallels and meridians every ``step`` degrees, labelled, as orientation on a map
    that has no tiles."""
    lines: list[dict[str, Any]] = []
    for i in range(math.ceil(box.south / step), math.floor(box.north / step) + 1):
        _, y = box.project(i * step, box.west)
        lines.append(
            {
                "x1": 0,
                "y1": y,
                "x2": box.width,
                "y2": y,
                "tx": 4,
                "ty": round(y - 4, 1),
                "label": f"{i * step:.2f}°N",
            }
        )
    for i in range(math.ceil(box.west / step), math.floor(box.east / step) + 1):
        x, _ = box.project(box.south, i * step)
        lines.append(
            {
                "x1": x,
                "y1": 0,
                "x2": x,
                "y2": box.height,
                "tx": round(x + 4, 1),
                "ty": box.height - 6,
                "label": f"{i * step:.2f}°E",
            }
        )
    return lines


def map_geometry(
    box: MapBox,
    zones: Iterable[schemas.ZoneOut],
    smelters: Iterable[schemas.SmelterOut],
    statuses: Mapping[int, str],
    incidents: Iterable[schemas.EcoIncidentOut],
    patrols: Iterable[schemas.PatrolOut],
) -> dict[str, Any]:
    """Everything the SVG needs: zone outlines clamped to the box, markers for points inside it."""
    omitted = 0

    def markers(items: Iterable[Any]) -> list[dict[str, Any]]:
        nonlocal omitted
        placed = []
        for item in items:
            if not box.contains(item.lat, item.lng):
                omitted += 1
                continue
            x, y = box.project(item.lat, item.lng)
            placed.append({"x": x, "y": y, "item": item})
        return placed

    zone_shapes = []
    for zone in zones:
        if len(zone.polygon) < 3:
            continue
        points = [box.project(p[0], p[1]) for p in zone.polygon]
        top = min(y for _, y in points)
        zone_shapes.append(
            {
                "id": zone.id,
                "code": zone.code,
                "name": zone.name,
                "partner_agency": zone.partner_agency,
                "area_km2": zone.area_km2,
                "points": " ".join(f"{x},{y}" for x, y in points),
                "label_x": round(sum(x for x, _ in points) / len(points), 1),
                # above the outline, where the markers inside it cannot hide the name
                "label_y": round(top - 8 if top > 24 else top + 18, 1),
            }
        )
    placed_smelters = markers(smelters)
    for s in placed_smelters:
        s["status"] = statuses.get(s["item"].unit_id, "no_data")
    scale_w = round(SCALE_KM / KM_PER_DEGREE_LAT * box.height / (box.north - box.south), 1)
    return {
        "width": box.width,
        "height": box.height,
        "graticule": _graticule(box),
        "zones": zone_shapes,
        "smelters": placed_smelters,
        "incidents": markers(incidents),
        "patrols": markers(patrols),
        "omitted": omitted,
        "scale": {
            "x": round(box.width - 16 - scale_w, 1),
            "y": box.height - 28,
            "w": scale_w,
            "km": SCALE_KM,
        },
    }


# --- the ledger details and alert evidence, as label/value pairs ---------------------------------


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return i18n.gettext("是") if value else i18n.gettext("否")
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        return _fmt(moment) if moment.tzinfo else value
    return str(value)


def _detail_labels() -> dict[str, str]:
    return {
        "process_name": i18n.gettext("工艺"),
        "coefficient_kg_per_t": i18n.gettext("产灰系数（kg/t）"),
        "expected_ash_t": i18n.gettext("产灰量（吨）"),
        "manifest_no": i18n.gettext("联单编号"),
        "carrier_name": i18n.gettext("运输单位"),
        "vehicle_plate": i18n.gettext("车牌号"),
        "facility_name": i18n.gettext("接收处置单位"),
    }


def entry_details(entry: schemas.LedgerEntryOut) -> list[tuple[str, str]]:
    labels = _detail_labels()
    return [
        (labels[key], _fmt(value))
        for key, value in entry.detail.items()
        if key in labels and value not in (None, "")
    ]


def _evidence_labels(kind: str) -> dict[str, str]:
    balance = kind == "unaccounted_ash"
    return {
        "aluminium_t": i18n.gettext("铝产量（吨）"),
        "expected_t": i18n.gettext("产生量（吨）"),
        # In a balance, shipped is what facilities confirmed; on a manifest, what left the gate.
        "shipped_t": i18n.gettext("已处置（吨）") if balance else i18n.gettext("转移量（吨）"),
        "unconfirmed_t": i18n.gettext("在途未确认（吨）"),
        "stock_start_t": i18n.gettext("期初库存（吨）"),
        "stock_end_t": i18n.gettext("期末库存（吨）"),
        "delta_stock_t": i18n.gettext("库存变化（吨）"),
        "accounted_t": i18n.gettext("已核算（吨）"),
        "unaccounted_t": i18n.gettext("去向不明（吨）"),
        "tolerance_t": i18n.gettext("容差（吨）"),
        "manifest_no": i18n.gettext("联单编号"),
        "shipped_at": i18n.gettext("出厂时间"),
        "vehicle_plate": i18n.gettext("车牌号"),
        "facility_name": i18n.gettext("接收处置单位"),
        "confirm_within_hours": i18n.gettext("确认时限（小时）"),
        "hours_overdue": i18n.gettext("已超时（小时）"),
        "received_at": i18n.gettext("签收时间"),
        "received_t": i18n.gettext("实收量（吨）"),
        "shortfall_t": i18n.gettext("短少（吨）"),
        "shortfall_pct": i18n.gettext("短少比例（%）"),
        "weight_tolerance_pct": i18n.gettext("重量容差（%）"),
        "year": i18n.gettext("年度"),
        "licensed_capacity_t_per_year": i18n.gettext("许可年处置能力（吨）"),
        "excess_t": i18n.gettext("超出（吨）"),
        "manifest_count": i18n.gettext("联单数"),
        "window_start": i18n.gettext("统计起始"),
        "window_end": i18n.gettext("统计截止"),
        "lookback_days": i18n.gettext("回溯天数"),
        "max_days_without_shipment": i18n.gettext("无转移天数阈值"),
        "production_days": i18n.gettext("生产天数"),
        "expected_ash_t": i18n.gettext("应产生铝灰（吨）"),
        "last_shipped_at": i18n.gettext("最近一次转移"),
    }


# Evidence keys naming ledger entries, and the kind of entry they name.
_ENTRY_KEYS = {
    "production_ids": "production",
    "stock_ids": "stock",
    "manifest_ids": "manifest",
    "manifest_id": "manifest",
    "receipt_ids": "receipt",
    "receipt_id": "receipt",
}
# Shown elsewhere on the card (the unit link, the period, the badge) or internal.
_EVIDENCE_HIDDEN = frozenset({"unit_id", "unit_name", "period", "status", "facility_id", "ids_truncated"})


def _entry_label(kind: str) -> str:
    return {
        "production": i18n.gettext("生产日报"),
        "stock": i18n.gettext("库存盘点"),
        "manifest": i18n.gettext("转移联单"),
        "receipt": i18n.gettext("接收确认"),
    }[kind]


def _is_period(value: str) -> bool:
    return len(value) == 7 and value[4] == "-" and value[:4].isdigit() and value[5:].isdigit()


def drill_link(alert: schemas.AlertOut) -> str:
    """The smelter's drill-down for the alert's month (facility alerts stay on the alert list)."""
    if alert.unit_id is None:
        return "/environment/alerts"
    query = f"?period={alert.period}" if _is_period(alert.period) else ""
    return f"/environment/smelters/{alert.unit_id}{query}"


EvidenceRow = tuple[str, list[tuple[str, str | None]], bool]


def evidence_rows(alert: schemas.AlertOut) -> list[EvidenceRow]:
    """The alert's evidence as (label, [(text, link or None), …], wide); ledger entry ids link to
    their row in the smelter's drill-down; lists and long texts take a whole line."""
    labels = _evidence_labels(alert.kind)
    base = drill_link(alert) if alert.unit_id is not None else None
    rows: list[EvidenceRow] = []
    for key, value in alert.evidence.items():
        if key in _EVIDENCE_HIDDEN or value is None or value in ("", []):
            continue
        if key in _ENTRY_KEYS:
            kind = _ENTRY_KEYS[key]
            ids = value if isinstance(value, list) else [value]
            links = [(f"#{i}", f"{base}#entry-{kind}-{i}" if base else None) for i in ids]
            rows.append((_entry_label(kind), links, True))
            continue
        if isinstance(value, list):
            text = "、".join(_fmt(v) for v in value)
        elif isinstance(value, dict):
            text = "；".join(f"{k}: {_fmt(v)}" for k, v in value.items())
        else:
            text = _fmt(value)
        rows.append((labels.get(key, key), [(text, None)], len(text) > 24))
    if alert.evidence.get("ids_truncated"):
        rows.append((i18n.gettext("说明"), [(i18n.gettext("相关记录较多，仅列出部分编号"), None)], True))
    if base is not None:
        rows.append((i18n.gettext("平衡明细"), [(i18n.gettext("查看台账与计算"), base)], True))
    return rows


# --- the ledger forms ---------------------------------------------------------------------------

FORM_FIELDS: dict[str, tuple[str, ...]] = {
    "production": ("process_id", "produced_on", "aluminium_t", "note", "supersedes_id"),
    "stock": ("counted_at", "ash_t", "note", "supersedes_id"),
    "manifest": (
        "manifest_no",
        "shipped_at",
        "shipped_t",
        "carrier_id",
        "vehicle_plate",
        "facility_id",
        "note",
        "supersedes_id",
    ),
}
INPUT_MODELS: dict[str, type[BaseModel]] = {
    "production": schemas.ProductionIn,
    "stock": schemas.StockCountIn,
    "manifest": schemas.ManifestIn,
}
DATETIME_FIELDS = frozenset({"counted_at", "shipped_at"})


@dataclass
class FormState:
    kind: str
    values: dict[str, str]
    errors: dict[str, str]


def _empty_forms() -> dict[str, FormState]:
    return {kind: FormState(kind, {}, {}) for kind in FORM_FIELDS}


def _message_for(error: ErrorDetails) -> str:
    """A Chinese-first message for one pydantic error (its own text is English)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return i18n.gettext("必填")
    if kind == "greater_than":
        return i18n.gettext("须大于 %(limit)s") % {"limit": _fmt(ctx.get("gt"))}
    if kind == "greater_than_equal":
        return i18n.gettext("不能小于 %(limit)s") % {"limit": _fmt(ctx.get("ge"))}
    if kind == "less_than":
        return i18n.gettext("须小于 %(limit)s") % {"limit": _fmt(ctx.get("lt"))}
    if kind == "less_than_equal":
        return i18n.gettext("不能大于 %(limit)s") % {"limit": _fmt(ctx.get("le"))}
    if kind == "string_too_short":
        return i18n.gettext("至少 %(n)s 个字符") % {"n": ctx.get("min_length")}
    if kind == "string_too_long":
        return i18n.gettext("最多 %(n)s 个字符") % {"n": ctx.get("max_length")}
    if kind == "string_pattern_mismatch":
        return i18n.gettext("只能包含字母、数字和连字符")
    if kind.startswith("int_"):
        return i18n.gettext("请输入整数")
    if kind.startswith(("float_", "finite_")):
        return i18n.gettext("请输入数字")
    if kind.startswith("date_"):
        return i18n.gettext("请输入有效日期")
    if kind.startswith("datetime_"):
        return i18n.gettext("请输入有效时间")
    return i18n.gettext("填写有误")


def _local_input(value: dt.datetime) -> str:
    """A datetime as a ``datetime-local`` input value in Asia/Shanghai."""
    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")


def parse_form(kind: str, form: dict[str, str]) -> tuple[BaseModel | None, FormState]:
    """The input model for one ledger form, or the form back with a message per bad field."""
    state = FormState(kind, {k: form.get(k, "").strip() for k in FORM_FIELDS[kind]}, {})
    data: dict[str, object] = {}
    for name, raw in state.values.items():
        if raw == "":
            continue  # required fields then fail as "missing"; optional ones take their default
        if name in DATETIME_FIELDS:
            try:
                moment = dt.datetime.fromisoformat(raw)
            except ValueError:
                state.errors[name] = i18n.gettext("请输入有效时间")
                continue
            # A datetime-local input has no zone: the smelter's clock is Asia/Shanghai.
            data[name] = moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)
        else:
            data[name] = raw
    try:
        model = INPUT_MODELS[kind].model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = error.get("loc") or ("",)
            state.errors.setdefault(str(loc[0]), _message_for(error))
        return None, state
    if state.errors:
        return None, state
    return model, state


def _apply_service_error(state: FormState, exc: AppError) -> None:
    placed = False
    for detail in exc.details:
        name = str(detail.get("field", ""))
        if name in state.values:
            state.errors.setdefault(name, str(detail.get("message") or exc.message))
            placed = True
    if not placed:
        state.errors["_form"] = exc.message


# --- routes -------------------------------------------------------------------------------------


def _sort_board(rows: Iterable[schemas.BalanceRow]) -> list[schemas.BalanceRow]:
    """Red first, then amber, green, no data; the most ash missing first within a colour."""
    return sorted(
        rows, key=lambda r: (STATUS_ORDER.get(r.status, 9), -r.unaccounted_t, r.unit_name, r.unit_id)
    )


async def _smelters(
    db: AsyncSession, actor: Principal, station_id: int | None = None
) -> list[schemas.SmelterOut]:
    smelters, _ = await service.list_smelters(
        db, actor, service.SmelterFilters(station_id=station_id, limit=MAX_ROWS)
    )
    return smelters


async def _board_rows(
    db: AsyncSession, actor: Principal, period: str, station_id: int | None = None
) -> list[schemas.BalanceRow]:
    rows, _ = await service.balance_board(db, actor, period=period, station_id=station_id, limit=MAX_ROWS)
    return rows


@router.get("/environment", response_class=HTMLResponse)
async def board(
    request: Request,
    period: Period = None,
    station_id: Annotated[str | None, Query(max_length=12)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    chosen = period or last_full_period()
    station = _opt_int(station_id)
    rows = _sort_board(await _board_rows(db, actor, chosen, station))
    counts = {status: sum(1 for r in rows if r.status == status) for status in STATUS_ORDER}
    return render(
        request,
        "environment/board.html",
        {
            "nav": "environment",
            "env_tab": "board",
            "period": chosen,
            "periods": period_choices(chosen),
            "station_id": station,
            "stations": await org_service.list_stations(db, actor),
            "station_names": {s.unit_id: s.station_name for s in await _smelters(db, actor, station)},
            "rows": rows,
            "counts": counts,
        },
    )


def _production_by_process(
    smelter: schemas.SmelterOut, entries: Sequence[schemas.LedgerEntryOut]
) -> list[dict[str, Any]]:
    """Σ aluminium per process over the effective production entries, to write out the arithmetic."""
    totals: dict[int, float] = {}
    for e in entries:
        if e.kind == "production" and e.superseded_by is None:
            pid = int(e.detail.get("process_id", 0))
            totals[pid] = totals.get(pid, 0.0) + e.tonnes
    return [
        {
            "name": p.name,
            "aluminium_t": totals[p.id],
            "coefficient": p.coefficient_kg_per_t,
            "ash_t": totals[p.id] * p.coefficient_kg_per_t / 1000,
        }
        for p in smelter.processes
        if p.id in totals
    ]


def _can_enter(actor: Principal) -> bool:
    return actor.role in service.LEDGER_WRITE_ROLES


@router.get("/environment/smelters/{unit_id}", response_class=HTMLResponse)
async def smelter_detail(
    request: Request,
    unit_id: int,
    period: Period = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    chosen = period or last_full_period()
    smelter = await service.get_smelter(db, actor, unit_id)
    series = await service.balance_trend(db, actor, unit_id, TREND_MONTHS, until=chosen)
    row = next((r for r in series if r.period == chosen), None)
    if row is None:  # pragma: no cover - the trend answers every month of a smelter in scope
        raise NotFound("冶炼企业不存在")
    entries = await service.list_ledger(db, actor, unit_id, chosen)
    zone_name = None
    if smelter.joint_zone_id is not None:
        zones, _ = await service.list_zones(db, actor)
        zone_name = next((z.name for z in zones if z.id == smelter.joint_zone_id), None)
    following = shift_period(chosen, 1)
    return render(
        request,
        "environment/smelter.html",
        {
            "nav": "environment",
            "env_tab": "board",
            "smelter": smelter,
            "zone_name": zone_name,
            "period": chosen,
            "periods": period_choices(chosen),
            "prev_period": shift_period(chosen, -1),
            "next_period": following if following <= current_period() else None,
            "row": row,
            "by_process": _production_by_process(smelter, entries),
            "chart": trend_chart(series, chosen),
            "entries": entries,
            "entry_details": entry_details,
            "can_enter": _can_enter(actor),
            "tolerance_pct": load_config().tolerance_pct,
            "tolerance_min_t": load_config().tolerance_min_t,
        },
    )


async def _ledger_page(
    request: Request,
    db: AsyncSession,
    actor: Principal,
    smelter: schemas.SmelterOut,
    forms: dict[str, FormState],
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    carriers, _ = await service.list_carriers(db, actor, limit=MAX_ROWS, offset=0)
    facilities, _ = await service.list_facilities(db, actor, limit=MAX_ROWS, offset=0)
    return render(
        request,
        "environment/ledger.html",
        {
            "nav": "environment",
            "env_tab": "board",
            "smelter": smelter,
            "forms": forms,
            "notice": notice,
            "processes": [(p.id, p.name) for p in smelter.processes if p.active],
            "carriers": [(c.id, c.name) for c in carriers],
            "facilities": [(f.id, f.name) for f in facilities],
        },
        status_code=status_code,
    )


def _saved_notice(saved: str | None, entry: str | None) -> str | None:
    if saved not in LEDGER_KINDS:
        return None
    number = _opt_int(entry)
    return i18n.gettext("已登记") + " " + _entry_label(saved) + (f" #{number}" if number else "")


async def _writable_smelter(db: AsyncSession, actor: Principal, unit_id: int) -> schemas.SmelterOut:
    smelter = await service.get_smelter(db, actor, unit_id)  # out of scope: 404 before anything else
    actor.require_role(*service.LEDGER_WRITE_ROLES)  # in scope but read-only: a friendly 403
    return smelter


@router.get("/environment/smelters/{unit_id}/ledger", response_class=HTMLResponse)
async def ledger_form(
    request: Request,
    unit_id: int,
    saved: Annotated[str | None, Query(max_length=16)] = None,
    entry: Annotated[str | None, Query(max_length=12)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    smelter = await _writable_smelter(db, actor, unit_id)
    now = dt.datetime.now(LOCAL_TZ)
    forms = _empty_forms()
    forms["production"].values["produced_on"] = now.date().isoformat()
    forms["stock"].values["counted_at"] = _local_input(now)
    forms["manifest"].values["shipped_at"] = _local_input(now)
    active = [p for p in smelter.processes if p.active]
    if len(active) == 1:  # one line only: nothing to choose
        forms["production"].values["process_id"] = str(active[0].id)
    return await _ledger_page(request, db, actor, smelter, forms, notice=_saved_notice(saved, entry))


@router.post("/environment/smelters/{unit_id}/ledger/{kind}", response_class=HTMLResponse)
async def ledger_submit(
    request: Request,
    unit_id: int,
    kind: str,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    if kind not in LEDGER_KINDS:
        raise NotFound("页面或资源不存在")
    smelter = await _writable_smelter(db, actor, unit_id)
    raw = await request.form()
    model, state = parse_form(kind, {k: v for k, v in raw.items() if isinstance(v, str)})
    forms = _empty_forms()
    forms[kind] = state
    if model is None:
        return await _ledger_page(request, db, actor, smelter, forms, status_code=422)
    try:
        if isinstance(model, schemas.ProductionIn):
            created = await service.add_production(db, actor, unit_id, model)
        elif isinstance(model, schemas.StockCountIn):
            created = await service.add_stock_count(db, actor, unit_id, model)
        else:
            assert isinstance(model, schemas.ManifestIn)  # noqa: S101 - parse_form's contract
            created = await service.add_manifest(db, actor, unit_id, model)
    except (ValidationFailed, Conflict) as exc:
        await db.rollback()
        _apply_service_error(state, exc)
        return await _ledger_page(request, db, actor, smelter, forms, status_code=exc.status_code)
    return RedirectResponse(
        f"/environment/smelters/{unit_id}/ledger?saved={kind}&entry={created.id}", status_code=303
    )


@router.get("/environment/alerts", response_class=HTMLResponse)
async def alert_list(
    request: Request,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    chosen = next((k for k in ALERT_KINDS if k == kind), None)
    alerts, total = await service.list_alerts(
        db,
        actor,
        service.AlertFilters(status="open", kind=chosen, limit=MAX_ROWS),
    )
    return render(
        request,
        "environment/alerts.html",
        {
            "nav": "environment",
            "env_tab": "alerts",
            "alerts": alerts,
            "total": total,
            "kind": chosen,
            "alert_kinds": ALERT_KINDS,
            "drill_link": drill_link,
            "evidence_rows": evidence_rows,
        },
    )


@router.get("/environment/map", response_class=HTMLResponse)
async def eco_map(
    request: Request,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    period = last_full_period()
    zones, _ = await service.list_zones(db, actor)
    statuses = {r.unit_id: r.status for r in await _board_rows(db, actor, period)}
    recent = service.EcoFilters(
        since=dt.datetime.now(dt.UTC) - dt.timedelta(days=MAP_DAYS), limit=MAP_MARKERS
    )
    incidents, _ = await service.list_eco_incidents(db, actor, recent)
    patrols, _ = await service.list_patrols(db, actor, recent)
    smelters = await _smelters(db, actor)
    latest = service.EcoFilters(limit=MAP_LIST_SIZE)
    latest_incidents, _ = await service.list_eco_incidents(db, actor, latest)
    latest_patrols, _ = await service.list_patrols(db, actor, latest)
    return render(
        request,
        "environment/map.html",
        {
            "nav": "environment",
            "env_tab": "map",
            "period": period,
            "days": MAP_DAYS,
            "geo": map_geometry(ZHILI_MAP, zones, smelters, statuses, incidents, patrols),
            "incidents": latest_incidents,
            "patrols": latest_patrols,
        },
    )
