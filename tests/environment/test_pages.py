"""The eco-policing pages as a browser uses them: the board, the drill-down, the ledger forms,
the alert list and the eco map, each scoped to what the viewer may see."""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.permissions import Principal
from eqian.environment import pages, schemas, service
from eqian.environment.balance import month, shift_period
from eqian.environment.models import EnvAlert, Manifest, ProductionReport, StockCount
from eqian.organizations.models import JointZone, Unit
from tests.factories import _HASH, World, make_world, sign_in

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
LOCAL = ZoneInfo("Asia/Shanghai")
# A square of about 2.2 km × 1.9 km north of the town, standing in for the 乔溇 joint zone.
ZONE_POLYGON = [[30.918, 120.280], [30.918, 120.300], [30.935, 120.300], [30.935, 120.280]]


@dataclass
class EcoWorld:
    world: World
    period: str
    zone_id: int
    processes: dict[str, int] = field(default_factory=dict)
    facility_id: int = 0
    carrier_id: int = 0
    production_ids: dict[str, int] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def unit(self, label: str) -> int:
        return self.world.units[label]


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), LOCAL)


async def _smelter(db: AsyncSession, admin: Principal, unit_id: int) -> int:
    process = await service.create_process(
        db, admin, unit_id, schemas.ProcessIn(name="回转炉熔炼", coefficient_kg_per_t=50)
    )
    return process.id


@pytest.fixture
async def eco(db: AsyncSession) -> EcoWorld:
    """Station A: a1 (red: 5 t of ash, 2 t disposed) and a2 (green, inside the joint zone);
    station B: b1 (green). A partner officer scoped to the zone, an eco incident and a patrol in it
    and one outside the map's box."""
    w = await make_world(db)
    admin = Principal.of(w.users["bureau_admin"])
    zone = JointZone(
        code="qiaolou",
        name="乔溇联勤区",
        partner_agency="苏州市公安局吴江区分局",
        station_id=w.station_a,
        polygon=ZONE_POLYGON,
    )
    db.add(zone)
    await db.flush()
    await db.execute(
        update(Unit).where(Unit.id == w.units["a2"]).values(lat=30.93, lng=120.29, joint_zone_id=zone.id)
    )
    partner = User(
        username="partner_officer",
        display_name="吴江民警",
        password_hash=_HASH,
        role=Role.PARTNER_OFFICER.value,
        zone_id=zone.id,
    )
    db.add(partner)
    await db.commit()

    period = pages.last_full_period()
    first = month(period).first_day
    e = EcoWorld(world=w, period=period, zone_id=zone.id, users={"partner_officer": partner})
    facility = await service.create_facility(
        db,
        admin,
        schemas.FacilityIn(
            name="湖州危废处置中心", licence_no="HZ-WF-001", licensed_capacity_t_per_year=50_000
        ),
    )
    carrier = await service.create_carrier(
        db, admin, schemas.CarrierIn(name="织里危货运输", licence_no="YS-001")
    )
    e.facility_id, e.carrier_id = facility.id, carrier.id
    for label, shipped in (("a1", 2.0), ("a2", 5.0), ("b1", 5.0)):
        uid = w.units[label]
        e.processes[label] = await _smelter(db, admin, uid)
        made = await service.add_production(
            db,
            admin,
            uid,
            schemas.ProductionIn(process_id=e.processes[label], produced_on=first, aluminium_t=100),
        )
        e.production_ids[label] = made.id
        manifest_no = f"LD-{label.upper()}-0001"
        await service.add_manifest(
            db,
            admin,
            uid,
            schemas.ManifestIn(
                manifest_no=manifest_no,
                shipped_at=_at(first + dt.timedelta(days=2)),
                shipped_t=shipped,
                carrier_id=carrier.id,
                vehicle_plate="浙E·A1234",
                facility_id=facility.id,
            ),
        )
        await service.add_receipt(
            db,
            admin,
            uid,
            manifest_no,
            schemas.ReceiptIn(received_at=_at(first + dt.timedelta(days=2), 16), received_t=shipped),
        )
    await service.create_eco_incident(
        db,
        admin,
        schemas.EcoIncidentIn(
            kind="fishing",
            occurred_at=_at(first),
            lat=30.93,
            lng=120.29,
            station_id=w.station_a,
            description="乔溇村太湖边夜间非法捕捞",
        ),
    )
    await service.create_eco_incident(
        db,
        admin,
        schemas.EcoIncidentIn(
            kind="dumping",
            occurred_at=_at(first),
            lat=31.30,  # north of the map's box: listed, not drawn
            lng=120.60,
            station_id=w.station_a,
            description="疑似倾倒铝灰（地图范围外）",
        ),
    )
    await service.create_patrol(
        db,
        admin,
        schemas.PatrolIn(
            kind="persuasion",
            started_at=_at(first, 18),
            lat=30.925,
            lng=120.285,
            station_id=w.station_a,
            people_count=3,
            note="劝导野泳人员上岸",
        ),
    )
    return e


def board_rows(page: str) -> list[tuple[int, str, str]]:
    """(unit id, name, status) of each board row, in order."""
    return [
        (int(uid), html.unescape(name), status)
        for status, uid, name in re.findall(
            r'<tr class="row-\w+" data-status="(\w+)" data-unit="(\d+)">\s*<td class="unit-col">'
            r'<a href="/environment/smelters/\d+\?period=[\d-]+">([^<]*)</a>',
            page,
        )
    ]


async def count(db: AsyncSession, model: type[ProductionReport | StockCount | Manifest]) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


# --- the board --------------------------------------------------------------------------------------


async def test_board_shows_the_officers_smelters_red_first_with_a_summary(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.world.users["station_officer"])
    r = await browser.get("/environment")
    assert r.status_code == 200
    page = r.text
    for text in ("铝灰全流程监管", "产生量", "已处置", "在途未确认", "库存变化", "去向不明", "容差"):
        assert text in page
    assert '<link rel="stylesheet" href="/static/css/environment.css">' in page
    # Default month: the last full one.
    assert f'<option value="{eco.period}" selected>' in page
    rows = board_rows(page)
    assert rows == [(eco.unit("a1"), "织里贝贝童装有限公司", "red"), (eco.unit("a2"), "吾悦广场", "green")]
    assert re.search(r'id="count-red"><strong>1</strong> 红', page)
    assert re.search(r'id="count-amber"><strong>0</strong> 黄', page)
    assert re.search(r'id="count-green"><strong>1</strong> 绿', page)
    # a1: 100 t × 50 kg/t = 5 t expected, 2 t disposed → 3 t unaccounted against ±0.5 t.
    a1 = page[page.index(f'data-unit="{eco.unit("a1")}"') :].split("</tr>")[0]
    assert [c.strip() for c in re.findall(r'<td class="num[^"]*">([^<]*)</td>', a1)] == [
        "5.00", "2.00", "0.00", "0.00", "3.00", "±0.50",
    ]  # fmt: skip
    assert f'href="/environment/smelters/{eco.unit("a1")}?period={eco.period}"' in page


async def test_board_station_filter_and_other_month(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.world.users["bureau_admin"])
    everything = board_rows((await browser.get("/environment")).text)
    assert {uid for uid, _, _ in everything} == {eco.unit("a1"), eco.unit("a2"), eco.unit("b1")}
    assert everything[0][2] == "red"
    only_b = board_rows((await browser.get("/environment", params={"station_id": eco.world.station_b})).text)
    assert only_b == [(eco.unit("b1"), "织南安安童装厂", "green")]
    # An empty select means "all stations"; a month without entries is "no data".
    earlier = shift_period(eco.period, -3)
    r = await browser.get("/environment", params={"station_id": "", "period": earlier})
    assert r.status_code == 200
    assert {s for _, _, s in board_rows(r.text)} == {"no_data"}
    assert f'<option value="{earlier}" selected>' in r.text


@pytest.mark.parametrize("period", ["2025-13", "2025-1", "abc", "２０２５-01", "0000-01", "1999-12"])
async def test_a_bad_month_is_a_friendly_422(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld, period: str
) -> None:
    await sign_in(db, browser, eco.world.users["station_officer"])
    r = await browser.get("/environment", params={"period": period})
    assert r.status_code == 422
    assert "<h1>422" in r.text


async def test_board_without_login_goes_to_the_login_page(browser: httpx.AsyncClient, eco: EcoWorld) -> None:
    r = await browser.get("/environment")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/environment")


# --- scope --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/ledger"])
async def test_another_stations_smelter_is_a_friendly_404(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld, path: str
) -> None:
    await sign_in(db, browser, eco.world.users["station_officer"])
    r = await browser.get(f"/environment/smelters/{eco.unit('b1')}{path}")
    assert r.status_code == 404
    assert "冶炼企业不存在" in r.text
    assert "织南安安童装厂" not in r.text
    missing = await browser.get(f"/environment/smelters/999999{path}")
    assert missing.status_code == 404  # the same answer as for one that does not exist
    # A unit that is no smelter at all is not one either.
    assert (await browser.get(f"/environment/smelters/{eco.unit('a3')}{path}")).status_code == 404


async def test_unit_security_sees_only_their_own_smelter(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.world.users["unit_security"])  # security head of a1
    assert [uid for uid, _, _ in board_rows((await browser.get("/environment")).text)] == [eco.unit("a1")]
    assert (await browser.get(f"/environment/smelters/{eco.unit('a1')}")).status_code == 200
    assert (await browser.get(f"/environment/smelters/{eco.unit('a2')}")).status_code == 404
    ledger = await browser.get(f"/environment/smelters/{eco.unit('a1')}/ledger")
    assert ledger.status_code == 200
    assert "生产日报" in ledger.text
    m = await browser.get("/environment/map")
    assert m.status_code == 200
    assert 'class="zone"' not in m.text  # no zone, incident or patrol is theirs
    assert 'class="incident"' not in m.text.split('id="map-legend"')[0]


async def test_partner_officer_sees_only_the_joint_zone(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.users["partner_officer"])
    assert [uid for uid, _, _ in board_rows((await browser.get("/environment")).text)] == [eco.unit("a2")]
    assert (await browser.get(f"/environment/smelters/{eco.unit('a1')}")).status_code == 404
    detail = await browser.get(f"/environment/smelters/{eco.unit('a2')}")
    assert detail.status_code == 200
    assert "乔溇联勤区" in detail.text
    assert "台账录入" not in detail.text  # a partner agency reads the ledger, it does not keep it
    assert (await browser.get(f"/environment/smelters/{eco.unit('a2')}/ledger")).status_code == 403
    m = await browser.get("/environment/map")
    assert 'class="zone" id="zone-' in m.text
    assert "乔溇村太湖边夜间非法捕捞" in m.text
    assert "疑似倾倒铝灰" not in m.text  # outside the zone
    alerts = await browser.get("/environment/alerts")
    assert alerts.status_code == 200
    assert "织里贝贝童装有限公司" not in alerts.text


# --- the drill-down ---------------------------------------------------------------------------------------


async def test_drill_down_writes_out_the_arithmetic_and_draws_the_trend(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.world.users["station_officer"])
    r = await browser.get(f"/environment/smelters/{eco.unit('a1')}", params={"period": eco.period})
    assert r.status_code == 200
    page = r.text
    assert "<h1>织里贝贝童装有限公司" in page
    assert "回转炉熔炼：100.00 t × 50.0 kg/t = 5.000 t" in page
    assert "= 5.00 − 2.00 = " in page
    assert '<span id="unaccounted" class="neg">3.00 t</span>' in page
    assert "去向不明超过容差的两倍" in page
    # Six months of bars, the chosen one last; nothing but inline SVG.
    assert page.count('<g class="month"') == 6
    months = re.findall(r'<g class="month" data-period="([\d-]+)">', page)
    assert months == [shift_period(eco.period, -i) for i in range(5, -1, -1)]
    assert '<rect class="bar-red"' in page
    assert "<script" not in page.split("</head>")[1]
    # The ledger of the month: production, manifest, receipt.
    kinds = re.findall(r'<tr id="entry-(\w+)-\d+" data-kind="\w+"', page)
    assert kinds == ["production", "manifest", "receipt"]
    assert "LD-A1-0001" in page
    assert "湖州危废处置中心" in page
    assert "已更正" not in page


async def test_a_correction_strikes_the_replaced_entry_through(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    admin = Principal.of(eco.world.users["bureau_admin"])
    first = month(eco.period).first_day
    fixed = await service.add_production(
        db,
        admin,
        eco.unit("a1"),
        schemas.ProductionIn(
            process_id=eco.processes["a1"],
            produced_on=first,
            aluminium_t=40,
            supersedes_id=eco.production_ids["a1"],
            note="磅单录错，更正",
        ),
    )
    await sign_in(db, browser, eco.world.users["station_officer"])
    page = (await browser.get(f"/environment/smelters/{eco.unit('a1')}", params={"period": eco.period})).text
    old = page[page.index(f'id="entry-production-{eco.production_ids["a1"]}"') :].split("</tr>")[0]
    assert 'class="superseded"' in old
    assert "已更正" in old
    assert f'href="#entry-production-{fixed.id}"' in old
    new = page[page.index(f'id="entry-production-{fixed.id}"') :].split("</tr>")[0]
    assert 'class=""' in new
    assert "磅单录错，更正" in new
    # Only the correction counts: 40 t × 50 kg/t = 2 t, all of it disposed.
    assert "回转炉熔炼：40.00 t × 50.0 kg/t = 2.000 t" in page
    assert '<span id="unaccounted" class="">0.00 t</span>' in page


# --- the ledger forms ------------------------------------------------------------------------------------


def _production_form(eco: EcoWorld, csrf: str | None, **overrides: str) -> dict[str, str]:
    data = {
        "process_id": str(eco.processes["a1"]),
        "produced_on": (dt.datetime.now(LOCAL).date() - dt.timedelta(days=1)).isoformat(),
        "aluminium_t": "12.5",
        "note": "夜班",
        "supersedes_id": "",
    }
    if csrf is not None:
        data["csrf_token"] = csrf
    return data | overrides


async def test_ledger_page_offers_the_three_forms_with_csrf(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    csrf = await sign_in(db, browser, eco.world.users["unit_security"])
    r = await browser.get(f"/environment/smelters/{eco.unit('a1')}/ledger")
    assert r.status_code == 200
    page = r.text
    for title in ("生产日报", "库存盘点", "转移联单"):
        assert f"<h2>{title}</h2>" in page
    assert page.count(f'<input type="hidden" name="csrf_token" value="{csrf}">') >= 3
    for kind in ("production", "stock", "manifest"):
        assert f'action="/environment/smelters/{eco.unit("a1")}/ledger/{kind}"' in page
    # The smelter's only process line is chosen already; the day and the time default to now.
    assert f'<option value="{eco.processes["a1"]}" selected>回转炉熔炼</option>' in page
    today = dt.datetime.now(LOCAL).date().isoformat()
    assert f'name="produced_on" value="{today}"' in page
    assert re.search(rf'name="counted_at" value="{today}T\d\d:\d\d"', page)
    assert f'<option value="{eco.facility_id}" >湖州危废处置中心</option>' in page
    assert f'<option value="{eco.carrier_id}" >织里危货运输</option>' in page


async def test_production_form_round_trip(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    csrf = await sign_in(db, browser, eco.world.users["unit_security"])
    before = await count(db, ProductionReport)
    url = f"/environment/smelters/{eco.unit('a1')}/ledger"
    r = await browser.post(f"{url}/production", data=_production_form(eco, csrf))
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(f"{url}?saved=production&entry=")
    entry_id = int(location.rsplit("=", 1)[1])
    assert await count(db, ProductionReport) == before + 1
    row = await db.get(ProductionReport, entry_id)
    assert row is not None
    assert (row.unit_id, row.aluminium_t, row.note) == (eco.unit("a1"), 12.5, "夜班")
    assert row.entered_by == eco.world.users["unit_security"].id
    done = await browser.get(location)
    assert f"已登记 生产日报 #{entry_id}" in done.text


async def test_stock_and_manifest_forms_take_local_times(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    csrf = await sign_in(db, browser, eco.world.users["station_officer"])
    url = f"/environment/smelters/{eco.unit('a1')}/ledger"
    yesterday = dt.datetime.now(LOCAL).date() - dt.timedelta(days=1)
    r = await browser.post(
        f"{url}/stock", data={"counted_at": f"{yesterday}T08:30", "ash_t": "7.25", "csrf_token": csrf}
    )
    assert r.status_code == 303, r.text
    stock = (await db.scalars(select(StockCount).order_by(StockCount.id.desc()))).first()
    assert stock is not None
    assert stock.ash_t == 7.25
    assert stock.counted_at == dt.datetime.combine(yesterday, dt.time(8, 30), LOCAL)  # 08:30 in Zhili
    form = {
        "manifest_no": "LD-A1-0002",
        "shipped_at": f"{yesterday}T09:15",
        "shipped_t": "3.4",
        "carrier_id": str(eco.carrier_id),
        "vehicle_plate": "浙E·B5678",
        "facility_id": str(eco.facility_id),
        "note": "",
        "supersedes_id": "",
        "csrf_token": csrf,
    }
    r = await browser.post(f"{url}/manifest", data=form)
    assert r.status_code == 303, r.text
    assert await db.scalar(select(func.count()).where(Manifest.manifest_no == "LD-A1-0002")) == 1
    # The same number again is refused by the service, next to the field, values kept.
    again = await browser.post(f"{url}/manifest", data=form)
    assert again.status_code == 409
    assert (
        '<span class="field-error" id="manifest-manifest_no-error" role="alert">联单编号已登记</span>'
        in again.text
    )
    assert 'value="浙E·B5678"' in again.text
    assert await db.scalar(select(func.count()).where(Manifest.manifest_no == "LD-A1-0002")) == 1


async def test_a_ledger_post_without_csrf_is_refused_and_writes_nothing(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.world.users["unit_security"])
    before = await count(db, ProductionReport)
    url = f"/environment/smelters/{eco.unit('a1')}/ledger/production"
    r = await browser.post(url, data=_production_form(eco, None))
    assert r.status_code == 403
    wrong = await browser.post(url, data=_production_form(eco, "not-the-token"))
    assert wrong.status_code == 403
    assert await count(db, ProductionReport) == before


@pytest.mark.parametrize(
    ("overrides", "field_name", "message"),
    [
        ({"aluminium_t": "-5"}, "aluminium_t", "不能小于 0"),
        ({"aluminium_t": "很多"}, "aluminium_t", "请输入数字"),
        ({"aluminium_t": ""}, "aluminium_t", "必填"),
        ({"process_id": ""}, "process_id", "必填"),
        ({"produced_on": "2025-02-30"}, "produced_on", "请输入有效日期"),
        ({"supersedes_id": "abc"}, "supersedes_id", "请输入整数"),
        # Rules only the service knows come back next to their field too.
        ({"produced_on": "2099-01-01"}, "produced_on", "不能晚于今天"),
        ({"process_id": "999999"}, "process_id", "工艺不存在或不属于该单位"),
        ({"supersedes_id": "999999"}, "supersedes_id", "要更正的记录不存在或不属于该单位"),
    ],
)
async def test_bad_input_re_renders_the_form_with_the_message_and_writes_nothing(
    db: AsyncSession,
    browser: httpx.AsyncClient,
    eco: EcoWorld,
    overrides: dict[str, str],
    field_name: str,
    message: str,
) -> None:
    csrf = await sign_in(db, browser, eco.world.users["unit_security"])
    before = await count(db, ProductionReport)
    alerts_before = await db.scalar(select(func.count()).select_from(EnvAlert))
    r = await browser.post(
        f"/environment/smelters/{eco.unit('a1')}/ledger/production",
        data=_production_form(eco, csrf, **overrides),
    )
    assert r.status_code == 422
    assert (
        f'<span class="field-error" id="production-{field_name}-error" role="alert">{message}</span>'
        in r.text
    )
    assert 'value="夜班"' in r.text  # what was typed stays
    for name, value in overrides.items():
        if value and name != "process_id":
            assert f'value="{html.escape(value)}"' in r.text
    assert await count(db, ProductionReport) == before
    assert await db.scalar(select(func.count()).select_from(EnvAlert)) == alerts_before


async def test_a_bad_datetime_and_an_unknown_form_kind(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    csrf = await sign_in(db, browser, eco.world.users["station_officer"])
    url = f"/environment/smelters/{eco.unit('a1')}/ledger"
    r = await browser.post(f"{url}/stock", data={"counted_at": "昨天", "ash_t": "1", "csrf_token": csrf})
    assert r.status_code == 422
    assert 'id="stock-counted_at-error" role="alert">请输入有效时间</span>' in r.text
    assert await count(db, StockCount) == 0
    assert (await browser.post(f"{url}/receipt", data={"csrf_token": csrf})).status_code == 404


async def test_ledger_posts_respect_scope_and_role(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    csrf = await sign_in(db, browser, eco.world.users["station_officer"])
    other = await browser.post(
        f"/environment/smelters/{eco.unit('b1')}/ledger/production", data=_production_form(eco, csrf)
    )
    assert other.status_code == 404
    csrf = await sign_in(db, browser, eco.users["partner_officer"])
    read_only = await browser.post(
        f"/environment/smelters/{eco.unit('a2')}/ledger/production",
        data=_production_form(eco, csrf, process_id=str(eco.processes["a2"])),
    )
    assert read_only.status_code == 403
    assert await count(db, ProductionReport) == 3


# --- alerts and the map ------------------------------------------------------------------------------------


async def test_alert_list_explains_each_alert_with_its_evidence(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.world.users["station_officer"])
    r = await browser.get("/environment/alerts")
    assert r.status_code == 200
    page = r.text
    assert "铝灰监管预警" in page
    cards = re.findall(r'<article class="card alert-card sev-(\w+)" id="alert-\d+" data-kind="(\w+)">', page)
    assert ("red", "unaccounted_ash") in cards
    assert all(kind in pages.ALERT_KINDS for _, kind in cards)
    card = page[page.index('data-kind="unaccounted_ash"') :].split("</article>")[0]
    assert "织里贝贝童装有限公司" in card
    assert "铝灰去向不明 3.0 吨" in card
    assert "<dt>去向不明（吨）</dt><dd>3</dd>" in card
    drill = f"/environment/smelters/{eco.unit('a1')}?period={eco.period}"
    assert f'href="{drill}#entry-production-{eco.production_ids["a1"]}"' in card
    assert f'<a href="{drill}">查看台账与计算</a>' in card
    # The kind filter.
    other = await browser.get("/environment/alerts", params={"kind": "weight_shortfall"})
    assert 'data-kind="unaccounted_ash"' not in other.text
    assert '<option value="weight_shortfall" selected>' in other.text
    junk = await browser.get("/environment/alerts", params={"kind": "nonsense"})
    assert junk.status_code == 200
    assert 'data-kind="unaccounted_ash"' in junk.text
    # Another station's officer does not see it.
    await sign_in(db, browser, eco.world.users["station_officer_b"])
    assert 'data-kind="unaccounted_ash"' not in (await browser.get("/environment/alerts")).text


async def test_map_draws_the_zone_smelters_incidents_and_patrols(
    db: AsyncSession, browser: httpx.AsyncClient, eco: EcoWorld
) -> None:
    await sign_in(db, browser, eco.world.users["station_officer"])
    r = await browser.get("/environment/map")
    assert r.status_code == 200
    page = r.text
    svg = page[page.index('<svg class="eco-map"') : page.index("</svg>", page.index('<svg class="eco-map"'))]
    assert re.search(r'<polygon class="zone" id="zone-\d+" points="[\d.]+,[\d.]+( [\d.]+,[\d.]+){3}">', svg)
    assert "乔溇联勤区" in svg
    # a2 sits in the zone: a green dot linking to its drill-down. a1 (30.84, 120.26) is in the box too.
    assert f'href="/environment/smelters/{eco.unit("a2")}?period={eco.period}"' in svg
    assert set(re.findall(r'<circle class="dot dot-(\w+)"', svg)) == {"red", "green"}
    assert svg.count('<polygon class="incident"') == 1  # the other one lies outside the box
    assert svg.count('<polygon class="patrol"') == 1
    assert '<span id="map-omitted">1 个点位在地图范围之外，未显示</span>' in page
    assert "疑似倾倒铝灰（地图范围外）" in page  # still listed below
    assert "劝导野泳人员上岸" in page
    for legend in ("省际联勤区域", "冶炼企业 · 红", "生态警情", "联勤巡查"):
        assert legend in page


# --- the geometry ----------------------------------------------------------------------------------------


def test_map_projection_is_true_to_scale_and_clamps() -> None:
    box = pages.MapBox(south=30.0, north=31.0, west=120.0, east=121.0, width=800)
    assert box.height == round(
        800 / math.cos(math.radians(30.5))
    )  # 1° of longitude is cos(lat) × 1° of latitude
    assert box.project(31.0, 120.0) == (0.0, 0.0)
    assert box.project(30.0, 121.0) == (800.0, float(box.height))
    assert box.project(40.0, 100.0) == (0.0, 0.0)  # clamped onto the corner
    assert box.contains(30.5, 120.5)
    assert not box.contains(31.5, 120.5)
    assert not box.contains(None, 120.5)
    assert pages.ZHILI_MAP.contains(30.835, 120.265)  # the town centre
    assert pages.ZHILI_MAP.contains(30.93, 120.29)  # 乔溇 on the lake shore


def _row(period: str, expected: float, accounted: float, status: schemas.BalanceStatus) -> schemas.BalanceRow:
    return schemas.BalanceRow(
        unit_id=1,
        unit_name="x",
        period=period,
        aluminium_t=0,
        expected_t=expected,
        shipped_t=accounted,
        unconfirmed_t=0,
        stock_start_t=None,
        stock_end_t=None,
        delta_stock_t=0,
        accounted_t=accounted,
        unaccounted_t=expected - accounted,
        tolerance_t=0.5,
        status=status,
    )


def test_trend_chart_scales_bars_to_a_round_top() -> None:
    rows = [
        _row("2026-01", 80, 80, "green"),
        _row("2026-02", 90, 40, "red"),
        _row("2026-03", 0, -2, "no_data"),
    ]
    chart = pages.trend_chart(rows, "2026-02")
    assert [t["label"] for t in chart["ticks"]] == ["0", "25", "50", "75", "100"]
    full = chart["base"] - chart["ticks"][-1]["y"]
    g = chart["groups"]
    assert g[1]["expected"]["h"] == round(0.9 * full, 1)
    assert g[1]["accounted"]["h"] == round(0.4 * full, 1)
    assert g[2]["accounted"]["h"] == 0  # a negative total draws no bar
    assert [x["current"] for x in g] == [False, True, False]
    assert [x["label"] for x in g] == ["26/01", "26/02", "26/03"]
    assert pages.trend_chart([], "2026-02")["groups"] == []
    assert [pages._nice_ceiling(v) for v in (0, 0.3, 1, 7, 12, 240, 2600)] == [1, 0.5, 1, 10, 20, 250, 5000]
