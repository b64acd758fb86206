"""The authorization matrix as data: every route of the app × every role × {own, other} object.

``MATRIX`` names each route (method + path template exactly as ``app.routes`` has it) and how to
call it: a valid body, so that a refusal is the authorization's and not the validation's.
``EXPECT[(method, path)] = (default, {role: exception})`` says what each role gets:

* object routes (``{id}`` parameters, and writes whose body names a station or unit, ``sided``):
  ``"own/other"``, e.g. ``"200/404"``: the own object is unit a1 / station A / the mediator's team
  / the partner's zone, the other one unit b1 / station B / the second team (``authz_world``);
* lists and summaries: ``"200#3"`` = status 200 and ``total`` (or item count) 3; ``"200"`` for an
  answer that is not a page of items.

Anonymous callers get 401 on the API and a 303 to ``/login`` on pages unless ``EXPECT`` says
otherwise. Out of scope is 404, a role that may not act is 403 (some routes check the role after
loading the object, so a role refused anyway sees 404 on the other side: both are refusals).

The cells of a route run in ``authz_world.ROLES`` order (least privileged first), own before
other, and routes in ``MATRIX`` order, on one world: a success can change the state a later cell
meets. Those cells expect the state's answer (409 ``invalid_state``, or a page's 422 re-render),
which still proves the role passed authorization; they are marked ``# state``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.security.authz_world import OWN, AuthzWorld, tiny_png, xlsx_sheet

LOCAL = dt.timezone(dt.timedelta(hours=8))
_counter = itertools.count(1)


def n() -> int:
    """A fresh number, so two successful creates never collide on a unique key."""
    return next(_counter)


@dataclass(frozen=True)
class Call:
    json: Any = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


Body = Callable[[AuthzWorld, str, str], Call]


@dataclass(frozen=True)
class R:
    method: str
    path: str
    body: Body | None = None
    # Write routes whose body (not the path) names the scope: run own and other like object routes.
    sided: bool = False
    # Parameters named like another domain's (eco incidents' {incident_id}).
    param_alias: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def has_object(self) -> bool:
        return "{" in self.path or self.sided


def side_id(aw: AuthzWorld, side: str, name: str) -> Any:
    own, other = aw.ids[name]
    return own if side == OWN else other


def unit(aw: AuthzWorld, side: str) -> int:
    return int(side_id(aw, side, "unit_id"))


def station(aw: AuthzWorld, side: str) -> int:
    return int(side_id(aw, side, "station_id"))


def at(day: int, hour: int = 9) -> str:
    return dt.datetime(2026, 11, day, hour, tzinfo=LOCAL).isoformat()


def J(payload: Callable[[AuthzWorld, str, str], Any]) -> Body:
    return lambda aw, side, who: Call(json=payload(aw, side, who))


def F(payload: Callable[[AuthzWorld, str, str], dict[str, Any]]) -> Body:
    return lambda aw, side, who: Call(data=payload(aw, side, who))


def Q(params: dict[str, Any]) -> Body:
    return lambda aw, side, who: Call(params=params)


NONE: Body = lambda aw, side, who: Call()  # noqa: E731 - a write without a body


def _inspection(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    items = aw.checklist["garment"]
    return {"unit_id": unit(aw, side), "results": [{"item_id": i, "result": "pass"} for i in items[:2]]}


def _case(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "walk_in",
        "dispute_type": "labor",
        "summary": "拖欠工资",
        "parties": [{"name": "张三", "role": "applicant"}],
    }
    if who != "unit_security":
        body["station_id"] = station(aw, side)
    body["unit_id"] = unit(aw, side)
    return body


def _hire(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    from eqian.core.ids import make_resident_id

    k = n()
    return {
        "unit_id": unit(aw, side),
        "name": "孙八",
        "id_number": make_resident_id("330502", dt.date(1992, 2, 2), 100 + k),
        "phone": f"1391230{k:04d}",
        "hired_on": "2026-02-01",
    }


def _manifest(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    return {
        "manifest_no": f"M-T-{n():05d}",
        "shipped_at": at(5),
        "shipped_t": 1.0,
        "carrier_id": aw.ids["carrier_id"][0],
        "vehicle_plate": "浙E·B5678",
        "facility_id": aw.ids["facility_id"][0],
    }


def _instruction(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    return {
        "channel_id": side_id(aw, side, "channel_id"),
        "title": "防汛通知",
        "deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat(),
    }


def _activity(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    start = dt.datetime(2027, 1, 1 + n() % 27, 14, tzinfo=LOCAL)
    return {
        "station_id": station(aw, side),
        "kind": "antifraud_training",
        "title": "反诈培训",
        "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=1)).isoformat(),
    }


def _ledger_form(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    label = "a1" if side == OWN else "b1"
    return {
        "process_id": str(aw.processes[label]),
        "produced_on": "2026-11-06",
        "aluminium_t": "3.5",
        "note": "",
    }


def _inspect_form(aw: AuthzWorld, side: str, who: str) -> dict[str, Any]:
    # Every item on the form needs an answer, including items added by earlier cells.
    return {f"result_{i}": "pass" for i in range(1, 100)}


def _sided_json(fn: Callable[[AuthzWorld, str, str], Any]) -> dict[str, Any]:
    return {"body": J(fn), "sided": True}


# Routes whose cells are not "role × object" (a login, a logout, the API docs): the test checks
# them with their own rules, listed here so the completeness check knows them.
SPECIAL: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "public: the API description (no data)",
    ("GET", "/api/docs"): "public: Swagger UI page (no data)",
    ("GET", "/docs/oauth2-redirect"): "public: Swagger UI OAuth helper (no data)",
    ("GET", "/healthz"): "public: load-balancer probe (no data)",
    ("POST", "/api/v1/auth/token"): "public: the login itself",
    ("POST", "/api/v1/auth/logout"): "self: ends the caller's own session",
    ("GET", "/api/v1/auth/me"): "self: the caller's own account",
    ("POST", "/api/v1/auth/password"): "self: the caller's own password",
    ("GET", "/login"): "public: the login page",
    ("POST", "/login"): "public: the login form",
    ("POST", "/logout"): "self: ends the caller's own page session",
    ("GET", "/lang/{code}"): "public: sets the language cookie",
}
# Not request/response routes.
EXCLUDED = {"/ws": "WebSocket, tested in tests/messaging/test_ws.py", "/static": "static files mount"}

MATRIX: list[R] = [
    # --- organizations -------------------------------------------------------------------------
    R("GET", "/api/v1/stations"),
    R("GET", "/api/v1/stations/{station_id}"),
    R("GET", "/api/v1/service-points"),
    R("GET", "/api/v1/unit-categories"),
    R("GET", "/api/v1/units"),
    R(
        "POST",
        "/api/v1/units",
        **_sided_json(
            lambda aw, side, who: {
                "name": f"测试企业{n()}",
                "credit_code": __import__("tests.factories", fromlist=["credit_code"]).credit_code(),
                "category_code": "garment",
                "station_id": station(aw, side),
            }
        ),
    ),
    R("GET", "/api/v1/units/{unit_id}"),
    R("PATCH", "/api/v1/units/{unit_id}", body=J(lambda aw, side, who: {"address": f"织里镇测试路{n()}号"})),
    R(
        "PUT",
        "/api/v1/units/{unit_id}/liaison",
        body=J(lambda aw, side, who: {"officer_id": aw.users["liaison_officer"].id}),
    ),
    R(
        "POST",
        "/api/v1/units/{unit_id}/contacts",
        body=J(lambda aw, side, who: {"name": "赵安全", "role": "safety_advisor", "phone": "13812340000"}),
    ),
    R("POST", "/api/v1/units/{unit_id}/contacts/{contact_id}/reveal", body=NONE),
    R("GET", "/"),
    R("GET", "/units"),
    R("GET", "/units/{unit_id}"),
    R("POST", "/units/{unit_id}/contacts/{contact_id}/reveal", body=F(lambda aw, side, who: {})),
    R("GET", "/stations/{station_id}"),
    # --- user administration -------------------------------------------------------------------
    R("GET", "/api/v1/users"),
    R(
        "POST",
        "/api/v1/users",
        sided=True,
        body=J(
            lambda aw, side, who: {
                "username": f"officer_{n()}",
                "display_name": "新民警",
                "password": "Str0ng-pass-2026",
                "role": "station_officer",
                "station_id": station(aw, side),
            }
        ),
    ),
    R("GET", "/api/v1/users/{user_id}"),
    R("PATCH", "/api/v1/users/{user_id}", body=J(lambda aw, side, who: {"display_name": f"改名{n()}"})),
    R(
        "POST",
        "/api/v1/users/{user_id}/reset-password",
        body=J(lambda aw, side, who: {"new_password": f"Reset-pass-{n():04d}x"}),
    ),
    # --- notifications -------------------------------------------------------------------------
    R("GET", "/api/v1/notifications"),
    R("GET", "/api/v1/notifications/deliveries"),
    R("POST", "/api/v1/notifications/{notification_id}/read", body=NONE),
    # --- activities ----------------------------------------------------------------------------
    R("GET", "/api/v1/activities"),
    R("POST", "/api/v1/activities", **_sided_json(_activity)),
    R(
        "POST",
        "/api/v1/activities/roundtables/schedule",
        **_sided_json(
            lambda aw, side, who: {
                "station_id": station(aw, side),
                "weeks": 1,
                "start": f"2027-0{2 + n() % 7}-01",
            }
        ),
    ),
    R("GET", "/api/v1/activities/participation"),
    R("GET", "/api/v1/activities/{activity_id}"),
    R(
        "PATCH",
        "/api/v1/activities/{activity_id}",
        body=J(lambda aw, side, who: {"location": f"会议室{n()}"}),
    ),
    R(
        "POST",
        "/api/v1/activities/{activity_id}/invitations",
        body=J(lambda aw, side, who: {"unit_ids": [aw.units["a2" if side == OWN else "b2"]]}),
    ),
    R(
        "POST",
        "/api/v1/activities/{activity_id}/invitations/{invitation_id}/response",
        body=J(lambda aw, side, who: {"response": "accepted"}),
    ),
    R(
        "POST",
        "/api/v1/activities/{activity_id}/invitations/{invitation_id}/attendance",
        body=J(lambda aw, side, who: {"attended": True, "attendee_count": 2}),
    ),
    R("GET", "/api/v1/activities/{activity_id}/issues"),
    R(
        "POST",
        "/api/v1/activities/{activity_id}/issues",
        body=J(lambda aw, side, who: {"text": "希望增加夜间巡逻"}),
    ),
    R("GET", "/activities"),
    R("GET", "/activities/{activity_id}"),
    R(
        "POST",
        "/activities/{activity_id}/invitations/{invitation_id}/attendance",
        body=F(lambda aw, side, who: {"attended": "yes", "attendee_count": "3"}),
    ),
    R(
        "POST",
        "/activities/{activity_id}/invitations/{invitation_id}/response",
        body=F(lambda aw, side, who: {"response": "accepted"}),
    ),
    R("POST", "/activities/{activity_id}/minutes", body=F(lambda aw, side, who: {"minutes": "会议纪要"})),
    R("POST", "/activities/{activity_id}/issues", body=F(lambda aw, side, who: {"text": "停车难"})),
    # --- hazards -------------------------------------------------------------------------------
    R("GET", "/api/v1/inspections/checklist-items"),
    R(
        "POST",
        "/api/v1/inspections/checklist-items",
        body=J(
            lambda aw, side, who: {
                "category_code": "garment",
                "code": f"authz_{n()}",
                "text": "疏散通道畅通",
                "severity": "medium",
            }
        ),
    ),
    R("POST", "/api/v1/inspections/checklist-items/{item_id}/retire", body=NONE),
    R("GET", "/api/v1/inspections"),
    R("GET", "/api/v1/inspections/{inspection_id}"),
    R("POST", "/api/v1/inspections", **_sided_json(_inspection)),
    R("GET", "/api/v1/hazards"),
    R("GET", "/api/v1/hazards/stats"),
    R("GET", "/api/v1/hazards/photos/{name}"),
    R("GET", "/api/v1/hazards/{hazard_id}"),
    R(
        "POST",
        "/api/v1/hazards/{hazard_id}/evidence",
        body=lambda aw, side, who: Call(
            data={"note": "已更换灭火器"}, files={"photo": ("fix.png", tiny_png(), "image/png")}
        ),
    ),
    R(
        "POST",
        "/api/v1/hazards/{hazard_id}/review",
        body=J(lambda aw, side, who: {"decision": "reject", "reason": "照片不清"}),
    ),
    R("GET", "/hazards"),
    R("GET", "/hazards/inspect/{unit_id}"),
    R("POST", "/hazards/inspect/{unit_id}", body=F(_inspect_form)),
    R("GET", "/hazards/inspections/{inspection_id}"),
    R("GET", "/hazards/{hazard_id}"),
    R("POST", "/hazards/{hazard_id}/evidence", body=F(lambda aw, side, who: {"note": "已整改"})),
    R(
        "POST",
        "/hazards/{hazard_id}/review",
        body=F(lambda aw, side, who: {"decision": "reject", "reason": "未整改"}),
    ),
    # --- workforce -----------------------------------------------------------------------------
    R("GET", "/api/v1/workers"),
    R("POST", "/api/v1/workers/hires", **_sided_json(_hire)),
    R(
        "POST",
        "/api/v1/workers/import",
        sided=True,
        body=lambda aw, side, who: Call(
            data={"unit_id": str(unit(aw, side)), "dry_run": "true"},
            files={"file": ("hr.xlsx", xlsx_sheet(), "application/octet-stream")},
        ),
    ),
    R("GET", "/api/v1/workers/compliance"),
    R("GET", "/api/v1/workers/persons/{person_id}"),
    R("POST", "/api/v1/workers/persons/{person_id}/reveal", body=NONE),
    R(
        "PUT",
        "/api/v1/workers/persons/{person_id}/residence",
        body=J(lambda aw, side, who: {"status": "registered", "registered_on": "2026-02-03"}),
    ),
    R("GET", "/api/v1/workers/{employment_id}"),
    R(
        "POST",
        "/workforce/units/{unit_id}/persons/{person_id}/residence",
        body=F(lambda aw, side, who: {"status": "registered", "registered_on": "2026-02-04"}),
    ),
    R(
        "POST",
        "/api/v1/workers/{employment_id}/departure",
        body=J(lambda aw, side, who: {"left_on": "2026-11-10"}),
    ),
    R("GET", "/workforce"),
    R("GET", "/workforce/units/{unit_id}"),
    R(
        "POST",
        "/workforce/units/{unit_id}/hires",
        body=F(lambda aw, side, who: {k: str(v) for k, v in _hire(aw, side, who).items() if k != "unit_id"}),
    ),
    R(
        "POST",
        "/workforce/units/{unit_id}/workers/{employment_id}/departure",
        body=F(lambda aw, side, who: {"left_on": "2026-11-11"}),
    ),
    R(
        "POST",
        "/workforce/units/{unit_id}/import",
        body=lambda aw, side, who: Call(
            data={"dry_run": "1"},
            files={"file": ("hr.xlsx", xlsx_sheet(), "application/octet-stream")},
        ),
    ),
    # --- environment ---------------------------------------------------------------------------
    R("GET", "/api/v1/environment/smelters"),
    R("GET", "/api/v1/environment/smelters/{unit_id}"),
    R(
        "POST",
        "/api/v1/environment/units/{unit_id}/processes",
        body=J(lambda aw, side, who: {"name": f"反射炉{n()}", "coefficient_kg_per_t": 25.0}),
    ),
    R(
        "PATCH",
        "/api/v1/environment/units/{unit_id}/processes/{process_id}",
        body=J(lambda aw, side, who: {"coefficient_kg_per_t": 40.0 + n() / 100}),
    ),
    R("GET", "/api/v1/environment/facilities"),
    R("GET", "/api/v1/environment/facilities/{facility_id}"),
    R(
        "POST",
        "/api/v1/environment/facilities",
        body=J(
            lambda aw, side, who: {
                "name": f"处置站{n()}",
                "licence_no": f"ZJ-HW-9{n():03d}",
                "licensed_capacity_t_per_year": 100,
            }
        ),
    ),
    R("GET", "/api/v1/environment/carriers"),
    R("GET", "/api/v1/environment/carriers/{carrier_id}"),
    R(
        "POST",
        "/api/v1/environment/carriers",
        body=J(lambda aw, side, who: {"name": f"运输公司{n()}", "licence_no": f"ZJ-T-9{n():03d}"}),
    ),
    R("GET", "/api/v1/environment/units/{unit_id}/ledger", body=Q({"period": "2026-11"})),
    R(
        "POST",
        "/api/v1/environment/units/{unit_id}/production",
        body=J(
            lambda aw, side, who: {
                "process_id": aw.processes["a1" if side == OWN else "b1"],
                "produced_on": "2026-11-05",
                "aluminium_t": 2.0,
            }
        ),
    ),
    R(
        "POST",
        "/api/v1/environment/units/{unit_id}/stock-counts",
        body=J(lambda aw, side, who: {"counted_at": at(6), "ash_t": 0.5}),
    ),
    R("POST", "/api/v1/environment/units/{unit_id}/manifests", body=J(_manifest)),
    R(
        "POST",
        "/api/v1/environment/units/{unit_id}/manifests/{manifest_no}/receipts",
        body=J(lambda aw, side, who: {"received_at": at(7), "received_t": 2.4}),
    ),
    R("GET", "/api/v1/environment/balance"),
    R("GET", "/api/v1/environment/units/{unit_id}/balance"),
    R("GET", "/api/v1/environment/alerts"),
    R("GET", "/api/v1/environment/alerts/{alert_id}"),
    R("POST", "/api/v1/environment/checks", body=NONE),
    R("GET", "/api/v1/environment/eco-incidents"),
    R(
        "GET",
        "/api/v1/environment/eco-incidents/{incident_id}",
        param_alias={"incident_id": "incident_id@eco"},
    ),
    R(
        "POST",
        "/api/v1/environment/eco-incidents",
        **_sided_json(
            lambda aw, side, who: {
                "kind": "dumping",
                "occurred_at": at(8, 23),
                "lat": 30.5,
                "lng": 120.5,
                "station_id": station(aw, side),
                "description": "倾倒垃圾",
            }
        ),
    ),
    R("GET", "/api/v1/environment/patrols"),
    R("GET", "/api/v1/environment/patrols/{patrol_id}"),
    R(
        "POST",
        "/api/v1/environment/patrols",
        **_sided_json(
            lambda aw, side, who: {
                "kind": "persuasion",
                "started_at": at(9, 20),
                "lat": 30.5,
                "lng": 120.5,
                "station_id": station(aw, side),
            }
        ),
    ),
    R("GET", "/api/v1/environment/zones"),
    R("GET", "/api/v1/environment/zones/{zone_id}"),
    R("GET", "/environment"),
    R("GET", "/environment/smelters/{unit_id}"),
    R("GET", "/environment/smelters/{unit_id}/ledger"),
    R("POST", "/environment/smelters/{unit_id}/ledger/{kind}", body=F(_ledger_form)),
    R("GET", "/environment/alerts"),
    R("GET", "/environment/map"),
    # --- incidents -----------------------------------------------------------------------------
    R(
        "POST",
        "/api/v1/incidents",
        **_sided_json(
            lambda aw, side, who: {
                "description": "店内有人吵架打架",
                "unit_ref": str(unit(aw, side)),
                "station_id": station(aw, side),
            }
        ),
    ),
    R("POST", "/api/v1/incidents/classify", body=J(lambda aw, side, who: {"text": "工厂拖欠工资"})),
    R("GET", "/api/v1/incidents"),
    R("GET", "/api/v1/incidents/routing-rules"),
    R(
        "POST",
        "/api/v1/incidents/routing-rules",
        body=J(
            lambda aw, side, who: {
                "category": "labor",
                "police": "no",
                "unit_category": ["market", "property", "logistics", "garment"][n() % 4],
                "route": "mediation",
                "sla_hours": 48 + n(),
            }
        ),
    ),
    R(
        "PATCH",
        "/api/v1/incidents/routing-rules/{rule_id}",
        body=J(lambda aw, side, who: {"sla_hours": 24 + n()}),
    ),
    R("DELETE", "/api/v1/incidents/routing-rules/{rule_id}", body=NONE),
    R("GET", "/api/v1/incidents/{incident_id}"),
    R("POST", "/api/v1/incidents/{incident_id}/triage", body=J(lambda aw, side, who: {"route": "dispatch"})),
    R(
        "POST",
        "/api/v1/incidents/{incident_id}/transition",
        body=J(lambda aw, side, who: {"action": "start"}),
    ),
    R(
        "POST",
        "/api/v1/incidents/{incident_id}/link",
        body=J(
            lambda aw, side, who: {"unit_id": aw.units["a2" if side == OWN else "b2"], "reason": "地址更正"}
        ),
    ),
    R("POST", "/api/v1/incidents/{incident_id}/reveal-phone", body=NONE),
    R("GET", "/incidents"),
    R("GET", "/incidents/new"),
    R(
        "POST",
        "/incidents/new",
        sided=True,
        body=F(lambda aw, side, who: {"description": "门口有人打架", "station_id": str(station(aw, side))}),
    ),
    R("GET", "/incidents/{incident_id}"),
    R("POST", "/incidents/{incident_id}/triage", body=F(lambda aw, side, who: {"route": "dispatch"})),
    R("POST", "/incidents/{incident_id}/transition", body=F(lambda aw, side, who: {"action": "resolve"})),
    R(
        "POST",
        "/incidents/{incident_id}/link",
        body=F(
            lambda aw, side, who: {"unit_id": str(aw.units["a1" if side == OWN else "b1"]), "reason": "核实"}
        ),
    ),
    R("POST", "/incidents/{incident_id}/reveal-phone", body=F(lambda aw, side, who: {})),
    # --- mediation -----------------------------------------------------------------------------
    R("GET", "/api/v1/mediation/teams"),
    R(
        "POST",
        "/api/v1/mediation/teams",
        **_sided_json(
            lambda aw, side, who: {
                "name": f"调解队{n()}",
                "kind": "community",
                "station_id": station(aw, side),
            }
        ),
    ),
    R(
        "POST",
        "/api/v1/mediation/teams/{team_id}/members",
        body=J(lambda aw, side, who: {"name": f"调解员{n()}", "specialties": ["labor"]}),
    ),
    R("GET", "/api/v1/mediation/cases"),
    R("POST", "/api/v1/mediation/cases", **_sided_json(_case)),
    R("GET", "/api/v1/mediation/cases/{case_id}"),
    R(
        "POST",
        "/api/v1/mediation/cases/{case_id}/sessions",
        body=J(lambda aw, side, who: {"note": "双方到场"}),
    ),
    R(
        "POST",
        "/api/v1/mediation/cases/{case_id}/assign",
        body=J(lambda aw, side, who: {"team_id": aw.teams["own" if side == OWN else "other"]}),
    ),
    R("POST", "/api/v1/mediation/cases/{case_id}/parties/{party_id}/reveal", body=NONE),
    R("POST", "/mediation/cases/{case_id}/sessions", body=F(lambda aw, side, who: {"note": "第二次调解"})),
    R(
        "POST",
        "/mediation/cases/{case_id}/assign",
        body=F(lambda aw, side, who: {"team_id": str(aw.teams["own" if side == OWN else "other"])}),
    ),
    R("POST", "/mediation/cases/{case_id}/parties/{party_id}/reveal", body=F(lambda aw, side, who: {})),
    R(
        "POST",
        "/api/v1/mediation/cases/{case_id}/outcome",
        body=J(lambda aw, side, who: {"outcome": "failed", "note": "调解未成"}),
    ),
    R("GET", "/api/v1/mediation/stats"),
    R("GET", "/mediation"),
    R("GET", "/mediation/new"),
    R(
        "POST",
        "/mediation/new",
        sided=True,
        body=F(
            lambda aw, side, who: {
                "source": "walk_in",
                "station_id": str(station(aw, side)),
                "unit_id": str(unit(aw, side)),
                "dispute_type": "neighbor",
                "summary": "噪音纠纷",
                "applicant_name": "王二",
            }
        ),
    ),
    R("GET", "/mediation/cases/{case_id}"),
    R("POST", "/mediation/cases/{case_id}/outcome", body=F(lambda aw, side, who: {"outcome": "failed"})),
    # --- requests ------------------------------------------------------------------------------
    R("GET", "/api/v1/requests/departments"),
    R(
        "POST",
        "/api/v1/requests/departments",
        **_sided_json(
            lambda aw, side, who: {
                "code": f"dept_{n()}",
                "name": "交警中队",
                "kinds": ["traffic"],
                "station_id": station(aw, side),
            }
        ),
    ),
    R("GET", "/api/v1/requests/stats"),
    R("GET", "/api/v1/requests"),
    R(
        "POST",
        "/api/v1/requests",
        **_sided_json(
            lambda aw, side, who: {
                "kind": "traffic",
                "title": "门口拥堵",
                "body": "上下班高峰",
                "unit_id": unit(aw, side),
            }
        ),
    ),
    R("GET", "/api/v1/requests/{request_id}"),
    R(
        "POST",
        "/api/v1/requests/{request_id}/route",
        body=J(lambda aw, side, who: {"department_id": side_id(aw, side, "department_id")}),
    ),
    R("POST", "/api/v1/requests/{request_id}/reply", body=J(lambda aw, side, who: {"text": "已安排"})),
    R("POST", "/requests/{request_id}/{action}", body=F(lambda aw, side, who: {"text": "收到"})),
    R(
        "POST",
        "/api/v1/requests/{request_id}/resolve",
        body=J(lambda aw, side, who: {"resolution": "已完成培训"}),
    ),
    R("POST", "/api/v1/requests/{request_id}/rate", body=J(lambda aw, side, who: {"rating": 5})),
    R("GET", "/requests"),
    R(
        "POST",
        "/requests",
        body=F(lambda aw, side, who: {"kind": "permits", "title": "办证咨询", "body": "营业执照变更"}),
    ),
    R("GET", "/requests/{request_id}"),
    # --- messaging -----------------------------------------------------------------------------
    R("GET", "/api/v1/messaging/channels"),
    R(
        "POST",
        "/api/v1/messaging/channels",
        **_sided_json(lambda aw, side, who: {"name": f"群组{n()}", "unit_ids": [unit(aw, side)]}),
    ),
    R(
        "POST",
        "/api/v1/messaging/channels/direct",
        **_sided_json(
            lambda aw, side, who: (
                {"officer_id": aw.users["station_officer" if side == OWN else "station_officer_b"].id}
                if who == "unit_security"
                else {"unit_id": unit(aw, side)}
            )
        ),
    ),
    R("GET", "/api/v1/messaging/channels/{channel_id}"),
    R("GET", "/api/v1/messaging/channels/{channel_id}/messages"),
    R(
        "POST",
        "/api/v1/messaging/channels/{channel_id}/messages",
        body=J(lambda aw, side, who: {"body": "收到"}),
    ),
    R(
        "POST",
        "/api/v1/messaging/attachments",
        body=lambda aw, side, who: Call(files={"file": ("a.png", tiny_png(), "image/png")}),
    ),
    R("GET", "/api/v1/messaging/attachments/{attachment_id}"),
    R("POST", "/api/v1/messaging/instructions", **_sided_json(_instruction)),
    R("GET", "/api/v1/messaging/instructions"),
    R("GET", "/api/v1/messaging/instructions/{instruction_id}"),
    R("GET", "/api/v1/messaging/instructions/{instruction_id}/receipts"),
    R(
        "POST",
        "/api/v1/messaging/instructions/{instruction_id}/ack",
        body=J(lambda aw, side, who: {"text": "已落实"}),
    ),
    R("POST", "/api/v1/messaging/instructions/{instruction_id}/read", body=NONE),
    R("GET", "/api/v1/messaging/inbox"),
    R("GET", "/api/v1/messaging/escalations"),
    R(
        "POST",
        "/api/v1/messaging/assistance",
        body=J(
            lambda aw, side, who: {
                "description": "协查可疑车辆",
                "lat": 30.84,
                "lng": 120.26,
                "radius_m": 1000,
            }
        ),
    ),
    R("GET", "/api/v1/messaging/assistance"),
    R("GET", "/api/v1/messaging/assistance/{assistance_id}"),
    R(
        "POST",
        "/api/v1/messaging/assistance/{assistance_id}/replies",
        body=J(lambda aw, side, who: {"body": "门口监控拍到"}),
    ),
    R(
        "POST",
        "/api/v1/messaging/assistance/{assistance_id}/close",
        body=J(lambda aw, side, who: {"outcome": "已找到"}),
    ),
    R("GET", "/messaging"),
    R("GET", "/messaging/units-near", body=Q({"lat": "30.84", "lng": "120.26", "radius_m": "1000"})),
    # --- safety index, cockpit -----------------------------------------------------------------
    R("GET", "/api/v1/safety-index"),
    R("GET", "/api/v1/units/{unit_id}/safety-index"),
    R("POST", "/api/v1/safety-index/compute", body=J(lambda aw, side, who: {"month": "2026-09"})),
    R("GET", "/safety-index"),
    R("GET", "/api/v1/cockpit/summary"),
    R("GET", "/api/v1/cockpit/trend", body=Q({"kpi": "incidents_total"})),
    R("GET", "/api/v1/cockpit/breakdown", body=Q({"kpi": "incidents_total"})),
    R("GET", "/api/v1/cockpit/map"),
    R("GET", "/api/v1/cockpit/outline"),
    R("GET", "/api/v1/cockpit/feed"),
    R("POST", "/api/v1/cockpit/refresh", body=J(lambda aw, side, who: {"months": ["2026-10"]})),
    R("GET", "/api/v1/cockpit/drill", body=Q({"kpi": "incidents_total"})),
    R("GET", "/cockpit"),
    R("GET", "/cockpit/big-screen"),
    R("GET", "/cockpit/drill", body=Q({"kpi": "incidents_total"})),
]


EXPECT: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("GET", "/api/v1/stations"): ("200#1", {"mediator": "200#0", "bureau_admin": "200#2"}),
    ("GET", "/api/v1/stations/{station_id}"): ("200/404", {"mediator": "404/404", "bureau_admin": "200/200"}),
    ("GET", "/api/v1/service-points"): ("200#1", {"mediator": "200#0", "bureau_admin": "200#2"}),
    ("GET", "/api/v1/unit-categories"): ("200#11", {}),
    ("GET", "/api/v1/units"): (
        "200#1",
        {
            "mediator": "200#0",
            "service_point_staff": "200#2",
            "station_officer": "200#3",
            "bureau_admin": "200#5",
        },
    ),
    ("POST", "/api/v1/units"): ("403/403", {"station_officer": "201/404", "bureau_admin": "201/201"}),
    ("GET", "/api/v1/units/{unit_id}"): ("200/404", {"mediator": "404/404", "bureau_admin": "200/200"}),
    ("PATCH", "/api/v1/units/{unit_id}"): (
        "403/404",
        {"mediator": "404/404", "station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("PUT", "/api/v1/units/{unit_id}/liaison"): (  # 422: the liaison belongs to station A, not b1's
        "403/404",
        {"mediator": "404/404", "station_officer": "200/404", "bureau_admin": "200/422"},
    ),
    ("POST", "/api/v1/units/{unit_id}/contacts"): (
        "201/404",
        {
            "partner_officer": "403/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "201/201",
        },
    ),
    ("POST", "/api/v1/units/{unit_id}/contacts/{contact_id}/reveal"): (
        "403/404",
        {
            "mediator": "404/404",
            "liaison_officer": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("GET", "/"): ("200", {}),
    ("GET", "/units"): ("200", {}),
    ("GET", "/units/{unit_id}"): ("200/404", {"mediator": "404/404", "bureau_admin": "200/200"}),
    ("POST", "/units/{unit_id}/contacts/{contact_id}/reveal"): (
        "403/404",
        {
            "mediator": "404/404",
            "liaison_officer": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("GET", "/stations/{station_id}"): ("200/404", {"mediator": "404/404", "bureau_admin": "200/200"}),
    ("GET", "/api/v1/users"): ("403", {"station_officer": "200#5", "bureau_admin": "200#12"}),
    ("POST", "/api/v1/users"): ("403/403", {"bureau_admin": "201/201"}),
    ("GET", "/api/v1/users/{user_id}"): (
        "403/403",
        {"station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("PATCH", "/api/v1/users/{user_id}"): (
        "403/403",
        {"station_officer": "403/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/users/{user_id}/reset-password"): (
        "403/403",
        {"station_officer": "403/404", "bureau_admin": "204/204"},
    ),
    ("GET", "/api/v1/notifications"): ("200#1", {"bureau_admin": "200#2"}),  # + the world marker
    ("GET", "/api/v1/notifications/deliveries"): ("403", {"bureau_admin": "200#0"}),
    ("POST", "/api/v1/notifications/{notification_id}/read"): ("200/404", {}),
    ("GET", "/api/v1/activities"): (
        "200#1",
        {"partner_officer": "200#0", "mediator": "200#0", "bureau_admin": "200#2"},
    ),
    ("POST", "/api/v1/activities"): ("403/403", {"station_officer": "201/403", "bureau_admin": "201/201"}),
    ("POST", "/api/v1/activities/roundtables/schedule"): (
        "403/403",
        {"station_officer": "200/403", "bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/activities/participation"): ("200#0", {}),
    ("GET", "/api/v1/activities/{activity_id}"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("PATCH", "/api/v1/activities/{activity_id}"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/api/v1/activities/{activity_id}/invitations"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/api/v1/activities/{activity_id}/invitations/{invitation_id}/response"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "unit_security": "200/404",
            "bureau_admin": "403/403",
        },
    ),
    (
        "POST",
        "/api/v1/activities/{activity_id}/invitations/{invitation_id}/attendance",
    ): (  # state: the activity has not started (409), after authorization
        "403/403",
        {"liaison_officer": "409/404", "station_officer": "409/404", "bureau_admin": "409/409"},
    ),
    ("GET", "/api/v1/activities/{activity_id}/issues"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/activities/{activity_id}/issues"): (
        "201/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "201/201",
        },
    ),
    ("GET", "/activities"): ("200", {}),
    ("GET", "/activities/{activity_id}"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/activities/{activity_id}/invitations/{invitation_id}/attendance"): (  # state: not started
        "403/403",
        {"liaison_officer": "409/404", "station_officer": "409/404", "bureau_admin": "409/409"},
    ),
    ("POST", "/activities/{activity_id}/invitations/{invitation_id}/response"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "unit_security": "303/404",
            "bureau_admin": "403/403",
        },
    ),
    ("POST", "/activities/{activity_id}/minutes"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "station_officer": "303/404",
            "bureau_admin": "303/303",
        },
    ),
    ("POST", "/activities/{activity_id}/issues"): (
        "303/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "303/303",
        },
    ),
    ("GET", "/api/v1/inspections/checklist-items"): ("200#18", {}),
    ("POST", "/api/v1/inspections/checklist-items"): ("403", {"bureau_admin": "201"}),
    ("POST", "/api/v1/inspections/checklist-items/{item_id}/retire"): (
        "403/403",
        {"bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/inspections"): ("200#1", {"mediator": "200#0", "bureau_admin": "200#2"}),
    ("GET", "/api/v1/inspections/{inspection_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/inspections"): (
        "403/403",
        {
            "unit_security": "201/404",
            "liaison_officer": "201/404",
            "station_officer": "201/404",
            "bureau_admin": "201/201",
        },
    ),
    ("GET", "/api/v1/hazards"): ("200#1", {"mediator": "200#0", "bureau_admin": "200#2"}),
    ("GET", "/api/v1/hazards/stats"): ("200#1", {"mediator": "200#0", "bureau_admin": "200#2"}),
    ("GET", "/api/v1/hazards/photos/{name}"): ("200/404", {"mediator": "404/404", "bureau_admin": "200/200"}),
    ("GET", "/api/v1/hazards/{hazard_id}"): ("200/404", {"mediator": "404/404", "bureau_admin": "200/200"}),
    ("POST", "/api/v1/hazards/{hazard_id}/evidence"): (
        "403/404",
        {"mediator": "404/404", "unit_security": "200/404", "bureau_admin": "403/403"},
    ),
    ("POST", "/api/v1/hazards/{hazard_id}/review"): (  # state: reviewed by the liaison first
        "403/404",
        {
            "mediator": "404/404",
            "liaison_officer": "200/404",
            "station_officer": "409/404",
            "bureau_admin": "409/409",
        },
    ),
    ("GET", "/hazards"): ("200", {}),
    ("GET", "/hazards/inspect/{unit_id}"): (
        "403/403",
        {
            "unit_security": "200/404",
            "liaison_officer": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/hazards/inspect/{unit_id}"): (
        "403/403",
        {
            "unit_security": "303/404",
            "liaison_officer": "303/404",
            "station_officer": "303/404",
            "bureau_admin": "303/303",
        },
    ),
    ("GET", "/hazards/inspections/{inspection_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/hazards/{hazard_id}"): ("200/404", {"mediator": "404/404", "bureau_admin": "200/200"}),
    ("POST", "/hazards/{hazard_id}/evidence"): (
        "403/404",
        {"mediator": "404/404", "unit_security": "303/404", "bureau_admin": "403/403"},
    ),
    ("POST", "/hazards/{hazard_id}/review"): (  # state
        "403/404",
        {
            "mediator": "404/404",
            "liaison_officer": "303/404",
            "station_officer": "409/404",
            "bureau_admin": "409/409",
        },
    ),
    ("GET", "/api/v1/workers"): (
        "200#1",
        {"partner_officer": "200#0", "mediator": "200#0", "bureau_admin": "200#2"},
    ),
    ("POST", "/api/v1/workers/hires"): (
        "201/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "201/201",
        },
    ),
    ("POST", "/api/v1/workers/import"): (
        "201/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "201/201",
        },
    ),
    ("GET", "/api/v1/workers/compliance"): ("200", {}),
    ("GET", "/api/v1/workers/persons/{person_id}"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/workers/persons/{person_id}/reveal"): (
        "404/404",
        {
            "service_point_staff": "403/404",
            "unit_security": "403/404",
            "liaison_officer": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("PUT", "/api/v1/workers/persons/{person_id}/residence"): (
        "200/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "200/200",
        },
    ),
    ("GET", "/api/v1/workers/{employment_id}"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/workforce/units/{unit_id}/persons/{person_id}/residence"): (
        "303/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "303/303",
        },
    ),
    ("POST", "/api/v1/workers/{employment_id}/departure"): (  # state: the unit recorded the departure first
        "404/404",
        {
            "service_point_staff": "403/404",
            "unit_security": "200/404",
            "liaison_officer": "409/404",
            "station_officer": "409/404",
            "bureau_admin": "409/200",
        },
    ),
    ("GET", "/workforce"): ("200", {"unit_security": "303"}),
    ("GET", "/workforce/units/{unit_id}"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/workforce/units/{unit_id}/hires"): (
        "303/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "303/303",
        },
    ),
    ("POST", "/workforce/units/{unit_id}/workers/{employment_id}/departure"): (  # state
        "409/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "service_point_staff": "403/404",
            "bureau_admin": "409/409",
        },
    ),
    (
        "POST",
        "/workforce/units/{unit_id}/import",
    ): (  # officers: 422, the sheet's worker is already employed (state)
        "404/404",
        {
            "service_point_staff": "403/404",
            "unit_security": "303/404",
            "liaison_officer": "422/404",
            "station_officer": "422/404",
            "bureau_admin": "422/422",
        },
    ),
    ("GET", "/api/v1/environment/smelters"): ("200#1", {"mediator": "200#0", "bureau_admin": "200#2"}),
    ("GET", "/api/v1/environment/smelters/{unit_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/environment/units/{unit_id}/processes"): (
        "403/404",
        {"mediator": "404/404", "station_officer": "201/404", "bureau_admin": "201/201"},
    ),
    ("PATCH", "/api/v1/environment/units/{unit_id}/processes/{process_id}"): (
        "403/404",
        {"mediator": "404/404", "station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/environment/facilities"): (
        "200#2",
        {"mediator": "200#0", "service_point_staff": "200#0"},
    ),
    ("GET", "/api/v1/environment/facilities/{facility_id}"): (
        "200/200",
        {"mediator": "404/404", "service_point_staff": "404/404"},
    ),
    ("POST", "/api/v1/environment/facilities"): ("403", {"bureau_admin": "201"}),
    ("GET", "/api/v1/environment/carriers"): ("200#2", {"mediator": "200#0", "service_point_staff": "200#0"}),
    ("GET", "/api/v1/environment/carriers/{carrier_id}"): (
        "200/200",
        {"mediator": "404/404", "service_point_staff": "404/404"},
    ),
    ("POST", "/api/v1/environment/carriers"): ("403", {"bureau_admin": "201"}),
    ("GET", "/api/v1/environment/units/{unit_id}/ledger"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/environment/units/{unit_id}/production"): (
        "403/404",
        {
            "mediator": "404/404",
            "unit_security": "201/404",
            "station_officer": "201/404",
            "bureau_admin": "201/201",
        },
    ),
    ("POST", "/api/v1/environment/units/{unit_id}/stock-counts"): (
        "403/404",
        {
            "mediator": "404/404",
            "unit_security": "201/404",
            "station_officer": "201/404",
            "bureau_admin": "201/201",
        },
    ),
    ("POST", "/api/v1/environment/units/{unit_id}/manifests"): (
        "403/404",
        {
            "mediator": "404/404",
            "unit_security": "201/404",
            "station_officer": "201/404",
            "bureau_admin": "201/201",
        },
    ),
    (
        "POST",
        "/api/v1/environment/units/{unit_id}/manifests/{manifest_no}/receipts",
    ): (  # partner may confirm receipts (RECEIPT_WRITE_ROLES); then 409 state
        "403/404",
        {
            "partner_officer": "201/404",
            "mediator": "404/404",
            "station_officer": "409/404",
            "bureau_admin": "409/201",
        },
    ),
    ("GET", "/api/v1/environment/balance"): ("200#1", {"mediator": "200#0", "bureau_admin": "200#2"}),
    ("GET", "/api/v1/environment/units/{unit_id}/balance"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/environment/alerts"): ("200#4", {"mediator": "200#0", "bureau_admin": "200#6"}),
    ("GET", "/api/v1/environment/alerts/{alert_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/environment/checks"): ("403", {"bureau_admin": "200"}),
    ("GET", "/api/v1/environment/eco-incidents"): (
        "200#0",
        {"partner_officer": "200#1", "station_officer": "200#1", "bureau_admin": "200#2"},
    ),
    ("GET", "/api/v1/environment/eco-incidents/{incident_id}"): (
        "404/404",
        {"partner_officer": "200/404", "station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/environment/eco-incidents"): (
        "403/403",
        {"partner_officer": "201/422", "station_officer": "201/404", "bureau_admin": "201/201"},
    ),
    ("GET", "/api/v1/environment/patrols"): (
        "200#0",
        {"partner_officer": "200#1", "station_officer": "200#1", "bureau_admin": "200#2"},
    ),
    ("GET", "/api/v1/environment/patrols/{patrol_id}"): (
        "404/404",
        {"partner_officer": "200/404", "station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/environment/patrols"): (
        "403/403",
        {"partner_officer": "201/422", "station_officer": "201/404", "bureau_admin": "201/201"},
    ),
    ("GET", "/api/v1/environment/zones"): (
        "200#0",
        {"partner_officer": "200#1", "station_officer": "200#1", "bureau_admin": "200#2"},
    ),
    ("GET", "/api/v1/environment/zones/{zone_id}"): (
        "404/404",
        {"partner_officer": "200/404", "station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/environment"): ("200", {}),
    ("GET", "/environment/smelters/{unit_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/environment/smelters/{unit_id}/ledger"): (
        "403/404",
        {
            "mediator": "404/404",
            "unit_security": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/environment/smelters/{unit_id}/ledger/{kind}"): (
        "403/404",
        {
            "mediator": "404/404",
            "unit_security": "303/404",
            "station_officer": "303/404",
            "bureau_admin": "303/303",
        },
    ),
    ("GET", "/environment/alerts"): ("200", {}),
    ("GET", "/environment/map"): ("200", {}),
    ("POST", "/api/v1/incidents"): ("403/403", {"station_officer": "201/422", "bureau_admin": "201/201"}),
    ("POST", "/api/v1/incidents/classify"): ("200", {}),
    ("GET", "/api/v1/incidents"): (
        "200#3",
        {
            "mediator": "200#0",
            "service_point_staff": "200#0",
            "unit_security": "200#0",
            "bureau_admin": "200#5",
        },
    ),
    ("GET", "/api/v1/incidents/routing-rules"): (
        "403",
        {"liaison_officer": "200#19", "station_officer": "200#19", "bureau_admin": "200#19"},
    ),
    ("POST", "/api/v1/incidents/routing-rules"): ("403", {"bureau_admin": "201"}),
    ("PATCH", "/api/v1/incidents/routing-rules/{rule_id}"): ("403/403", {"bureau_admin": "200/200"}),
    ("DELETE", "/api/v1/incidents/routing-rules/{rule_id}"): ("403/403", {"bureau_admin": "204/204"}),
    ("GET", "/api/v1/incidents/{incident_id}"): (
        "200/404",
        {
            "mediator": "404/404",
            "service_point_staff": "404/404",
            "unit_security": "404/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/api/v1/incidents/{incident_id}/triage"): (  # state
        "404/404",
        {
            "partner_officer": "403/404",
            "liaison_officer": "403/404",
            "station_officer": "200/404",
            "bureau_admin": "409/200",
        },
    ),
    ("POST", "/api/v1/incidents/{incident_id}/transition"): (  # state
        "404/404",
        {
            "partner_officer": "403/404",
            "liaison_officer": "403/404",
            "station_officer": "200/404",
            "bureau_admin": "409/200",
        },
    ),
    ("POST", "/api/v1/incidents/{incident_id}/link"): (
        "404/404",
        {
            "partner_officer": "403/404",
            "liaison_officer": "403/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/api/v1/incidents/{incident_id}/reveal-phone"): (
        "404/404",
        {"station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/incidents"): ("200", {}),
    ("GET", "/incidents/new"): ("200", {}),
    ("POST", "/incidents/new"): ("403/403", {"station_officer": "303/422", "bureau_admin": "303/303"}),
    ("GET", "/incidents/{incident_id}"): (
        "404/404",
        {"station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/incidents/{incident_id}/triage"): (  # state: triaged through the API already
        "404/404",
        {"station_officer": "409/404", "bureau_admin": "409/409"},
    ),
    ("POST", "/incidents/{incident_id}/transition"): (  # state
        "404/404",
        {"station_officer": "303/404", "bureau_admin": "409/303"},
    ),
    ("POST", "/incidents/{incident_id}/link"): (  # state
        "404/404",
        {"station_officer": "409/404", "bureau_admin": "409/409"},
    ),
    ("POST", "/incidents/{incident_id}/reveal-phone"): (
        "404/404",
        {"station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/mediation/teams"): ("200#2", {"mediator": "200#1"}),
    ("POST", "/api/v1/mediation/teams"): (
        "403/403",
        {"station_officer": "201/422", "bureau_admin": "201/201"},
    ),
    ("POST", "/api/v1/mediation/teams/{team_id}/members"): (
        "403/403",
        {"station_officer": "201/404", "bureau_admin": "201/201"},
    ),
    ("GET", "/api/v1/mediation/cases"): ("200#1", {"partner_officer": "200#0", "bureau_admin": "200#2"}),
    (
        "POST",
        "/api/v1/mediation/cases",
    ): (  # a mediator may file a walk-in case at any station (into their own team): flagged
        "201/404",
        {"partner_officer": "403/403", "mediator": "201/201", "bureau_admin": "201/201"},
    ),
    ("GET", "/api/v1/mediation/cases/{case_id}"): (
        "200/404",
        {"partner_officer": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/mediation/cases/{case_id}/sessions"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "201/404",
            "station_officer": "201/404",
            "bureau_admin": "201/201",
        },
    ),
    ("POST", "/api/v1/mediation/cases/{case_id}/assign"): (
        "403/404",
        {"partner_officer": "404/404", "station_officer": "200/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/mediation/cases/{case_id}/parties/{party_id}/reveal"): (
        "200/404",
        {
            "partner_officer": "404/404",
            "service_point_staff": "403/404",
            "unit_security": "403/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/mediation/cases/{case_id}/sessions"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "303/404",
            "station_officer": "303/404",
            "bureau_admin": "303/303",
        },
    ),
    ("POST", "/mediation/cases/{case_id}/assign"): (
        "403/404",
        {"partner_officer": "404/404", "station_officer": "303/404", "bureau_admin": "303/303"},
    ),
    ("POST", "/mediation/cases/{case_id}/parties/{party_id}/reveal"): (
        "200/404",
        {
            "partner_officer": "404/404",
            "service_point_staff": "403/404",
            "unit_security": "403/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/api/v1/mediation/cases/{case_id}/outcome"): (  # state: closed by the mediator first
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "200/404",
            "station_officer": "409/404",
            "bureau_admin": "409/200",
        },
    ),
    ("GET", "/api/v1/mediation/stats"): (
        "200#3",
        {"partner_officer": "200#0", "mediator": "200#1", "bureau_admin": "200#4"},
    ),
    ("GET", "/mediation"): ("200", {}),
    ("GET", "/mediation/new"): ("200", {"partner_officer": "403"}),
    ("POST", "/mediation/new"): (
        "303/404",
        {"partner_officer": "403/403", "mediator": "303/303", "bureau_admin": "303/303"},
    ),
    ("GET", "/mediation/cases/{case_id}"): (
        "200/404",
        {"partner_officer": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/mediation/cases/{case_id}/outcome"): (  # state: closed through the API
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "422/404",
            "station_officer": "422/404",
            "bureau_admin": "422/422",
        },
    ),
    ("GET", "/api/v1/requests/departments"): ("200#6", {}),
    ("POST", "/api/v1/requests/departments"): ("403/403", {"bureau_admin": "201/201"}),
    ("GET", "/api/v1/requests/stats"): ("200#1", {"partner_officer": "200#0", "mediator": "200#0"}),
    ("GET", "/api/v1/requests"): (
        "200#1",
        {"partner_officer": "200#0", "mediator": "200#0", "bureau_admin": "200#2"},
    ),
    ("POST", "/api/v1/requests"): (
        "403/403",
        {
            "unit_security": "201/404",
            "liaison_officer": "201/404",
            "station_officer": "201/404",
            "bureau_admin": "201/201",
        },
    ),
    ("GET", "/api/v1/requests/{request_id}"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/requests/{request_id}/route"): (
        "404/404",
        {
            "service_point_staff": "403/404",
            "unit_security": "403/404",
            "liaison_officer": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/api/v1/requests/{request_id}/reply"): (
        "404/404",
        {
            "service_point_staff": "403/404",
            "unit_security": "403/404",
            "liaison_officer": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("POST", "/requests/{request_id}/{action}"): (
        "404/404",
        {
            "service_point_staff": "403/404",
            "unit_security": "403/404",
            "liaison_officer": "303/404",
            "station_officer": "303/404",
            "bureau_admin": "303/303",
        },
    ),
    ("POST", "/api/v1/requests/{request_id}/resolve"): (  # state
        "404/404",
        {
            "service_point_staff": "403/404",
            "unit_security": "403/404",
            "liaison_officer": "200/404",
            "station_officer": "409/404",
            "bureau_admin": "409/200",
        },
    ),
    ("POST", "/api/v1/requests/{request_id}/rate"): (
        "403/404",
        {
            "partner_officer": "404/404",
            "mediator": "404/404",
            "unit_security": "200/404",
            "bureau_admin": "403/403",
        },
    ),
    ("GET", "/requests"): ("200", {}),
    ("POST", "/requests"): (  # the page form is a unit's: officers lack unit_id (422)
        "403",
        {"unit_security": "303", "liaison_officer": "422", "station_officer": "422", "bureau_admin": "422"},
    ),
    ("GET", "/requests/{request_id}"): (
        "200/404",
        {"partner_officer": "404/404", "mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/messaging/channels"): (
        "200#4",
        {
            "mediator": "200#0",
            "service_point_staff": "200#5",
            "station_officer": "200#14",
            "bureau_admin": "200#28",
        },
    ),
    ("POST", "/api/v1/messaging/channels"): (
        "403/403",
        {"liaison_officer": "201/422", "station_officer": "201/422", "bureau_admin": "201/201"},
    ),
    ("POST", "/api/v1/messaging/channels/direct"): (
        "403/403",
        {
            "unit_security": "200/404",
            "liaison_officer": "200/404",
            "station_officer": "200/404",
            "bureau_admin": "200/200",
        },
    ),
    ("GET", "/api/v1/messaging/channels/{channel_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/messaging/channels/{channel_id}/messages"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/messaging/channels/{channel_id}/messages"): (
        "403/404",
        {
            "mediator": "404/404",
            "liaison_officer": "201/404",
            "station_officer": "201/404",
            "bureau_admin": "201/201",
        },
    ),
    ("POST", "/api/v1/messaging/attachments"): ("201", {}),
    ("GET", "/api/v1/messaging/attachments/{attachment_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/messaging/instructions"): (
        "403/403",
        {"station_officer": "201/404", "bureau_admin": "201/201"},
    ),
    ("GET", "/api/v1/messaging/instructions"): ("200#3", {"mediator": "200#0", "bureau_admin": "200#5"}),
    ("GET", "/api/v1/messaging/instructions/{instruction_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("GET", "/api/v1/messaging/instructions/{instruction_id}/receipts"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/messaging/instructions/{instruction_id}/ack"): (
        "403/403",
        {"unit_security": "200/404"},
    ),
    ("POST", "/api/v1/messaging/instructions/{instruction_id}/read"): (
        "403/403",
        {"unit_security": "200/404"},
    ),
    ("GET", "/api/v1/messaging/inbox"): ("403", {"unit_security": "200#3"}),
    ("GET", "/api/v1/messaging/escalations"): (
        "403",
        {"liaison_officer": "200#0", "station_officer": "200#0", "bureau_admin": "200#0"},
    ),
    ("POST", "/api/v1/messaging/assistance"): ("403", {"station_officer": "201", "bureau_admin": "201"}),
    ("GET", "/api/v1/messaging/assistance"): ("200#3", {"mediator": "200#0", "bureau_admin": "200#4"}),
    ("GET", "/api/v1/messaging/assistance/{assistance_id}"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/messaging/assistance/{assistance_id}/replies"): (
        "201/404",
        {"mediator": "404/404", "bureau_admin": "201/201"},
    ),
    ("POST", "/api/v1/messaging/assistance/{assistance_id}/close"): (  # state
        "403/404",
        {"mediator": "404/404", "station_officer": "200/404", "bureau_admin": "409/200"},
    ),
    ("GET", "/messaging"): ("200", {}),
    ("GET", "/messaging/units-near"): (
        "200#1",
        {
            "mediator": "200#0",
            "service_point_staff": "200#2",
            "station_officer": "200#3",
            "bureau_admin": "200#4",
        },
    ),
    ("GET", "/api/v1/safety-index"): (
        "200#1",
        {
            "mediator": "200#0",
            "service_point_staff": "200#2",
            "station_officer": "200#3",
            "bureau_admin": "200#5",
        },
    ),
    ("GET", "/api/v1/units/{unit_id}/safety-index"): (
        "200/404",
        {"mediator": "404/404", "bureau_admin": "200/200"},
    ),
    ("POST", "/api/v1/safety-index/compute"): ("403", {"bureau_admin": "200"}),
    ("GET", "/safety-index"): ("200", {}),
    ("GET", "/api/v1/cockpit/summary"): ("403", {"station_officer": "200", "bureau_admin": "200"}),
    ("GET", "/api/v1/cockpit/trend"): ("403", {"station_officer": "200#13", "bureau_admin": "200#13"}),
    ("GET", "/api/v1/cockpit/breakdown"): ("403", {"station_officer": "200#0", "bureau_admin": "200#0"}),
    ("GET", "/api/v1/cockpit/map"): ("403", {"station_officer": "200#3", "bureau_admin": "200#5"}),
    ("GET", "/api/v1/cockpit/outline"): ("403", {"station_officer": "200", "bureau_admin": "200"}),
    ("GET", "/api/v1/cockpit/feed"): ("403", {"station_officer": "200#8", "bureau_admin": "200#13"}),
    ("POST", "/api/v1/cockpit/refresh"): ("403", {"bureau_admin": "200"}),
    ("GET", "/api/v1/cockpit/drill"): ("403", {"station_officer": "200#0", "bureau_admin": "200#0"}),
    ("GET", "/cockpit"): ("403", {"station_officer": "200", "bureau_admin": "200"}),
    ("GET", "/cockpit/big-screen"): ("403", {"station_officer": "200", "bureau_admin": "200"}),
    ("GET", "/cockpit/drill"): ("403", {"station_officer": "200", "bureau_admin": "200"}),
}


# A partner agency's officer (the joint zone) sees the zone's units in the registry, its eco
# incidents and patrols, and none of the enterprises' own affairs: hazards and inspections,
# messaging, the safety index (as requests and mediation cases above).
PARTNER_SEES_NO_AFFAIRS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/hazards"): "200#0",
    ("GET", "/api/v1/hazards/photos/{name}"): "404/404",
    ("GET", "/api/v1/hazards/stats"): "200#0",
    ("GET", "/api/v1/hazards/{hazard_id}"): "404/404",
    ("GET", "/api/v1/inspections"): "200#0",
    ("GET", "/api/v1/inspections/{inspection_id}"): "404/404",
    ("GET", "/api/v1/messaging/assistance"): "200#0",
    ("GET", "/api/v1/messaging/assistance/{assistance_id}"): "404/404",
    ("GET", "/api/v1/messaging/attachments/{attachment_id}"): "404/404",
    ("GET", "/api/v1/messaging/channels"): "200#0",
    ("GET", "/api/v1/messaging/channels/{channel_id}"): "404/404",
    ("GET", "/api/v1/messaging/channels/{channel_id}/messages"): "404/404",
    ("GET", "/api/v1/messaging/instructions"): "200#0",
    ("GET", "/api/v1/messaging/instructions/{instruction_id}"): "404/404",
    ("GET", "/api/v1/messaging/instructions/{instruction_id}/receipts"): "404/404",
    ("GET", "/api/v1/safety-index"): "200#0",
    ("GET", "/api/v1/units/{unit_id}/safety-index"): "404/404",
    ("GET", "/hazards/inspections/{inspection_id}"): "404/404",
    ("GET", "/hazards/{hazard_id}"): "404/404",
    ("GET", "/messaging/units-near"): "200#0",
    ("POST", "/api/v1/hazards/{hazard_id}/evidence"): "404/404",
    ("POST", "/api/v1/hazards/{hazard_id}/review"): "404/404",
    ("POST", "/api/v1/messaging/assistance/{assistance_id}/close"): "404/404",
    ("POST", "/api/v1/messaging/assistance/{assistance_id}/replies"): "404/404",
    ("POST", "/api/v1/messaging/channels/{channel_id}/messages"): "404/404",
    ("POST", "/hazards/{hazard_id}/evidence"): "404/404",
    ("POST", "/hazards/{hazard_id}/review"): "404/404",
}
for _route, _expected in PARTNER_SEES_NO_AFFAIRS.items():
    EXPECT[_route][1]["partner_officer"] = _expected
