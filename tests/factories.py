"""A small two-station district with one account per role, and a way to log each of them in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from eqian.core import audit, auth
from eqian.core.accounts import Role, User
from eqian.core.config import Settings
from eqian.core.ids import make_credit_code
from eqian.core.passwords import hash_password
from eqian.mediation.models import MediationTeam
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import (
    Bureau,
    Contact,
    LiaisonAssignment,
    ServicePoint,
    Station,
    Unit,
    UnitCategory,
)
from eqian.web.deps import SESSION_COOKIE

PASSWORD = "Test-pass-365"
_HASH = hash_password(PASSWORD)  # argon2 is deliberately slow: hash once for every test user
_serial = 0


def credit_code() -> str:
    global _serial
    _serial += 1
    return make_credit_code(f"91330502{_serial:09d}")


@dataclass
class World:
    station_a: int = 0
    station_b: int = 0
    sp_a: int = 0
    sp_b: int = 0
    team: int = 0
    # unit ids by label: a1 a2 a3 (station A; a1 and a2 at service point A, a1 under the liaison),
    # b1 b2 (station B)
    units: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def unit_ids(self, *labels: str) -> set[int]:
        return {self.units[label] for label in labels}


async def make_world(session: AsyncSession) -> World:
    w = World()
    session.add_all(
        [
            UnitCategory(code=c.code, name_zh=c.name_zh, name_en=c.name_en, sort_order=i)
            for i, c in enumerate(CATEGORIES)
        ]
    )
    bureau = Bureau(code="zhili", name="织里分局")
    session.add(bureau)
    await session.flush()
    a = Station(bureau_id=bureau.id, code="zhibei", name="织北派出所", lat=30.85, lng=120.26)
    b = Station(bureau_id=bureau.id, code="zhinan", name="织南派出所", lat=30.82, lng=120.27)
    session.add_all([a, b])
    await session.flush()
    sp_a = ServicePoint(station_id=a.id, name="大港路服务点")
    sp_b = ServicePoint(station_id=b.id, name="珍贝路服务点")
    team = MediationTeam(name="平安大姐工作室", kind="volunteer", station_id=a.id)
    session.add_all([sp_a, sp_b, team])
    await session.flush()
    specs = {
        "a1": (a.id, sp_a.id, "织里贝贝童装有限公司", "garment"),
        "a2": (a.id, sp_a.id, "吾悦广场", "market"),
        "a3": (a.id, None, "康泰小区物业", "property"),
        "b1": (b.id, sp_b.id, "织南安安童装厂", "garment"),
        "b2": (b.id, None, "中通快递织南网点", "logistics"),
    }
    for label, (station_id, sp_id, name, cat) in specs.items():
        unit = Unit(
            name=name,
            credit_code=credit_code(),
            category_code=cat,
            station_id=station_id,
            service_point_id=sp_id,
            address=f"织里镇{label}路1号",
            lat=30.84,
            lng=120.26,
            employee_count=50,
        )
        session.add(unit)
        await session.flush()
        w.units[label] = unit.id
        contact = Contact(unit_id=unit.id, name=f"张{label}", role="security_head", phone="13812345678")
        session.add(contact)
        await session.flush()
        w.contacts[label] = contact.id
    users = {
        "bureau_admin": {"role": Role.BUREAU_ADMIN},
        "station_officer": {"role": Role.STATION_OFFICER, "station_id": a.id},
        "station_officer_b": {"role": Role.STATION_OFFICER, "station_id": b.id},
        "liaison_officer": {"role": Role.LIAISON_OFFICER, "station_id": a.id},
        "unit_security": {"role": Role.UNIT_SECURITY, "unit_id": w.units["a1"]},
        "mediator": {"role": Role.MEDIATOR, "team_id": team.id},
        "service_point_staff": {"role": Role.SERVICE_POINT_STAFF, "service_point_id": sp_a.id},
    }
    for username, attrs in users.items():
        role = attrs.pop("role")
        user = User(username=username, display_name=username, password_hash=_HASH, role=role.value, **attrs)
        session.add(user)
        await session.flush()
        w.users[username] = user
    session.add(LiaisonAssignment(unit_id=w.units["a1"], officer_id=w.users["liaison_officer"].id))
    await session.commit()
    w.station_a, w.station_b, w.sp_a, w.sp_b, w.team = a.id, b.id, sp_a.id, sp_b.id, team.id
    return w


ROLES = [
    "bureau_admin",
    "station_officer",
    "liaison_officer",
    "unit_security",
    "mediator",
    "service_point_staff",
]


async def bearer(session: AsyncSession, user: User) -> dict[str, str]:
    issued = await auth.open_session(session, Settings(env="test"), user, kind="bearer", ip="test")
    return {"Authorization": f"Bearer {issued.token}"}


async def open_cookie_session(
    session: AsyncSession, client: httpx.AsyncClient, user: User
) -> auth.IssuedSession:
    """A page session opened directly (argon2 is slow; the login form has tests of its own), its
    cookie set on ``client``."""
    issued = await auth.open_session(session, Settings(env="test"), user, kind="cookie", ip="test")
    client.cookies.set(SESSION_COOKIE, issued.token)
    return issued


async def sign_in(session: AsyncSession, client: httpx.AsyncClient, user: User) -> str:
    """``open_cookie_session``; returns the CSRF token the session's forms and writes carry."""
    return (await open_cookie_session(session, client, user)).csrf_token


@contextlib.asynccontextmanager
async def audit_guard_lifted(session: AsyncSession | AsyncConnection) -> AsyncIterator[None]:
    """The database refuses edits of audit rows; a forger with the owner's rights lifts that first
    (and puts it back, as a careful one would). Also how the harness empties SQLite's audit log."""
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    pg = bind.dialect.name == "postgresql"
    for statement in (
        ["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"]
        if pg
        else [f"DROP TRIGGER IF EXISTS {trigger}" for trigger in audit.SQLITE_TRIGGERS]
    ):
        await session.execute(text(statement))
    try:
        yield
    finally:
        if pg:
            await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            for statement in audit.SQLITE_APPEND_ONLY:
                await session.execute(text(statement))
