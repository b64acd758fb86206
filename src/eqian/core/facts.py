"""Monthly facts: what each domain contributes to the safety index and the cockpit.

A domain that has something to count exposes, in ``eqian/<domain>/facts.py``,

    async def monthly_facts(session, start, end) -> list[Fact]
    async def monthly_fact_rows(session, start, end) -> list[FactRows]  # the same, in bulk

one set-based query per metric family over ``[start, end)`` (UTC). Metrics are named
``<domain>.<what>`` and are additive (counts and sums, never ratios: a rate is a numerator and a
denominator), so they can be summed over units, categories and stations. ``core`` names the
sources by module path only, so it imports no domain, and a domain that is missing or has no
``facts`` module contributes nothing instead of breaking the index or the cockpit.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVarTuple

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TypedReturnsRows

from eqian.core.db import utcnow

log = logging.getLogger(__name__)


def judged_at(end: dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """When a fact that depends on a later state (resolved? acknowledged? still open?) is judged:
    at the end of the period, or now for the period under way. A past month computed again then
    gives the same figures, and the backtest's index of a month sees nothing after it."""
    return min(now or utcnow(), end)


class Fact(NamedTuple):
    station_id: int | None  # the jurisdiction the fact belongs to (None: unknown)
    unit_id: int | None  # the unit, or None for facts not linked to a unit (e.g. a street incident)
    metric: str
    value: float


_Row = TypeVarTuple("_Row")


async def fetch(session: AsyncSession, query: TypedReturnsRows[*_Row]) -> Sequence[Row[*_Row]]:
    """A facts query's rows, through the session's connection and transaction as SQLAlchemy Core,
    all at once: facts select plain columns, never entities, and the ORM's result processing was a
    sixth of a city's facts pass (bench/index.py), fetching row by row another tenth."""
    return (await (await session.connection()).execute(query)).all()


class FactRows(NamedTuple):
    """Facts in bulk, as a grouped query returns them: each row is ``(station_id, unit_id, v0, v1,
    …)``, ``v<n>`` the value of ``metrics[n]`` (None counts as 0).

    A domain offers its facts so, as ``monthly_fact_rows``, beside ``monthly_facts`` (which is then
    ``expand`` or ``merged`` of them): the safety index sums a city's 300,000 facts a month, and a
    named tuple made and taken apart for each was half of that work. A source with facts only (a
    test's, a domain's first version) is read as ``as_rows`` of them."""

    metrics: tuple[str, ...]
    rows: Sequence[Sequence[Any]]

    def facts(self) -> list[Fact]:
        return [
            Fact(row[0], row[1], metric, float(value or 0))
            for row in self.rows
            for metric, value in zip(self.metrics, row[2:], strict=True)
        ]


def expand(blocks: Iterable[FactRows]) -> list[Fact]:
    """Every value of the rows as a fact, zeros included."""
    return [fact for block in blocks for fact in block.facts()]


def merged(blocks: Iterable[FactRows]) -> list[Fact]:
    """The rows' values summed per station, unit and metric, zeros left out: the facts of a domain
    whose blocks may name a metric twice for one unit (incidents: one block per category)."""
    sums: dict[tuple[int | None, int | None, str], float] = defaultdict(float)
    for fact in expand(blocks):
        sums[fact[:3]] += fact.value
    return [Fact(s, u, metric, value) for (s, u, metric), value in sums.items() if value]


def as_rows(facts: Iterable[Fact]) -> list[FactRows]:
    """Facts as bulk rows, a block per metric: how the index reads a source that offers no rows."""
    by_metric: dict[str, list[tuple[int | None, int | None, float]]] = defaultdict(list)
    for fact in facts:
        by_metric[fact.metric].append((fact.station_id, fact.unit_id, fact.value))
    return [FactRows((metric,), rows) for metric, rows in by_metric.items()]


FactSource = Callable[[AsyncSession, dt.datetime, dt.datetime], Awaitable[list[Fact]]]
RowSource = Callable[[AsyncSession, dt.datetime, dt.datetime], Awaitable[list[FactRows]]]


class Source(NamedTuple):
    facts: FactSource
    rows: RowSource  # the same facts in bulk: the domain's own, or its facts as rows (``as_rows``)


def _rows_of(source: FactSource) -> RowSource:
    async def rows(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[FactRows]:
        return as_rows(await source(session, start, end))

    return rows


SOURCES: tuple[str, ...] = (
    "eqian.incidents.facts",
    "eqian.mediation.facts",
    "eqian.requests.facts",
    "eqian.messaging.facts",
    "eqian.hazards.facts",
    "eqian.workforce.facts",
    "eqian.activities.facts",
    "eqian.environment.facts",
)


def load_sources(names: Iterable[str] = SOURCES) -> list[FactSource]:
    return [source.facts for source in load(names)]


def load(names: Iterable[str] = SOURCES) -> list[Source]:
    found: list[Source] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports does not: a real bug
                raise
            continue
        source = getattr(module, "monthly_facts", None)
        if source is not None:
            found.append(Source(source, getattr(module, "monthly_fact_rows", None) or _rows_of(source)))
    return found


async def collect(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, names: Iterable[str] = SOURCES
) -> list[Fact]:
    facts: list[Fact] = []
    for source in load_sources(names):
        facts.extend(await source(session, start, end))
    return facts
