"""The fuzzer's district: ``make_world`` plus a few rows per domain in station A (unit a1, the
mediator's team) and in station B (unit b1, a second team), so generated paths hit real rows of
the caller's own scope and of another scope; and the refusals the fuzzer enforces on top of
schemathesis' checks."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.hazards import service as hazard_service
from eqian.hazards.models import ChecklistItem, Hazard
from eqian.incidents import linking, routing
from eqian.mediation.models import MediationParty, MediationTeam
from eqian.messaging import service as messaging_service
from eqian.messaging.models import Channel
from tests.activities import add_activity, invite
from tests.factories import ROLES, World, bearer, make_world
from tests.hazards.helpers import add_hazard
from tests.incidents.helpers import add_incident
from tests.mediation.helpers import add_case
from tests.workforce.helpers import hire_body

ANONYMOUS = "anonymous"
CALLERS = list(ROLES)
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

# Who may make each write, as the services' role checks and docs/security.md state them (B bureau,
# S station officer, L liaison officer, U unit security, M mediator, P service-point staff). A 2xx
# for any other role is a failure. Writes whose rule depends on the object (sending into a channel,
# handling a case, moving an incident) are left to the authorization matrix.
_WHO = {"B": "bureau_admin", "S": "station_officer", "L": "liaison_officer", "U": "unit_security"}
_WHO |= {"M": "mediator", "P": "service_point_staff"}
WRITERS: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/units"): "BS",
    ("PATCH", "/api/v1/units/{unit_id}"): "BS",
    ("PUT", "/api/v1/units/{unit_id}/liaison"): "BS",
    ("POST", "/api/v1/units/{unit_id}/contacts"): "BSLU",
    ("POST", "/api/v1/units/{unit_id}/contacts/{contact_id}/reveal"): "BSL",
    ("POST", "/api/v1/activities"): "BS",
    ("POST", "/api/v1/activities/roundtables/schedule"): "BS",
    ("PATCH", "/api/v1/activities/{activity_id}"): "BS",
    ("POST", "/api/v1/activities/{activity_id}/invitations"): "BS",
    ("POST", "/api/v1/activities/{activity_id}/invitations/{invitation_id}/response"): "U",
    ("POST", "/api/v1/activities/{activity_id}/invitations/{invitation_id}/attendance"): "BSL",
    ("POST", "/api/v1/inspections/checklist-items"): "B",
    ("POST", "/api/v1/inspections/checklist-items/{item_id}/retire"): "B",
    ("POST", "/api/v1/inspections"): "BSLU",
    ("POST", "/api/v1/hazards/{hazard_id}/evidence"): "U",
    ("POST", "/api/v1/hazards/{hazard_id}/review"): "BSL",
    ("POST", "/api/v1/workers/hires"): "BSLU",
    ("POST", "/api/v1/workers/import"): "BSLU",
    ("POST", "/api/v1/workers/persons/{person_id}/reveal"): "BSL",
    ("PUT", "/api/v1/workers/persons/{person_id}/residence"): "BSLU",
    ("POST", "/api/v1/workers/{employment_id}/departure"): "BSLU",
    ("POST", "/api/v1/environment/units/{unit_id}/processes"): "BS",
    ("PATCH", "/api/v1/environment/units/{unit_id}/processes/{process_id}"): "BS",
    ("POST", "/api/v1/environment/facilities"): "B",
    ("POST", "/api/v1/environment/carriers"): "B",
    ("POST", "/api/v1/environment/units/{unit_id}/production"): "BSU",
    ("POST", "/api/v1/environment/units/{unit_id}/stock-counts"): "BSU",
    ("POST", "/api/v1/environment/units/{unit_id}/manifests"): "BSU",
    ("POST", "/api/v1/environment/units/{unit_id}/manifests/{manifest_no}/receipts"): "BS",
    ("POST", "/api/v1/environment/eco-incidents"): "BS",
    ("POST", "/api/v1/environment/patrols"): "BS",
    ("POST", "/api/v1/incidents"): "BS",
    ("POST", "/api/v1/incidents/routing-rules"): "B",
    ("PATCH", "/api/v1/incidents/routing-rules/{rule_id}"): "B",
    ("DELETE", "/api/v1/incidents/routing-rules/{rule_id}"): "B",
    ("POST", "/api/v1/incidents/{incident_id}/triage"): "BS",
    ("POST", "/api/v1/incidents/{incident_id}/link"): "BS",
    ("POST", "/api/v1/incidents/{incident_id}/reveal-phone"): "BSL",
    ("POST", "/api/v1/mediation/teams"): "BS",
    ("POST", "/api/v1/mediation/teams/{team_id}/members"): "BS",
    ("POST", "/api/v1/mediation/cases"): "BSLUMP",
    ("POST", "/api/v1/mediation/cases/{case_id}/assign"): "BS",
    ("POST", "/api/v1/mediation/cases/{case_id}/parties/{party_id}/reveal"): "BSLM",
    ("POST", "/api/v1/requests/departments"): "B",
    ("POST", "/api/v1/requests"): "BSLU",
    ("POST", "/api/v1/requests/{request_id}/route"): "BSL",
    ("POST", "/api/v1/requests/{request_id}/reply"): "BSL",
    ("POST", "/api/v1/requests/{request_id}/resolve"): "BSL",
    ("POST", "/api/v1/requests/{request_id}/rate"): "U",
    ("POST", "/api/v1/messaging/channels"): "BSL",
    ("POST", "/api/v1/messaging/instructions"): "BS",
    ("POST", "/api/v1/messaging/instructions/{instruction_id}/ack"): "U",
    ("POST", "/api/v1/messaging/instructions/{instruction_id}/read"): "U",
    ("POST", "/api/v1/messaging/assistance"): "BS",
    ("POST", "/api/v1/messaging/assistance/{assistance_id}/close"): "BSL",
    ("POST", "/api/v1/safety-index/compute"): "B",
    ("POST", "/api/v1/cockpit/refresh"): "B",
}
# Reads only some roles may make at all.
READERS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/notifications/deliveries"): "B",
    ("GET", "/api/v1/incidents/routing-rules"): "BSL",
    ("GET", "/api/v1/messaging/inbox"): "U",
    ("GET", "/api/v1/cockpit/summary"): "BS",
    ("GET", "/api/v1/cockpit/trend"): "BS",
    ("GET", "/api/v1/cockpit/breakdown"): "BS",
    ("GET", "/api/v1/cockpit/map"): "BS",
    ("GET", "/api/v1/cockpit/drill"): "BS",
}
# Sessions these end or replace: each example gets a fresh token so the next one still authenticates.
SESSION_ENDING = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")}
PUBLIC = {("POST", "/api/v1/auth/token")}


@dataclass
class FuzzWorld:
    world: World
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    # path parameter -> (row in station A / unit a1 / team A, row in station B / unit b1 / team B)
    ids: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # callers for whom the station B row of a parameter is out of scope (every role but the bureau)
    scoped: set[str] = field(default_factory=set)
    db: AsyncSession | None = None
    own_refs: dict[str, int] = field(default_factory=dict)  # body references inside station A

    @property
    def callers(self) -> list[str]:
        return [*CALLERS, ANONYMOUS]

    def path_ids(self, path: str) -> list[dict[str, Any]]:
        """Real ids for the operation's path: all of station A's rows, and all of station B's."""
        names = re.findall(r"\{(\w+)\}", path)
        if not names or any(n not in self.ids for n in names):
            return []
        return [{n: self.ids[n][0] for n in names}, {n: self.ids[n][1] for n in names}]

    def headers_for(self, caller: str, operation: Any, bridge: Any) -> dict[str, str]:
        if caller == ANONYMOUS:
            return {}
        if (operation.method.upper(), operation.path) in SESSION_ENDING:
            assert self.db is not None
            return dict(bridge.run(bearer(self.db, self.world.users[caller])))
        return self.headers[caller]

    def must_refuse(self, caller: str, operation: Any, case: Any, response: httpx.Response) -> str | None:
        """Why this 2xx should have been a refusal, or None."""
        if not 200 <= response.status_code < 300:
            return None
        key = (operation.method.upper(), operation.path)
        if caller == ANONYMOUS:
            if operation.path.startswith("/api/") and key not in PUBLIC:
                return f"anonymous request accepted: {response.status_code}"
            return None
        allowed = WRITERS.get(key) or READERS.get(key)
        if allowed is not None and caller not in {_WHO[c] for c in allowed}:
            return f"{caller} may not {key[0]} {key[1]}, got {response.status_code}"
        if caller in self.scoped:
            for name, value in (case.path_parameters or {}).items():
                if name in self.ids and name in SCOPED_PARAMS and value == self.ids[name][1]:
                    return f"{caller} reached station B's {name}={value}: {response.status_code}"
        return None


# Parameters whose station B row no role but the bureau may see or touch.
SCOPED_PARAMS = {
    "unit_id",
    "contact_id",
    "incident_id",
    "case_id",
    "party_id",
    "hazard_id",
    "inspection_id",
    "request_id",
    "person_id",
    "employment_id",
    "instruction_id",
    "assistance_id",
}


async def make_fuzz_world(db: AsyncSession, client: httpx.AsyncClient) -> FuzzWorld:
    linking.invalidate()
    routing.invalidate()
    w = await make_world(db)
    fw = FuzzWorld(world=w, db=db, scoped=set(CALLERS) - {"bureau_admin"})
    for who in (*CALLERS, "station_officer_b"):
        fw.headers[who] = await bearer(db, w.users[who])
    a1, b1 = w.units["a1"], w.units["b1"]
    fw.ids["unit_id"] = (a1, b1)
    fw.ids["contact_id"] = (w.contacts["a1"], w.contacts["b1"])
    fw.ids["station_id"] = (w.station_a, w.station_b)

    fw.ids["incident_id"] = (
        await add_incident(db, station_id=w.station_a, unit_id=a1, reported_at=NOW - dt.timedelta(hours=2)),
        await add_incident(db, station_id=w.station_b, unit_id=b1, reported_at=NOW - dt.timedelta(hours=2)),
    )

    team_b = MediationTeam(name="老兵驿站", kind="veterans", station_id=w.station_b, specialties="labor")
    db.add(team_b)
    await db.commit()
    fw.ids["team_id"] = (w.team, team_b.id)
    cases = (
        await add_case(db, station_id=w.station_a, team_id=w.team, unit_id=a1, opened_at=NOW),
        await add_case(db, station_id=w.station_b, team_id=team_b.id, unit_id=b1, opened_at=NOW),
    )
    fw.ids["case_id"] = cases
    parties = [await db.scalar(select(MediationParty.id).where(MediationParty.case_id == c)) for c in cases]
    fw.ids["party_id"] = (parties[0], parties[1])

    await hazard_service.ensure_checklists(db)
    await db.commit()
    hazards = (await add_hazard(db, a1, found_at=NOW), await add_hazard(db, b1, found_at=NOW))
    fw.ids["hazard_id"] = hazards
    inspections = [await db.scalar(select(Hazard.inspection_id).where(Hazard.id == h)) for h in hazards]
    fw.ids["inspection_id"] = (inspections[0], inspections[1])
    item = await db.scalar(select(ChecklistItem.id).order_by(ChecklistItem.id))
    fw.ids["item_id"] = (item, item)

    activities = []
    invitations = []
    for station, unit in ((w.station_a, a1), (w.station_b, b1)):
        activity = await add_activity(
            db, station_id=station, kind="roundtable", starts_at=NOW + dt.timedelta(days=3)
        )
        invitations.append(await invite(db, activity, unit))
        activities.append(activity)
    await db.commit()
    fw.ids["activity_id"] = (activities[0], activities[1])
    fw.ids["invitation_id"] = (invitations[0], invitations[1])

    officer = fw.headers["bureau_admin"]
    requests_ = []
    employments = []
    persons = []
    for n, unit in enumerate((a1, b1)):
        r = await client.post(
            "/api/v1/requests",
            json={"kind": "other", "title": "门口路灯坏了", "body": "请协调", "unit_id": unit},
            headers=officer,
        )
        assert r.status_code == 201, r.text
        requests_.append(r.json()["id"])
        r = await client.post("/api/v1/workers/hires", json=hire_body(unit, 700 + n), headers=officer)
        assert r.status_code == 201, r.text
        employments.append(r.json()["id"])
        persons.append(r.json()["person_id"])
    fw.ids["request_id"] = (requests_[0], requests_[1])
    fw.ids["employment_id"] = (employments[0], employments[1])
    fw.ids["person_id"] = (persons[0], persons[1])

    await messaging_service.ensure_channels(db)
    await db.commit()
    channels = []
    instructions = []
    assistance = []
    for station, who in ((w.station_a, "station_officer"), (w.station_b, "station_officer_b")):
        channel = await db.scalar(select(Channel.id).where(Channel.key == f"station:{station}"))
        channels.append(channel)
        r = await client.post(
            "/api/v1/messaging/instructions",
            json={
                "channel_id": channel,
                "title": "做好居住证登记",
                "body": "本周内完成员工居住登记",
                "deadline": (NOW + dt.timedelta(days=2)).isoformat(),
            },
            headers=fw.headers[who],
        )
        assert r.status_code == 201, r.text
        instructions.append(r.json()["id"])
        r = await client.post(
            "/api/v1/messaging/assistance",
            json={"description": "走失一名5岁男孩", "lat": 30.84, "lng": 120.26, "radius_m": 500},
            headers=fw.headers[who],
        )
        assert r.status_code == 201, r.text
        assistance.append(r.json()["id"])
    fw.ids["channel_id"] = (channels[0], channels[1])
    fw.ids["instruction_id"] = (instructions[0], instructions[1])
    fw.ids["assistance_id"] = (assistance[0], assistance[1])
    fw.own_refs = {
        "unit_id": a1,
        "station_id": w.station_a,
        "team_id": w.team,
        "service_point_id": w.sp_a,
        "channel_id": channels[0],
    }
    return fw
