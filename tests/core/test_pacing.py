"""core.pacing: a paced job pauses as long as it worked (times ratio), on a fake clock, and only
while someone else is busy."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from eqian.core import pacing


@pytest.mark.parametrize(("ratio", "expected"), [(1.0, [0.25, 0.5]), (0.5, [0.125, 0.25]), (0.0, [0.0, 0.0])])
async def test_pause_follows_the_work_since_the_last_step(ratio: float, expected: list[float]) -> None:
    clock = [100.0]
    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock[0] += seconds  # pausing takes time too, and is not counted as work

    # The clock and the sleep are the pacer's own: patching asyncio.sleep for the whole event loop
    # once froze a background task of the session's loop in a loop that never yielded.
    pacer = pacing.Pacer(ratio, clock=lambda: clock[0], sleep=fake_sleep)
    clock[0] += 0.25  # a step's work
    await pacer.step()
    clock[0] += 0.5
    await pacer.step()
    assert pauses == expected
    assert pacer.paused == sum(expected)


def test_a_negative_ratio_means_no_pause() -> None:
    assert pacing.Pacer(-3).ratio == 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def pacer_with(answers: list[bool], clock: FakeClock, asked: list[float]) -> pacing.Pacer:
    async def busy() -> bool:
        asked.append(clock.now)
        return answers.pop(0)

    return pacing.Pacer(1.0, clock=clock, sleep=clock.sleep, busy=busy)


async def test_a_quiet_database_gets_the_job_at_full_speed() -> None:
    clock, asked = FakeClock(), []
    pacer = pacer_with([False] * 10, clock, asked)
    for _ in range(3):
        clock.now += 0.2
        await pacer.step()
    assert clock.pauses == [0.0, 0.0, 0.0]
    assert pacer.unpaused == pytest.approx(0.6)


async def test_someone_seen_busy_keeps_the_job_paced_for_a_while() -> None:
    """One look can fall between two requests: busy once means paced until QUIET_AFTER has passed."""
    clock, asked = FakeClock(), []
    pacer = pacer_with([True, False, False, False], clock, asked)
    clock.now += 0.2
    await pacer.step()  # busy: paused 0.2
    clock.now += 0.3
    await pacer.step()  # quiet now, but busy was seen 0.5 s ago: paused 0.3
    clock.now += 0.4
    await pacer.step()  # seen 1.2 s ago (the pauses count as time too): full speed
    assert clock.pauses == pytest.approx([0.2, 0.3, 0.0])
    assert pacer.paused == pytest.approx(0.5)
    assert pacer.unpaused == pytest.approx(0.4)


async def test_busy_is_asked_at_most_every_check_seconds() -> None:
    clock, asked = FakeClock(), []
    pacer = pacer_with([False] * 10, clock, asked)
    for _ in range(10):
        clock.now += pacing.CHECK_SECONDS / 4
        await pacer.step()
    assert len(asked) == 3  # at 0.025, 0.125, 0.225 (steps every 0.025 s)
    assert all(b - a >= pacing.CHECK_SECONDS for a, b in itertools.pairwise(asked))


async def test_the_database_is_busy_while_another_client_is_in_a_transaction(engine: AsyncEngine) -> None:
    """Asked several times inside the job's one transaction, as the job asks: the statistics
    snapshot of the first look must not answer the later ones."""
    if engine.dialect.name != "postgresql":
        pytest.skip("pg_stat_activity is PostgreSQL's; on SQLite the job is not paced")
    async with AsyncSession(engine) as job, engine.connect() as other:
        busy = pacing.database_busy(job)
        await job.execute(text("SELECT 1"))  # the job's transaction is open from here on
        assert await busy() is False
        await other.execute(text("SELECT 1"))  # a request between two statements of its transaction
        assert await busy() is True
        await other.commit()
        assert await busy() is False


async def test_a_transaction_left_idle_is_nobody_at_work(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session left in an open transaction (psql after BEGIN, a leaked connection) stops counting
    once it has run nothing for IDLE_TRANSACTION_SECONDS, and counts again at its next statement."""
    if engine.dialect.name != "postgresql":
        pytest.skip("pg_stat_activity is PostgreSQL's; on SQLite the job is not paced")
    monkeypatch.setattr(pacing, "IDLE_TRANSACTION_SECONDS", 0.5)
    async with AsyncSession(engine) as job, engine.connect() as other:
        busy = pacing.database_busy(job)
        await job.execute(text("SELECT 1"))
        await other.execute(text("SELECT 1"))
        assert await busy() is True
        await asyncio.sleep(0.8)  # the job's own transaction is older still: its clock must move on
        assert await busy() is False
        await other.execute(text("SELECT 1"))
        assert await busy() is True
        await other.rollback()
