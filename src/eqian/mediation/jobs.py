"""Periodic jobs of mediation."""

from __future__ import annotations

from eqian.core.scheduler import Job

JOBS: list[Job] = []
