"""Tables of messaging."""

from __future__ import annotations

from eqian.core.db import Base

__all__ = ["Base"]
