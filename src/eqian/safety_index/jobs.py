"""Periodic jobs of safety_index."""

from __future__ import annotations

from eqian.core.scheduler import Job

JOBS: list[Job] = []
