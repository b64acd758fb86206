"""Subscribes every domain's outbox handlers; called by the app factory and by `eqian outbox run`."""

from __future__ import annotations

from eqian.environment import events as environment_events


def register_all() -> None:
    environment_events.register()
