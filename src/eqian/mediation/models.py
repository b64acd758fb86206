"""Mediation teams (平安大姐, 老兵驿站, lawyers …). Cases arrive with the mediation issue."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base


class MediationTeam(Base):
    __tablename__ = "mediation_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # volunteer | veterans | lawyers | community
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
