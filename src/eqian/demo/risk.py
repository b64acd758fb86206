"""Each demo unit's hidden risk: what makes incidents, hazards and registration gaps cluster in
some units, so that the safety index has something real to find. Never stored, never shown."""

from __future__ import annotations

import hashlib
import random


def hidden_risk(seed: int, unit_id: int) -> float:
    """A value in [0, 1), skewed low (most units are fine, a few are not), stable per seed and unit."""
    digest = hashlib.sha256(f"{seed}:{unit_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return rng.betavariate(1.2, 4.0)
