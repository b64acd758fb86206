"""One district with an object of every kind on both sides of every jurisdiction line.

``tests.factories.make_world`` gives two stations, five units and one user per role; this adds a
partner agency's officer (joint zone of station A), the helpers that create station B's objects
(station_officer_b, unit_security_b1, mediator_b of a second team), and, through the real API so
the services' own rules build them, one object per path parameter in the **own** scope (unit a1,
station A, service point A, the liaison's unit, the mediator's team, the partner's zone) and one in
the **other** scope (unit b1, station B, the second team).

``AuthzWorld.ids[param] = (own, other)`` resolves every ``{param}`` of every route; a few are per
user (a notification belongs to one recipient) and live in ``per_user``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.ids import make_resident_id
from eqian.environment.models import EnvAlert
from eqian.hazards import service as hazards_service
from eqian.hazards.models import ChecklistItem
from eqian.incidents import linking, routing
from eqian.mediation.models import MediationMember, MediationParty, MediationTeam
from eqian.messaging import service as messaging_service
from eqian.messaging.models import Channel
from eqian.notifications.models import Notification
from eqian.organizations.models import JointZone, Unit
from tests.factories import World, bearer, make_world

# The matrix's actors; "anonymous" sends no credentials.
ROLES = (
    "anonymous",
    "partner_officer",
    "mediator",
    "service_point_staff",
    "unit_security",
    "liaison_officer",
    "station_officer",
    "bureau_admin",
)
HELPERS = ("station_officer_b", "unit_security_b1", "mediator_b")
OWN, OTHER = "own", "other"

LOCAL = dt.timezone(dt.timedelta(hours=8))


def tiny_png() -> bytes:
    """A valid 1×1 PNG: the upload endpoints sniff magic bytes, so the bytes must be real."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\x00\xff\xff\xff")
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def xlsx_sheet() -> bytes:
    """An HR sheet of one valid worker, as the workforce import expects it."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["姓名", "身份证号", "手机号", "入职日期", "宿舍", "岗位"])
    ws.append(
        ["钱七", make_resident_id("330502", dt.date(1991, 3, 3), 77), "13912340077", "2026-01-05", "", "车工"]
    )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@dataclass
class AuthzWorld:
    world: World
    users: dict[str, User] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    per_user: dict[str, dict[str, Any]] = field(default_factory=dict)  # param -> username -> id
    teams: dict[str, int] = field(default_factory=dict)
    zone_a: int = 0
    zone_b: int = 0
    carrier: int = 0
    facility: int = 0
    processes: dict[str, int] = field(default_factory=dict)  # unit label -> process id
    checklist: dict[str, list[int]] = field(default_factory=dict)  # category -> item ids

    @property
    def units(self) -> dict[str, int]:
        return self.world.units

    def param(self, name: str, side: str, who: str) -> Any:
        if name in self.per_user:
            owner = who if side == OWN else "station_officer_b"
            return self.per_user[name].get(owner, self.per_user[name]["station_officer_b"])
        own, other = self.ids[name]
        return own if side == OWN else other


async def _ok(resp: httpx.Response, what: str) -> Any:
    assert resp.status_code in (200, 201), f"world: {what}: {resp.status_code} {resp.text[:400]}"
    return resp.json()


async def build(db: AsyncSession, client: httpx.AsyncClient) -> AuthzWorld:
    """Everything a cell of the matrix needs; the caller has emptied the tables."""
    linking.invalidate()
    routing.invalidate()
    w = await make_world(db)
    aw = AuthzWorld(world=w)
    a, b = w.station_a, w.station_b
    zone_a = JointZone(
        code="zone-a",
        name="织北联防区",
        partner_agency="吴江公安",
        station_id=a,
        polygon=[[30.0, 120.0], [30.0, 121.0], [31.0, 121.0], [31.0, 120.0]],
    )
    zone_b = JointZone(
        code="zone-b",
        name="织南联防区",
        partner_agency="南浔公安",
        station_id=b,
        polygon=[[29.0, 119.0], [29.0, 119.5], [29.5, 119.5], [29.5, 119.0]],
    )
    veterans = MediationTeam(
        name="老兵驿站", kind="veterans", station_id=b, specialties="labor,processing_fee"
    )
    db.add_all([zone_a, zone_b, veterans])
    await db.flush()
    aw.zone_a, aw.zone_b = zone_a.id, zone_b.id
    aw.teams = {"own": w.team, "other": veterans.id}
    # The partner sees zone A: unit a1 lies in it (the zone is derived from coordinates on writes;
    # set here directly because make_world inserts through the models).
    unit_a1 = await db.get(Unit, w.units["a1"])
    assert unit_a1 is not None
    unit_a1.joint_zone_id = zone_a.id
    unit_b1 = await db.get(Unit, w.units["b1"])
    assert unit_b1 is not None
    unit_b1.joint_zone_id = zone_b.id
    unit_b1.lat, unit_b1.lng = 29.2, 119.2  # inside zone B, so a re-derivation keeps it there
    password_hash = w.users["bureau_admin"].password_hash
    extra: dict[str, dict[str, Any]] = {
        "partner_officer": {"role": Role.PARTNER_OFFICER, "zone_id": zone_a.id},
        "station_officer_b": {"role": Role.STATION_OFFICER, "station_id": b},
        "unit_security_b1": {"role": Role.UNIT_SECURITY, "unit_id": w.units["b1"]},
        "mediator_b": {"role": Role.MEDIATOR, "team_id": veterans.id},
        # Accounts the user-administration cells change (never a matrix actor).
        "target_a": {"role": Role.LIAISON_OFFICER, "station_id": a},
        "target_b": {"role": Role.LIAISON_OFFICER, "station_id": b},
    }
    for username, attrs in extra.items():
        if username in w.users:
            continue
        role = attrs.pop("role")
        user = User(
            username=username, display_name=username, password_hash=password_hash, role=role.value, **attrs
        )
        db.add(user)
        await db.flush()
        w.users[username] = user
    members = {
        "own": MediationMember(
            team_id=w.team, name="李大姐", specialties="labor", user_id=w.users["mediator"].id
        ),
        "other": MediationMember(
            team_id=veterans.id, name="赵班长", specialties="labor", user_id=w.users["mediator_b"].id
        ),
    }
    db.add_all(members.values())
    await hazards_service.ensure_checklists(db)
    await messaging_service.ensure_channels(db)
    await db.commit()
    aw.users = dict(w.users)
    for who in (*ROLES[1:], *HELPERS):
        aw.headers[who] = await bearer(db, w.users[who])
    aw.headers["anonymous"] = {}
    for item in await db.scalars(select(ChecklistItem).order_by(ChecklistItem.sort_order, ChecklistItem.id)):
        aw.checklist.setdefault(item.category_code, []).append(item.id)

    h = aw.headers
    u = w.units
    ids = aw.ids
    ids["station_id"] = (a, b)
    ids["user_id"] = (w.users["target_a"].id, w.users["target_b"].id)
    ids["unit_id"] = (u["a1"], u["b1"])
    ids["contact_id"] = (w.contacts["a1"], w.contacts["b1"])
    ids["team_id"] = (w.team, veterans.id)
    ids["zone_id"] = (zone_a.id, zone_b.id)
    ids["code"] = ("en", "zh")
    ids["action"] = ("reply", "reply")
    ids["kind"] = ("production", "production")

    # --- activities: one per station, each inviting its station's first unit
    def activity(station: int, day: int) -> dict[str, Any]:
        start = dt.datetime(2026, 12, day, 14, tzinfo=LOCAL)
        return {
            "station_id": station,
            "kind": "safety_training",
            "title": "消防安全培训",
            "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
            "location": "派出所会议室",
        }

    act_a = await _ok(
        await client.post("/api/v1/activities", json=activity(a, 3), headers=h["station_officer"]),
        "activity a",
    )
    act_b = await _ok(
        await client.post("/api/v1/activities", json=activity(b, 4), headers=h["station_officer_b"]),
        "activity b",
    )
    ids["activity_id"] = (act_a["id"], act_b["id"])
    inv_a = await _ok(
        await client.post(
            f"/api/v1/activities/{act_a['id']}/invitations",
            json={"unit_ids": [u["a1"]]},
            headers=h["station_officer"],
        ),
        "invite a1",
    )
    inv_b = await _ok(
        await client.post(
            f"/api/v1/activities/{act_b['id']}/invitations",
            json={"unit_ids": [u["b1"]]},
            headers=h["station_officer_b"],
        ),
        "invite b1",
    )
    ids["invitation_id"] = (_invitation_id(inv_a), _invitation_id(inv_b))

    # --- hazards: an inspection of a1 and of b1 with one failed item (a hazard) carrying a photo
    garment = aw.checklist["garment"]
    photo = tiny_png()
    insp: dict[str, Any] = {}
    for side, label, who in ((OWN, "a1", "station_officer"), (OTHER, "b1", "station_officer_b")):
        data = {
            "unit_id": u[label],
            "results": [{"item_id": garment[0], "result": "fail", "note": "灭火器过期"}]
            + [{"item_id": i, "result": "pass"} for i in garment[1:3]],
        }
        insp[side] = await _ok(
            await client.post(
                "/api/v1/inspections",
                data={"data": json.dumps(data)},
                files={f"photo_{garment[0]}": ("p.png", photo, "image/png")},
                headers=h[who],
            ),
            f"inspection {label}",
        )
    ids["inspection_id"] = (insp[OWN]["id"], insp[OTHER]["id"])
    hazards = {}
    for side in (OWN, OTHER):
        found = await _ok(
            await client.get(
                "/api/v1/hazards",
                params={"unit_id": ids["unit_id"][0 if side == OWN else 1]},
                headers=h["bureau_admin"],
            ),
            "hazards",
        )
        hazards[side] = found["items"][0]["id"]
    ids["hazard_id"] = (hazards[OWN], hazards[OTHER])
    names = []
    for side in (OWN, OTHER):
        result = next(r for r in insp[side]["results"] if r.get("photo_url"))
        names.append(result["photo_url"].rsplit("/", 1)[-1])
    ids["name"] = (names[0], names[1])
    ids["item_id"] = (garment[-1], garment[-2])  # checklists are bureau-wide: no other scope

    # --- workforce: one worker hired at a1 and one at b1
    hires = {}
    for side, label, who, seq in ((OWN, "a1", "unit_security", 11), (OTHER, "b1", "unit_security_b1", 12)):
        hires[side] = await _ok(
            await client.post(
                "/api/v1/workers/hires",
                json={
                    "unit_id": u[label],
                    "name": "王五" if side == OWN else "赵六",
                    "id_number": make_resident_id("330502", dt.date(1990, 1, 1), seq),
                    "phone": f"139123400{seq}",
                    "hired_on": "2026-01-05",
                },
                headers=h[who],
            ),
            f"hire {label}",
        )
    ids["employment_id"] = (hires[OWN]["id"], hires[OTHER]["id"])
    ids["person_id"] = (hires[OWN]["person_id"], hires[OTHER]["person_id"])

    # --- environment: a1 and b1 become smelters (a process line each); a carrier, a facility,
    # a manifest per smelter, an alert per smelter, eco incidents and patrols per station
    for label in ("a1", "b1"):
        proc = await _ok(
            await client.post(
                f"/api/v1/environment/units/{u[label]}/processes",
                json={"name": "回转炉", "coefficient_kg_per_t": 40.0},
                headers=h["bureau_admin"],
            ),
            f"process {label}",
        )
        aw.processes[label] = proc["id"]
    ids["process_id"] = (aw.processes["a1"], aw.processes["b1"])
    carrier = await _ok(
        await client.post(
            "/api/v1/environment/carriers",
            json={"name": "湖州危废运输", "licence_no": "ZJ-T-001"},
            headers=h["bureau_admin"],
        ),
        "carrier",
    )
    carrier_b = await _ok(
        await client.post(
            "/api/v1/environment/carriers",
            json={"name": "南浔危废运输", "licence_no": "ZJ-T-002"},
            headers=h["bureau_admin"],
        ),
        "carrier b",
    )
    facility = await _ok(
        await client.post(
            "/api/v1/environment/facilities",
            json={"name": "长兴危废处置中心", "licence_no": "ZJ-HW-01", "licensed_capacity_t_per_year": 1000},
            headers=h["bureau_admin"],
        ),
        "facility",
    )
    facility_b = await _ok(
        await client.post(
            "/api/v1/environment/facilities",
            json={"name": "南浔处置站", "licence_no": "ZJ-HW-02", "licensed_capacity_t_per_year": 40},
            headers=h["bureau_admin"],
        ),
        "facility b",
    )
    aw.carrier, aw.facility = carrier["id"], facility["id"]
    ids["carrier_id"] = (carrier["id"], carrier_b["id"])
    ids["facility_id"] = (facility["id"], facility_b["id"])
    for label in ("a1", "b1"):
        await _ok(
            await client.post(
                f"/api/v1/environment/units/{u[label]}/manifests",
                json={
                    "manifest_no": f"M-{label}-0001",
                    "shipped_at": dt.datetime(2026, 11, 2, 9, tzinfo=LOCAL).isoformat(),
                    "shipped_t": 2.5,
                    "carrier_id": carrier["id"],
                    "vehicle_plate": "浙E·A1234",
                    "facility_id": facility["id"],
                },
                headers=h["bureau_admin"],
            ),
            f"manifest {label}",
        )
    ids["manifest_no"] = ("M-a1-0001", "M-b1-0001")
    alerts = []
    for label in ("a1", "b1"):
        alert = EnvAlert(
            fingerprint=f"authz:{label}",
            unit_id=u[label],
            kind="unaccounted_ash",
            severity="amber",
            period="2026-11",
            message="库存与台账不符",
            evidence={},
        )
        db.add(alert)
        await db.flush()
        alerts.append(alert.id)
    await db.commit()
    ids["alert_id"] = (alerts[0], alerts[1])
    eco = []
    patrols = []
    for station, (lat, lng) in ((a, (30.5, 120.5)), (b, (29.2, 119.2))):
        eco.append(
            (
                await _ok(
                    await client.post(
                        "/api/v1/environment/eco-incidents",
                        json={
                            "kind": "fishing",
                            "occurred_at": dt.datetime(2026, 11, 3, 22, tzinfo=LOCAL).isoformat(),
                            "lat": lat,
                            "lng": lng,
                            "station_id": station,
                            "description": "夜间电鱼",
                        },
                        headers=h["bureau_admin"],
                    ),
                    "eco incident",
                )
            )["id"]
        )
        patrols.append(
            (
                await _ok(
                    await client.post(
                        "/api/v1/environment/patrols",
                        json={
                            "kind": "patrol",
                            "started_at": dt.datetime(2026, 11, 4, 20, tzinfo=LOCAL).isoformat(),
                            "lat": lat,
                            "lng": lng,
                            "station_id": station,
                        },
                        headers=h["bureau_admin"],
                    ),
                    "patrol",
                )
            )["id"]
        )
    ids["incident_id@eco"] = (eco[0], eco[1])
    ids["patrol_id"] = (patrols[0], patrols[1])

    # --- incidents: one linked to a1 (station A), one to b1 (station B)
    incidents = []
    for station, label, who in ((a, "a1", "station_officer"), (b, "b1", "station_officer_b")):
        incidents.append(
            (
                await _ok(
                    await client.post(
                        "/api/v1/incidents",
                        json={
                            "description": "工人反映老板拖欠工资三个月",
                            "caller_phone": "13912345678",
                            "unit_ref": str(u[label]),
                            "station_id": station,
                        },
                        headers=h[who],
                    ),
                    f"incident {label}",
                )
            )["id"]
        )
    ids["incident_id"] = (incidents[0], incidents[1])
    rules = []
    for unit_category in ("garment", "logistics"):
        rule = await _ok(
            await client.post(
                "/api/v1/incidents/routing-rules",
                json={
                    "category": "fire",
                    "police": "*",
                    "unit_category": unit_category,
                    "route": "dispatch",
                    "sla_hours": 4,
                },
                headers=h["bureau_admin"],
            ),
            "routing rule",
        )
        rules.append(rule["id"])
    ids["rule_id"] = (rules[0], rules[1])  # the policy is bureau-wide: no other scope

    # --- mediation: a case of the mediator's team (station A, unit a1) and one of the veterans
    cases = []
    for station, label, team, who in (
        (a, "a1", w.team, "station_officer"),
        (b, "b1", veterans.id, "station_officer_b"),
    ):
        cases.append(
            await _ok(
                await client.post(
                    "/api/v1/mediation/cases",
                    json={
                        "source": "walk_in",
                        "station_id": station,
                        "unit_id": u[label],
                        "team_id": team,
                        "dispute_type": "labor",
                        "summary": "加工费纠纷",
                        "parties": [
                            {"name": "张三", "role": "applicant", "phone": "13812345678"},
                            {"name": "李四", "role": "respondent"},
                        ],
                    },
                    headers=h[who],
                ),
                f"case {label}",
            )
        )
    ids["case_id"] = (cases[0]["id"], cases[1]["id"])
    party_ids = []
    for case in cases:
        party_ids.append(
            await db.scalar(
                select(MediationParty.id)
                .where(MediationParty.case_id == case["id"])
                .order_by(MediationParty.id)
            )
        )
    ids["party_id"] = (party_ids[0], party_ids[1])

    # --- requests: one from a1, one from b1; a department per station
    reqs = []
    for who in ("unit_security", "unit_security_b1"):
        reqs.append(
            (
                await _ok(
                    await client.post(
                        "/api/v1/requests",
                        json={
                            "kind": "fraud_training",
                            "title": "申请反诈培训",
                            "body": "员工两百人，希望月底前安排",
                        },
                        headers=h[who],
                    ),
                    f"request {who}",
                )
            )["id"]
        )
    ids["request_id"] = (reqs[0], reqs[1])
    depts = []
    for code, station in (("fanzha_a", a), ("fanzha_b", b)):
        dept = await _ok(
            await client.post(
                "/api/v1/requests/departments",
                json={"code": code, "name": "反诈中心", "kinds": ["fraud_training"], "station_id": station},
                headers=h["bureau_admin"],
            ),
            "department",
        )
        depts.append(dept["id"])
    ids["department_id"] = (depts[0], depts[1])

    # --- messaging: the registry channels of stations A and B, an instruction to each, an
    # attachment in each, an assistance request near each station
    chan = {}
    for side, station in ((OWN, a), (OTHER, b)):
        chan[side] = await db.scalar(
            select(Channel.id).where(Channel.kind == "station", Channel.station_id == station)
        )
    ids["channel_id"] = (chan[OWN], chan[OTHER])
    att = []
    for who in ("station_officer", "station_officer_b"):
        att.append(
            (
                await _ok(
                    await client.post(
                        "/api/v1/messaging/attachments",
                        files={"file": ("p.png", photo, "image/png")},
                        headers=h[who],
                    ),
                    "attachment",
                )
            )["id"]
        )
    for side, who, att_id in ((OWN, "station_officer", att[0]), (OTHER, "station_officer_b", att[1])):
        await _ok(
            await client.post(
                f"/api/v1/messaging/channels/{chan[side]}/messages",
                json={"body": "请查收通知", "attachment_ids": [att_id]},
                headers=h[who],
            ),
            "message",
        )
    ids["attachment_id"] = (att[0], att[1])
    instr = []
    for side, who in ((OWN, "station_officer"), (OTHER, "station_officer_b")):
        instr.append(
            (
                await _ok(
                    await client.post(
                        "/api/v1/messaging/instructions",
                        json={
                            "channel_id": chan[side],
                            "title": "消防检查通知",
                            "body": "请于周五前完成自查",
                            "deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat(),
                        },
                        headers=h[who],
                    ),
                    "instruction",
                )
            )["id"]
        )
    ids["instruction_id"] = (instr[0], instr[1])
    assist = []
    for who, (lat, lng) in (("station_officer", (30.84, 120.26)), ("station_officer_b", (30.84, 120.26))):
        assist.append(
            (
                await _ok(
                    await client.post(
                        "/api/v1/messaging/assistance",
                        json={"description": "寻找走失儿童", "lat": lat, "lng": lng, "radius_m": 2000},
                        headers=h[who],
                    ),
                    "assistance",
                )
            )["id"]
        )
    ids["assistance_id"] = (assist[0], assist[1])

    # --- safety index: November scored, so unit histories exist on both sides
    await _ok(
        await client.post(
            "/api/v1/safety-index/compute", json={"month": "2026-10"}, headers=h["bureau_admin"]
        ),
        "safety index",
    )

    # --- notifications: one per user (a notification is its recipient's alone)
    notes: dict[str, int] = {}
    for who in (*ROLES[1:], *HELPERS):
        note = Notification(user_id=w.users[who].id, kind="test", title="测试通知")
        db.add(note)
        await db.flush()
        notes[who] = note.id
    await db.commit()
    aw.per_user["notification_id"] = notes
    return aw


def _invitation_id(body: Any) -> int:
    if isinstance(body, dict) and "items" in body:
        body = body["items"]
    if isinstance(body, dict) and "invitations" in body:
        body = body["invitations"]
    first = body[0]
    return int(first["id"])


# --- one world per backend, shared by the security modules ---------------------------------------

_CACHE: dict[str, tuple[AuthzWorld, str]] = {}


async def shared_world(
    engine: AsyncEngine, app: Any, *, fresh: bool = False
) -> tuple[AuthzWorld, httpx.AsyncClient, AsyncSession]:
    """The world of this backend, built on first use (or when ``fresh``: the matrix counts rows, so
    it starts from a known state) and rebuilt if a test in between emptied the tables (every
    ``db`` fixture does); a random marker row tells the two apart."""
    from tests.conftest import _empty_tables

    url = engine.url.render_as_string(hide_password=False)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    db = AsyncSession(autocommit, expire_on_commit=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    cached = _CACHE.get(url)
    if cached is not None and not fresh:
        world, marker = cached
        if await db.scalar(select(Notification.id).where(Notification.title == marker)) is not None:
            return world, client, db
    await _empty_tables(engine)
    world = await build(db, client)
    marker = f"authz-world-{uuid.uuid4()}"
    db.add(Notification(user_id=world.users["bureau_admin"].id, kind="test", title=marker))
    await db.commit()
    _CACHE[url] = (world, marker)
    return world, client, db
