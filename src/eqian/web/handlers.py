"""Subscribes every domain's outbox handlers and lists their periodic jobs; used by the app
factory and by the `eqian outbox run` / `eqian jobs run` commands."""

from __future__ import annotations

from eqian.core.scheduler import Job
from eqian.environment import events as environment_events


def register_all() -> None:
    environment_events.register()


def periodic_jobs() -> list[Job]:
    return []
