"""Periodic jobs of messaging."""

from __future__ import annotations

from eqian.core.scheduler import Job

JOBS: list[Job] = []
