"""Calendar months, ``YYYY-MM`` in Beijing time: the period every statistic, index and report keeps.

A station's "November" starts at 00:00 on 1 November in Zhili, which is 16:00 UTC the day before,
so every domain turns a month into a UTC ``[start, end)`` here rather than on its own.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from eqian.core.errors import field_error

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MIN_YEAR, MAX_YEAR = 2000, 2100
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def parse(month: str) -> tuple[int, int]:
    """``(year, month)``, or ValueError for anything but ``YYYY-MM`` within 2000–2100."""
    match = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if match is None or not MIN_YEAR <= int(match[1]) <= MAX_YEAR:
        raise ValueError(f"not a month: {month!r}")
    return int(match[1]), int(match[2])


def check(month: str, field: str = "month") -> str:
    """The month itself, or a 422 naming ``field``."""
    try:
        parse(month)
    except ValueError:
        raise field_error(
            field, f"月份格式应为 YYYY-MM（{MIN_YEAR}–{MAX_YEAR} 年）", "invalid_month"
        ) from None
    return month


def bounds(month: str, field: str = "month") -> tuple[dt.datetime, dt.datetime]:
    """The local month as a UTC ``[start, end)``; a 422 naming ``field`` if it is not a month."""
    check(month, field)
    y, m = parse(month)
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    start = dt.datetime(y, m, 1, tzinfo=LOCAL_TZ)
    end = dt.datetime(ny, nm, 1, tzinfo=LOCAL_TZ)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def shift(month: str, delta: int) -> str:
    y, m = parse(month)
    n = y * 12 + m - 1 + delta
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def of(moment: dt.datetime) -> str:
    """The local month of a moment."""
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m")


def between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included."""
    out: list[str] = []
    current = first
    while current <= last:
        out.append(current)
        current = shift(current, 1)
    return out
