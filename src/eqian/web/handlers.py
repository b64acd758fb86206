"""Subscribes every domain's outbox handlers and lists their periodic jobs; used by the app
factory and by the `eqian outbox run` / `eqian jobs run` commands."""

from __future__ import annotations

from eqian.activities import events as activities_events
from eqian.core.scheduler import Job
from eqian.environment import events as environment_events
from eqian.hazards import events as hazards_events
from eqian.hazards.jobs import ESCALATE_JOB
from eqian.workforce import events as workforce_events
from eqian.workforce.jobs import REMIND_JOB


def register_all() -> None:
    environment_events.register()
    activities_events.register()
    hazards_events.register()
    workforce_events.register()


def periodic_jobs() -> list[Job]:
    return [ESCALATE_JOB, REMIND_JOB]
