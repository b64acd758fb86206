"""A case's life: opened at a service point, by a unit and from an incident; assigned by specialty
and load; sessions; an agreement, a failure and a referral; masked parties and the audited reveal;
the outbox events the incidents domain relies on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eqian.core import outbox
from eqian.core.audit import AuditLog
from eqian.core.db import utcnow
from eqian.core.ids import make_resident_id
from eqian.core.outbox import OutboxEvent
from eqian.core.permissions import SYSTEM
from eqian.incidents.models import Incident
from eqian.mediation import events, service
from eqian.mediation.models import MediationCase
from eqian.mediation.schemas import PartyIn
from eqian.notifications.models import Notification
from tests.mediation.helpers import API, make_med_world


def _valid_id() -> str:
    return make_resident_id("330502", dt.date(1990, 1, 1), 123)


async def test_case_lifecycle(
    client: httpx.AsyncClient, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mw = await make_med_world(db)
    w, h = mw.world, mw.headers
    id_number = _valid_id()
    parties = [
        {"name": "张三", "role": "applicant", "id_number": id_number, "phone": "13812345678"},
        {"name": "织里某童装厂", "role": "respondent"},
    ]
    # Service-point staff take a family dispute: station A's teams that take it are 平安大姐
    # (any type) -- a1's advisors are only for a1's own cases. Member 李大姐 names family.
    r = await client.post(
        f"{API}/cases",
        json={
            "source": "service_point",
            "dispute_type": "family",
            "summary": "夫妻因抚养费争执",
            "parties": parties,
        },
        headers=h["service_point_staff"],
    )
    assert r.status_code == 201, r.text
    family = r.json()
    assert (family["team_id"], family["member_id"], family["service_point_id"]) == (
        mw.teams["dajie"],
        mw.members["li"],
        w.sp_a,
    )
    assert family["station_id"] == w.station_a
    assert family["status"] == "open"
    # Personal data leaves masked; the audit row of the opening keeps it masked too.
    p = family["parties"][0]
    assert p["id_number"] == id_number[:6] + "********" + id_number[-4:]
    assert p["phone"] == "138****5678"
    assert id_number not in r.text
    assert "13812345678" not in r.text

    # A labour dispute at station B goes to 老兵驿站 (named specialty), member 赵班长.
    r = await client.post(
        f"{API}/cases",
        json={
            "source": "walk_in",
            "unit_id": w.units["b1"],
            "dispute_type": "labor",
            "summary": "拖欠三名工人工资共 2.4 万元",
            "amount_in_dispute": "24000.00",
            "parties": parties[:1],
        },
        headers=h["station_officer_b"],
    )
    assert r.status_code == 201, r.text
    labor = r.json()
    assert (labor["team_id"], labor["member_id"]) == (mw.teams["veterans"], mw.members["zhao"])
    assert labor["amount_in_dispute"] == "24000.00"

    # The unit itself opens one: its own advisors are preferred (mediation inside the enterprise).
    r = await client.post(
        f"{API}/cases",
        json={"source": "unit", "dispute_type": "contract", "summary": "供货合同", "parties": parties[1:]},
        headers=h["unit_security"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["team_id"] == mw.teams["a1_advisors"]
    assert r.json()["unit_id"] == w.units["a1"]

    # Load: with 李大姐 busy on the family case, a neighbour dispute still goes to her (named
    # specialty beats load); an economic one goes to 王大姐 (takes anything, lighter load).
    incident = Incident(
        source_key="flow-77",
        reported_at=utcnow(),
        station_id=w.station_a,
        description="货款纠纷，对方拖欠五千元",
        category="economic",
        police=False,
        route="mediation",
        sla_hours=72,
        due_at=utcnow(),
    )
    db.add(incident)
    await db.flush()
    econ = await service.open_case_from_incident(
        db,
        SYSTEM,
        incident_id=incident.id,
        unit_id=w.units["a2"],
        station_id=w.station_a,
        dispute_type="economic",
        summary="货款纠纷",
        amount_in_dispute=Decimal("5000"),
        parties=[PartyIn(name="李四", role="applicant")],
    )
    await db.commit()
    econ_row = await db.get(MediationCase, econ)
    assert econ_row is not None
    assert (econ_row.team_id, econ_row.member_id, econ_row.incident_id) == (
        mw.teams["dajie"],
        mw.members["wang"],
        incident.id,
    )
    opened = await db.scalar(
        select(OutboxEvent)
        .where(OutboxEvent.topic == "mediation.case_opened")
        .order_by(OutboxEvent.id.desc())
    )
    assert opened is not None
    assert opened.payload["case_id"] == econ
    assert opened.payload["incident_id"] == incident.id
    assert set(opened.payload) >= {
        "case_id",
        "incident_id",
        "station_id",
        "unit_id",
        "team_id",
        "dispute_type",
        "outcome",
        "amount_recovered",
        "at",
    }
    assert opened.payload["outcome"] is None

    # The mediator of the team records a session, then the agreement.
    cid = family["id"]
    r = await client.post(
        f"{API}/cases/{cid}/sessions",
        json={"note": "双方到场，初步达成意向", "place": "大港路服务点"},
        headers=h["mediator"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "in_progress"
    assert r.json()["sessions"][0]["note"] == "双方到场，初步达成意向"
    bad = await client.post(
        f"{API}/cases/{cid}/outcome", json={"outcome": "agreement"}, headers=h["mediator"]
    )
    assert bad.status_code == 422
    bad = await client.post(
        f"{API}/cases/{cid}/outcome",
        json={
            "outcome": "agreement",
            "agreement_text": "x",
            "agreement_amount": "100",
            "amount_recovered": "200",
        },
        headers=h["mediator"],
    )
    assert bad.status_code == 422
    bad = await client.post(
        f"{API}/cases/{cid}/outcome",
        json={"outcome": "agreement", "agreement_text": "x", "amount_recovered": "1.005"},
        headers=h["mediator"],
    )
    assert bad.status_code == 422
    r = await client.post(
        f"{API}/cases/{cid}/outcome",
        json={
            "outcome": "agreement",
            "agreement_text": "男方每月支付抚养费 1500 元",
            "agreement_amount": "18000",
            "payment_schedule": "每月 5 日前支付",
            "amount_recovered": "1500",
        },
        headers=h["mediator"],
    )
    assert r.status_code == 200, r.text
    closed = r.json()
    assert (closed["status"], closed["outcome"], closed["amount_recovered"]) == (
        "closed",
        "agreement",
        "1500.00",
    )
    assert closed["agreement_amount"] == "18000.00"
    assert closed["closed_at"]
    again = await client.post(f"{API}/cases/{cid}/sessions", json={"note": "再谈"}, headers=h["mediator"])
    assert again.status_code == 409

    # Failed and referred outcomes from station B.
    r = await client.post(
        f"{API}/cases/{labor['id']}/outcome", json={"outcome": "referred"}, headers=h["mediator_b"]
    )
    assert r.status_code == 422  # where to?
    r = await client.post(
        f"{API}/cases/{labor['id']}/outcome",
        json={"outcome": "referred", "referred_to": "labour_arbitration", "note": "企业拒绝调解"},
        headers=h["mediator_b"],
    )
    assert r.status_code == 200
    assert r.json()["referred_to"] == "labour_arbitration"
    closed_events = (
        await db.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "mediation.case_closed").order_by(OutboxEvent.id)
        )
    ).all()
    assert [
        (e.payload["case_id"], e.payload["outcome"], e.payload["amount_recovered"]) for e in closed_events
    ] == [
        (cid, "agreement", "1500.00"),
        (labor["id"], "referred", "0.00"),
    ]

    # Reassignment is the station's; a mediator may not.
    r = await client.post(
        f"{API}/cases/{econ}/assign", json={"team_id": mw.teams["veterans"]}, headers=h["mediator"]
    )
    assert r.status_code == 403
    r = await client.post(
        f"{API}/cases/{econ}/assign",
        json={"team_id": mw.teams["dajie"], "member_id": mw.members["zhao"]},
        headers=h["station_officer"],
    )
    assert r.status_code == 422  # 赵班长 is not of that team

    # Reveal: the mediator may (audited), the unit's security head may not.
    party_id = family["parties"][0]["id"]
    r = await client.post(f"{API}/cases/{cid}/parties/{party_id}/reveal", headers=h["unit_security"])
    assert r.status_code == 404  # not even in its scope
    r = await client.post(f"{API}/cases/{cid}/parties/{party_id}/reveal", headers=h["service_point_staff"])
    assert r.status_code == 403
    r = await client.post(f"{API}/cases/{cid}/parties/{party_id}/reveal", headers=h["mediator"])
    assert r.status_code == 200
    assert r.json()["id_number"] == id_number
    assert r.json()["phone"] == "13812345678"
    reveal = await db.scalar(select(AuditLog).where(AuditLog.action == "personal_data.reveal"))
    assert reveal is not None
    assert reveal.entity == "mediation_party"
    assert reveal.actor_name == "mediator"
    opening = await db.scalar(
        select(AuditLog).where(AuditLog.action == "mediation.case.open", AuditLog.entity_id == str(cid))
    )
    assert opening is not None
    assert id_number not in str(opening.changes)

    # After commit the new case is told to the team's mediator (outbox handler).
    events.register()
    while await outbox.dispatch_pending(sessionmaker) > 0:
        pass
    told = await db.scalars(select(Notification.link).where(Notification.user_id == w.users["mediator"].id))
    assert f"/mediation/cases/{cid}" in set(told)


async def test_bad_input_is_a_4xx(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    h = mw.headers["bureau_admin"]
    base = {
        "source": "walk_in",
        "dispute_type": "labor",
        "summary": "x",
        "parties": [{"name": "a", "role": "applicant"}],
    }
    for body in (
        {**base, "dispute_type": "murder"},
        {**base, "parties": []},
        {**base, "parties": [{"name": "a", "role": "applicant", "id_number": "123"}]},
        {**base, "parties": [{"name": "a", "role": "applicant", "phone": "12345"}]},
        {**base, "amount_in_dispute": "-1"},
        {**base, "status": "closed"},
        base,  # the bureau must name a station, a unit or a service point
        {**base, "source": "service_point"},
    ):
        r = await client.post(f"{API}/cases", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
    r = await client.get(f"{API}/cases/2147483648", headers=h)
    assert r.status_code == 422
    r = await client.get(f"{API}/cases/999", headers=h)
    assert r.status_code == 404


async def test_walk_in_station_must_be_in_scope(client: httpx.AsyncClient, db: AsyncSession) -> None:
    mw = await make_med_world(db)
    w, h = mw.world, mw.headers
    body = {
        "source": "walk_in",
        "dispute_type": "neighbor",
        "summary": "噪音",
        "parties": [{"name": "甲", "role": "applicant"}],
    }
    # A liaison officer sees cases through units: a walk-in must name one of theirs.
    r = await client.post(
        f"{API}/cases", json={**body, "station_id": w.station_b}, headers=h["liaison_officer"]
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/cases", json={**body, "unit_id": w.units["b1"]}, headers=h["liaison_officer"]
    )
    assert r.status_code == 404
    r = await client.post(
        f"{API}/cases", json={**body, "unit_id": w.units["a1"]}, headers=h["liaison_officer"]
    )
    assert r.status_code == 201
    assert r.json()["station_id"] == w.station_a
    r = await client.post(
        f"{API}/cases", json={**body, "station_id": w.station_a}, headers=h["station_officer_b"]
    )
    assert r.status_code == 404
    r = await client.post(f"{API}/cases", json=body, headers=h["station_officer_b"])
    assert r.status_code == 201
    assert r.json()["station_id"] == w.station_b
    assert r.json()["team_id"] is None  # 老兵驿站 takes only labour and fees: the station assigns it
