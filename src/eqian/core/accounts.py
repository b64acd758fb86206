"""Accounts: users with one of the six roles, and their login sessions (bearer or cookie)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    BUREAU_ADMIN = "bureau_admin"
    STATION_OFFICER = "station_officer"
    LIAISON_OFFICER = "liaison_officer"
    UNIT_SECURITY = "unit_security"
    MEDIATOR = "mediator"
    SERVICE_POINT_STAFF = "service_point_staff"
    # An officer of a partner agency (e.g. 吴江 police at the joint 乔溇 station): one joint zone only.
    PARTNER_OFFICER = "partner_officer"


ROLE_LABELS_ZH: dict[Role, str] = {
    Role.BUREAU_ADMIN: "分局主战中心",
    Role.STATION_OFFICER: "派出所民警",
    Role.LIAISON_OFFICER: "企业警长",
    Role.UNIT_SECURITY: "单位安保负责人",
    Role.MEDIATOR: "调解员",
    Role.SERVICE_POINT_STAFF: "自治服务点工作人员",
    Role.PARTNER_OFFICER: "协作单位民警",
}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('bureau_admin', 'station_officer', 'liaison_officer', 'unit_security', 'mediator', "
            "'service_point_staff', 'partner_officer')",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    # The anchor of the user's jurisdiction; which one is set depends on the role.
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("mediation_teams.id"), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("joint_zones.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class AuthSession(Base):
    """A login. Tokens are stored only as SHA-256 digests so a database leak yields no live token."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "bearer" | "cookie"
    __table_args__ = (CheckConstraint("kind IN ('bearer', 'cookie')", name="kind"),)
    csrf_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(64))
