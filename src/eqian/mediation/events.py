"""Outbox handlers of mediation."""

from __future__ import annotations


def register() -> None:
    """Subscribes this domain's outbox handlers (none yet)."""
