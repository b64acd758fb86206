"""Subscribes every domain's outbox handlers and lists their periodic jobs; used by the app
factory and by the `eqian outbox run` / `eqian jobs run` commands."""

from __future__ import annotations

from eqian.activities import events as activities_events
from eqian.cockpit import events as cockpit_events
from eqian.cockpit import jobs as cockpit_jobs
from eqian.core.scheduler import Job
from eqian.environment import events as environment_events
from eqian.hazards import events as hazards_events
from eqian.hazards.jobs import ESCALATE_JOB
from eqian.incidents import events as incidents_events
from eqian.incidents import jobs as incidents_jobs
from eqian.mediation import events as mediation_events
from eqian.mediation import jobs as mediation_jobs
from eqian.messaging import events as messaging_events
from eqian.messaging import jobs as messaging_jobs
from eqian.notifications import events as notifications_events
from eqian.requests import events as requests_events
from eqian.requests import jobs as requests_jobs
from eqian.safety_index import events as safety_index_events
from eqian.safety_index import jobs as safety_index_jobs
from eqian.workforce import events as workforce_events
from eqian.workforce.jobs import REMIND_JOB


def register_all() -> None:
    environment_events.register()
    activities_events.register()
    hazards_events.register()
    workforce_events.register()
    incidents_events.register()
    mediation_events.register()
    requests_events.register()
    messaging_events.register()
    notifications_events.register()
    safety_index_events.register()
    cockpit_events.register()


def periodic_jobs() -> list[Job]:
    return [
        ESCALATE_JOB,
        REMIND_JOB,
        *incidents_jobs.JOBS,
        *mediation_jobs.JOBS,
        *requests_jobs.JOBS,
        *messaging_jobs.JOBS,
        *safety_index_jobs.JOBS,
        *cockpit_jobs.JOBS,
    ]
