"""core.pacing: a paced job pauses as long as it worked (times ratio), on a fake clock."""

from __future__ import annotations

import pytest

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
