"""core.gcpolicy: connections' objects leave the collector's sight after a burst of openings, and
their cycles come back to it once enough connections have closed."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from eqian.core import gcpolicy


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector can free it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_openings_are_frozen_once_after_a_burst() -> None:
    settler = gcpolicy.Settler(delay=0.05)
    for _ in range(300):
        settler.opened_one()
    assert settler.pending is not None
    assert settler.freezes == 0
    await asyncio.sleep(0.2)
    assert settler.freezes == 1
    assert settler.pending is None
    assert settler.frozen_conns == 300
    assert settler.opened == 0
    assert gc.get_freeze_count() > 0


async def test_frozen_cycles_wait_for_reclaim() -> None:
    settler = gcpolicy.Settler(delay=0.01)
    node = Node()
    ref = weakref.ref(node)
    settler.opened_one()
    await asyncio.sleep(0.05)  # frozen with the connection that "holds" it
    del node
    gc.collect()
    assert ref() is not None, "a frozen cycle is out of the collector's sight"
    assert settler.reclaim() == 0.0, "nothing closed yet: no full pass"
    assert ref() is not None
    for _ in range(gcpolicy.RECLAIM_MIN):
        settler.closed_one()
    assert settler.due()
    assert settler.reclaim() > 0.0
    assert ref() is None
    assert settler.reclaims == 1
    assert settler.closed == 0
    assert gc.get_freeze_count() > 0


def test_reclaim_waits_for_a_quarter_of_the_frozen_connections() -> None:
    settler = gcpolicy.Settler()
    settler.frozen_conns = 20_000
    for _ in range(4_999):
        settler.closed_one()
    assert not settler.due()
    settler.closed_one()
    assert settler.due()


async def test_unsettled_objects_are_collected_as_usual() -> None:
    settler = gcpolicy.Settler(delay=10)
    settler.opened_one()  # a freeze is due only later
    node = Node()
    ref = weakref.ref(node)
    del node
    gc.collect()
    assert ref() is None
    settler.cancel()
    assert settler.pending is None
    assert settler.freezes == 0


def test_startup_is_frozen_and_young_collections_come_at_the_servers_pace() -> None:
    """After start-up, a burst of 10,000 surviving objects (a broadcast's pending operations) runs
    without a single collection; with CPython's default threshold it would run about fourteen."""
    before = gc.get_threshold()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    try:
        gcpolicy.settle_startup()
        assert gc.get_freeze_count() > 0
        gc.callbacks.append(count)
        kept = [[i] for i in range(10_000)]
        assert collections == []
        assert len(kept) == 10_000
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        gc.set_threshold(*before)
