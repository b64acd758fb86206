"""A tiny aluminium-ash world for the balance and check tests, and a ledger writer.

Four smelters whose names sort in the opposite order of their ids (丁 < 丙 < 乙 < 甲 by code
point), one garment unit without processes, a carrier and two facilities (1000 t/yr and 40 t/yr).
Ledger rows are written directly through the models; every helper returns the new row's id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.environment.models import (
    Carrier,
    DisposalFacility,
    Manifest,
    ManifestReceipt,
    ProductionReport,
    SmelterProcess,
    StockCount,
)
from eqian.organizations.models import Bureau, JointZone, Station, Unit, UnitCategory
from tests.factories import credit_code

LOCAL = ZoneInfo("Asia/Shanghai")

NAMES = {
    "s1": "湖州织里甲铝业有限公司",
    "s2": "湖州织里乙铝业有限公司",
    "s3": "湖州织里丙铝业有限公司",
    "s4": "湖州织里丁铝业有限公司",
    "g1": "织里贝贝童装有限公司",
}
# process label → (unit label, name, kg ash per t aluminium)
PROCESSES = {
    "s1.rotary": ("s1", "回转炉", 40.0),
    "s1.reverb": ("s1", "反射炉", 25.0),
    "s2.rotary": ("s2", "回转炉", 40.0),
    "s3.rotary": ("s3", "回转炉", 40.0),
    "s4.reverb": ("s4", "反射炉", 25.0),
}


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A wall-clock time in Asia/Shanghai (stored as UTC by the models)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=LOCAL)


@dataclass
class EnvWorld:
    session: AsyncSession
    station: int = 0
    zone: int = 0
    carrier: int = 0
    facility: int = 0  # 1000 t/yr
    small_facility: int = 0  # 40 t/yr
    units: dict[str, int] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)

    async def _add(self, row: ProductionReport | StockCount | Manifest | ManifestReceipt) -> int:
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def production(
        self, process: str, day: dt.date, aluminium_t: float, *, supersedes: int | None = None
    ) -> int:
        unit = PROCESSES[process][0]
        return await self._add(
            ProductionReport(
                unit_id=self.units[unit],
                process_id=self.processes[process],
                produced_on=day,
                aluminium_t=aluminium_t,
                supersedes_id=supersedes,
            )
        )

    async def manifest(
        self,
        unit: str,
        no: str,
        shipped_at: dt.datetime,
        shipped_t: float,
        *,
        facility: int | None = None,
        supersedes: int | None = None,
    ) -> int:
        return await self._add(
            Manifest(
                unit_id=self.units[unit],
                manifest_no=no,
                shipped_at=shipped_at,
                shipped_t=shipped_t,
                carrier_id=self.carrier,
                vehicle_plate="浙E·A1234",
                facility_id=facility or self.facility,
                supersedes_id=supersedes,
            )
        )

    async def receipt(
        self,
        unit: str,
        no: str,
        received_at: dt.datetime,
        received_t: float,
        *,
        supersedes: int | None = None,
    ) -> int:
        return await self._add(
            ManifestReceipt(
                unit_id=self.units[unit],
                manifest_no=no,
                received_at=received_at,
                received_t=received_t,
                supersedes_id=supersedes,
            )
        )

    async def stock(
        self, unit: str, counted_at: dt.datetime, ash_t: float, *, supersedes: int | None = None
    ) -> int:
        return await self._add(
            StockCount(unit_id=self.units[unit], counted_at=counted_at, ash_t=ash_t, supersedes_id=supersedes)
        )


async def make_env_world(session: AsyncSession) -> EnvWorld:
    w = EnvWorld(session)
    session.add_all(
        [
            UnitCategory(
                code="hazchem", name_zh="危化单位", name_en="Hazardous-chemicals unit", sort_order=1
            ),
            UnitCategory(
                code="garment", name_zh="童装企业", name_en="Children's-wear enterprise", sort_order=2
            ),
        ]
    )
    bureau = Bureau(code="zhili", name="织里分局")
    session.add(bureau)
    await session.flush()
    station = Station(bureau_id=bureau.id, code="qiaolou", name="乔溇派出所")
    session.add(station)
    await session.flush()
    zone = JointZone(
        code="qiaolou-core",
        name="乔溇核心区",
        partner_agency="吴江公安",
        station_id=station.id,
        polygon=[[30.9, 120.2], [30.9, 120.3], [30.95, 120.3]],
    )
    session.add(zone)
    await session.flush()
    w.station, w.zone = station.id, zone.id
    for label, name in NAMES.items():
        unit = Unit(
            name=name,
            credit_code=credit_code(),
            category_code="garment" if label == "g1" else "hazchem",
            station_id=station.id,
            joint_zone_id=zone.id if label == "s1" else None,
        )
        session.add(unit)
        await session.flush()
        w.units[label] = unit.id
    for label, (unit_label, name, coefficient) in PROCESSES.items():
        process = SmelterProcess(unit_id=w.units[unit_label], name=name, coefficient_kg_per_t=coefficient)
        session.add(process)
        await session.flush()
        w.processes[label] = process.id
    carrier = Carrier(name="湖州危废运输有限公司", licence_no="ZJ-HW-T-001")
    big = DisposalFacility(
        name="长兴危废处置中心", licence_no="ZJ-HW-0501", licensed_capacity_t_per_year=1000
    )
    small = DisposalFacility(name="南浔小型处置站", licence_no="ZJ-HW-0502", licensed_capacity_t_per_year=40)
    session.add_all([carrier, big, small])
    await session.flush()
    w.carrier, w.facility, w.small_facility = carrier.id, big.id, small.id
    return w
