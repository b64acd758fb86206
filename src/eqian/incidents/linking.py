"""Linking an incident to a unit of the registry: by exact reference (unit id or credit code), else
by the unit's name in the text or its address, else by the nearest unit within a radius.

The registry is held in memory (``Linker``), built once and reused for a short while by every
request of the process, so that a single intake does no registry scan and a 100,000-row import
links in one pass. Each answer carries the method and a reason the officer sees and can correct.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.geo import haversine_m
from eqian.organizations.models import Station, Unit

RADIUS_M = 150.0  # a call within this distance of a unit's location is taken to be about it
CELL_DEG = 0.002  # grid cell of the nearest-unit search (~220 m north–south)
CACHE_SECONDS = 30.0
CHECK_SECONDS = 1.0  # how often a cached registry asks whether a unit or station was added
YIELD_EVERY = 500  # units added to a registry being built between two turns of the event loop
MIN_NAME = 4
_SPACE = re.compile(r"[\s\u3000]+")
_PREFIXES = ("浙江省", "湖州市", "吴兴区", "织里镇", "织里")
_SUFFIXES = ("有限责任公司", "股份有限公司", "有限公司", "公司", "网点", "分店")


def norm_address(text: str) -> str:
    out = _SPACE.sub("", text).translate(_FULLWIDTH)
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if out.startswith(prefix) and len(out) > len(prefix):
                out, changed = out[len(prefix) :], True
    return out


_FULLWIDTH = {0xFF10 + i: 0x30 + i for i in range(10)} | {0xFF0D: 0x2D, 0xFF03: 0x23}


def short_names(name: str) -> set[str]:
    """The name as written and as people say it (without 织里/有限公司 and the like)."""
    names = {name}
    short = name
    for prefix in ("湖州", "织里"):
        short = short.removeprefix(prefix)
    for suffix in _SUFFIXES:
        if short.endswith(suffix):
            short = short[: -len(suffix)]
            break
    if len(short) >= MIN_NAME:
        names.add(short)
    return {n for n in names if len(n) >= MIN_NAME}


@dataclass(frozen=True)
class UnitRef:
    id: int
    name: str
    station_id: int
    category_code: str
    lat: float | None
    lng: float | None


@dataclass(frozen=True)
class Link:
    unit: UnitRef | None
    method: str  # ref | name | address | nearest | none
    reason: str


NO_LINK = Link(None, "none", "未能关联到单位")


def _cell(lat: float, lng: float) -> tuple[int, int]:
    return (math.floor(lat / CELL_DEG), math.floor(lng / CELL_DEG))


@dataclass
class Linker:
    units: dict[int, UnitRef] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    by_address: dict[str, int] = field(default_factory=dict)
    # first 4 characters -> name length -> name -> unit (a shared prefix like 湖州织里 costs one
    # lookup per length, not one comparison per name)
    by_prefix: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)
    grid: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    stations: dict[int, tuple[float, float]] = field(default_factory=dict)  # with coordinates
    station_ids: set[int] = field(default_factory=set)  # every station
    station_names: dict[int, str] = field(default_factory=dict)
    fingerprint: tuple[int, int] = (0, 0)
    built: float = 0.0
    checked: float = 0.0  # when the database was last asked whether the registry changed

    @classmethod
    async def build(
        cls,
        rows: Iterable[tuple[int, str, str, str, int, str, float | None, float | None]],
        stations: Iterable[tuple[int, float | None, float | None]] = (),
        station_names: dict[int, str] | None = None,
    ) -> Linker:
        """From (id, name, credit_code, address, station_id, category, lat, lng) of active units.

        Gives the event loop a turn every ``YIELD_EVERY`` units: a city's 20,000 take a few
        hundred milliseconds, which in one piece would hold up every request of the worker."""
        linker = cls()
        ambiguous: set[str] = set()
        for count, (uid, name, code, address, station_id, category, lat, lng) in enumerate(rows, 1):
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            linker.units[uid] = UnitRef(uid, name, station_id, category, lat, lng)
            linker.by_code[code.upper()] = uid
            key = norm_address(address)
            if len(key) >= MIN_NAME:
                if key in linker.by_address:
                    ambiguous.add(key)  # two units at one address: the address decides nothing
                linker.by_address[key] = uid
            for n in short_names(name):
                linker.by_prefix.setdefault(n[:MIN_NAME], {}).setdefault(len(n), {})[n] = uid
            if lat is not None and lng is not None:
                linker.grid.setdefault(_cell(lat, lng), []).append(uid)
        for key in ambiguous:
            del linker.by_address[key]
        for count, lengths in enumerate(linker.by_prefix.values(), 1):  # the longest name that fits wins
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            ordered = dict(sorted(lengths.items(), reverse=True))
            lengths.clear()
            lengths.update(ordered)
        station_list = list(stations)
        linker.station_ids = {sid for sid, _, _ in station_list}
        linker.station_names = dict(station_names or {})
        linker.stations = {
            sid: (lat, lng) for sid, lat, lng in station_list if lat is not None and lng is not None
        }
        return linker

    def _allowed(self, uid: int, stations: frozenset[int] | None) -> bool:
        return stations is None or self.units[uid].station_id in stations

    def by_ref(self, ref: str, stations: frozenset[int] | None) -> UnitRef | None:
        ref = ref.strip()
        uid: int | None
        if ref.isascii() and ref.isdigit() and len(ref) <= 9:
            uid = int(ref) if int(ref) in self.units else None
        else:
            uid = self.by_code.get(ref.upper())
        return self.units[uid] if uid is not None and self._allowed(uid, stations) else None

    def link(
        self,
        *,
        ref: str | None,
        text: str,
        address: str,
        lat: float | None,
        lng: float | None,
        stations: frozenset[int] | None = None,
        radius_m: float = RADIUS_M,
    ) -> Link:
        """Best link for an incident; ``stations`` limits the candidates to a jurisdiction."""
        if ref:
            unit = self.by_ref(ref, stations)
            if unit is not None:
                return Link(unit, "ref", f"单位编号/信用代码精确匹配：{ref.strip()}")
        for source in (text, address):
            found = self._name_in(source, stations)
            if found is not None:
                name, uid = found
                return Link(self.units[uid], "name", f"文本中出现单位名称「{name}」")
        key = norm_address(address)
        # the whole address, then ever shorter prefixes ("大港路18号3楼" → "大港路18号")
        for candidate in [key, *(key[:n] for n in range(len(key) - 1, 5, -1))]:
            at = self.by_address.get(candidate)
            if at is not None and self._allowed(at, stations):
                return Link(self.units[at], "address", f"地址匹配：{candidate}")
        if lat is not None and lng is not None:
            nearest = self.nearest(lat, lng, stations, radius_m)
            if nearest is not None:
                uid, dist = nearest
                return Link(self.units[uid], "nearest", f"距离最近的单位（{dist:.0f} 米）")
        return NO_LINK

    def _name_in(self, text: str, stations: frozenset[int] | None) -> tuple[str, int] | None:
        best: tuple[str, int] | None = None
        for i in range(len(text) - MIN_NAME + 1):
            lengths = self.by_prefix.get(text[i : i + MIN_NAME])
            if lengths is None:
                continue
            for length, names in lengths.items():
                uid = names.get(text[i : i + length])
                if uid is not None and self._allowed(uid, stations):
                    if best is None or length > len(best[0]):
                        best = (text[i : i + length], uid)
                    break
        return best

    def nearest(
        self, lat: float, lng: float, stations: frozenset[int] | None, radius_m: float = RADIUS_M
    ) -> tuple[int, float] | None:
        ci, cj = _cell(lat, lng)
        reach = max(1, math.ceil(radius_m / 200.0))
        best: tuple[int, float] | None = None
        for di in range(-reach, reach + 1):
            for dj in range(-reach, reach + 1):
                for uid in self.grid.get((ci + di, cj + dj), ()):
                    unit = self.units[uid]
                    if unit.lat is None or unit.lng is None or not self._allowed(uid, stations):
                        continue
                    dist = haversine_m((lat, lng), (unit.lat, unit.lng))
                    if dist <= radius_m and (best is None or dist < best[1]):
                        best = (uid, dist)
        return best

    def nearest_station(self, lat: float | None, lng: float | None) -> int | None:
        if lat is None or lng is None or not self.stations:
            return None
        return min(self.stations, key=lambda sid: haversine_m((lat, lng), self.stations[sid]))


_cache: dict[str, Linker] = {}
# One check or rebuild of a database's registry at a time per event loop (a worker's requests).
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def invalidate() -> None:
    """Forget the cached registry (tests, or after a bulk change of units)."""
    _cache.clear()


async def get_linker(session: AsyncSession, *, fresh: bool = False) -> Linker:
    """The registry of this database, rebuilt when a unit was added or after ``CACHE_SECONDS``.

    Whether a unit was added is asked at most every ``CHECK_SECONDS`` (at intake rates the
    question was one round trip per incident); ``fresh`` asks now, for a reference that the
    cached registry does not know. One request of the worker asks or rebuilds at a time, and the
    others go on with the registry they have meanwhile: when the registry aged out, every request
    in flight used to rebuild it at once (16 in the intake bench, each holding up the worker).
    """
    key = str(session.get_bind().engine.url)
    asked = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and not fresh and _current(cached, asked):
        return cached
    lock = _locks.setdefault(asyncio.get_running_loop(), {}).setdefault(key, asyncio.Lock())
    if cached is not None and not fresh and lock.locked():
        return cached
    async with lock:
        latest = _cache.get(key)
        if latest is not None and latest.checked >= asked:
            return latest  # asked or rebuilt after this request came, by the one it waited for
        return await _refresh(session, key, latest)


def _young(linker: Linker, now: float) -> bool:
    return now - linker.built < CACHE_SECONDS


def _current(linker: Linker, now: float) -> bool:
    return _young(linker, now) and now - linker.checked < CHECK_SECONDS


async def _refresh(session: AsyncSession, key: str, cached: Linker | None) -> Linker:
    # Stamped with when the question was asked, not answered: a request that came while it was
    # on its way may have committed a unit the answer does not show (get_linker's ``checked >= asked``).
    started = time.monotonic()
    row = (
        await session.execute(
            select(
                select(func.coalesce(func.max(Unit.id), 0)).scalar_subquery(),
                select(func.count()).select_from(Station).scalar_subquery(),
            )
        )
    ).one()
    fingerprint = (int(row[0]), int(row[1]))
    if cached is not None and _young(cached, started) and cached.fingerprint == fingerprint:
        cached.checked = started
        return cached
    # Fetched YIELD_EVERY rows at a time, like the build: a city's units in one fetch held up the
    # worker for 64-118 ms, in pages 28-60 ms (bench/registry_rebuild.py, longest stall). Pages by
    # id, not a server-side cursor: intake and imports ask on connections in autocommit.
    units: list[Any] = []  # rows of the columns below, which build() takes as tuples
    page = (
        select(
            Unit.id,
            Unit.name,
            Unit.credit_code,
            Unit.address,
            Unit.station_id,
            Unit.category_code,
            Unit.lat,
            Unit.lng,
        )
        .where(Unit.status == "active")
        .order_by(Unit.id)
        .limit(YIELD_EVERY)
    )
    while rows := (await session.execute(page.where(Unit.id > (units[-1][0] if units else 0)))).all():
        units.extend(rows)
    stations = (await session.execute(select(Station.id, Station.lat, Station.lng, Station.name))).all()
    linker = await Linker.build(
        units, [(sid, lat, lng) for sid, lat, lng, _ in stations], {sid: n for sid, _, _, n in stations}
    )
    linker.fingerprint = fingerprint
    linker.built = linker.checked = started
    _cache[key] = linker
    return linker
