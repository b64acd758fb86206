"""Who is acting, and over what: the principal and its jurisdiction scope.

Scope is resolved from the user's role and anchors; each domain's service turns it into a
filter on its own tables (core knows no domain tables).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from eqian.core.accounts import Role, User
from eqian.core.errors import Forbidden


class ScopeKind(enum.StrEnum):
    ALL = "all"
    STATIONS = "stations"
    SERVICE_POINTS = "service_points"
    UNITS = "units"
    LIAISON = "liaison"  # the units whose liaison officer is this user
    TEAM = "team"
    ZONE = "zone"  # a cross-agency joint zone: its units, eco incidents and patrols
    NONE = "none"


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    station_ids: frozenset[int] = field(default_factory=frozenset)
    service_point_ids: frozenset[int] = field(default_factory=frozenset)
    unit_ids: frozenset[int] = field(default_factory=frozenset)
    team_ids: frozenset[int] = field(default_factory=frozenset)
    zone_ids: frozenset[int] = field(default_factory=frozenset)
    liaison_user_id: int | None = None

    @property
    def is_all(self) -> bool:
        return self.kind is ScopeKind.ALL


def _ids(value: int | None) -> frozenset[int]:
    return frozenset() if value is None else frozenset({value})


def resolve_scope(user: User) -> Scope:
    """A user whose anchor is missing gets an empty scope rather than an accidental wide one."""
    role = Role(user.role)
    if role is Role.BUREAU_ADMIN:
        return Scope(ScopeKind.ALL)
    if role is Role.STATION_OFFICER and user.station_id is not None:
        return Scope(ScopeKind.STATIONS, station_ids=_ids(user.station_id))
    if role is Role.LIAISON_OFFICER:
        return Scope(ScopeKind.LIAISON, liaison_user_id=user.id)
    if role is Role.UNIT_SECURITY and user.unit_id is not None:
        return Scope(ScopeKind.UNITS, unit_ids=_ids(user.unit_id))
    if role is Role.MEDIATOR and user.team_id is not None:
        return Scope(ScopeKind.TEAM, team_ids=_ids(user.team_id))
    if role is Role.SERVICE_POINT_STAFF and user.service_point_id is not None:
        return Scope(ScopeKind.SERVICE_POINTS, service_point_ids=_ids(user.service_point_id))
    if role is Role.PARTNER_OFFICER and user.zone_id is not None:
        return Scope(ScopeKind.ZONE, zone_ids=_ids(user.zone_id))
    return Scope(ScopeKind.NONE)


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    display_name: str
    role: Role
    scope: Scope
    ip: str | None = None
    language: str | None = None

    @classmethod
    def of(cls, user: User, ip: str | None = None) -> Principal:
        return cls(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            scope=resolve_scope(user),
            ip=ip,
            language=user.language,
        )

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden("您的角色无权执行此操作", code="forbidden")

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles


SYSTEM = Principal(
    user_id=0, username="system", display_name="系统", role=Role.BUREAU_ADMIN, scope=Scope(ScopeKind.ALL)
)

# Roles whose duties need unmasked phone and ID numbers (each reveal is still audited).
REVEAL_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER})
