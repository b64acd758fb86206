"""Does the index predict? For each month M: how well M's index ranks units by whether they have at
least one incident (``incidents.total`` facts) in M+1, against the naive baseline (M's own incident
count: more incidents = riskier).

Two figures per month and ranking: the AUC (the probability that a unit with an incident next month
is ranked riskier than one without; ties count half; 0.5 is chance) and the top-decile capture
(the share of next month's units-with-incidents found in the riskiest tenth). The index is scored
in memory with the current model from the facts, so a new model can be backtested before use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.facts import SOURCES
from eqian.core.months import between as months_between
from eqian.core.months import check as check_month
from eqian.core.months import shift as shift_month
from eqian.organizations.models import Unit
from eqian.safety_index.compute import IndexModel, load_model, score_unit
from eqian.safety_index.service import Progress, unit_metrics

TARGET_METRIC = "incidents.total"


def auc(risk: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Mann–Whitney AUC with average ranks for ties; None when one class is empty."""
    n = len(risk)
    pos = sum(1 for y in labels if y)
    neg = n - pos
    if pos == 0 or neg == 0:
        return None
    order = sorted(range(n), key=lambda i: risk[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and risk[order[j + 1]] == risk[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def top_decile_capture(risk: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Share of the positives among the riskiest ⌈n/10⌉ units. Ties at the cut are shared out
    fractionally, so the order of equally risky units does not change the figure."""
    n, pos = len(risk), sum(1 for y in labels if y)
    if n == 0 or pos == 0:
        return None
    k = math.ceil(n / 10)
    cut = sorted(risk, reverse=True)[k - 1]
    above = [y for r, y in zip(risk, labels, strict=True) if r > cut]
    at = [y for r, y in zip(risk, labels, strict=True) if r == cut]
    taken = k - len(above)
    captured = sum(above) + (sum(at) * taken / len(at) if at else 0)
    return captured / pos


@dataclass(frozen=True)
class MonthResult:
    month: str
    units: int
    positives: int
    auc: float | None
    top_decile: float | None
    baseline_auc: float | None
    baseline_top_decile: float | None


@dataclass(frozen=True)
class Backtest:
    config_version: str
    months: list[MonthResult]

    def _mean(self, attr: str) -> float | None:
        vals = [getattr(m, attr) for m in self.months if getattr(m, attr) is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    def summary(self) -> dict[str, Any]:
        return {
            "config_version": self.config_version,
            "months": len(self.months),
            "auc": self._mean("auc"),
            "baseline_auc": self._mean("baseline_auc"),
            "top_decile": self._mean("top_decile"),
            "baseline_top_decile": self._mean("baseline_top_decile"),
            "by_month": [asdict(m) for m in self.months],
        }


async def run_backtest(
    session: AsyncSession,
    first: str,
    last: str,
    *,
    names: Iterable[str] = SOURCES,
    model: IndexModel | None = None,
    progress: Progress | None = None,
) -> Backtest:
    check_month(first, "from")
    check_month(last, "to")
    model = model or load_model()
    names = tuple(names)
    unit_ids = list(await session.scalars(select(Unit.id).where(Unit.status == "active").order_by(Unit.id)))
    months = months_between(first, last)
    cache: dict[str, dict[int, dict[str, float]]] = {}

    async def metrics(month: str) -> dict[int, dict[str, float]]:
        if month not in cache:
            cache[month] = await unit_metrics(session, month, names)
        return cache[month]

    results: list[MonthResult] = []
    empty: dict[str, float] = {}
    for n, month in enumerate(months):
        now, following = await metrics(month), await metrics(shift_month(month, 1))
        labels = [following.get(u, empty).get(TARGET_METRIC, 0.0) >= 1 for u in unit_ids]
        risk = [-score_unit(model, now.get(u, empty), unit_id=u, month=month).score for u in unit_ids]
        naive = [now.get(u, empty).get(TARGET_METRIC, 0.0) for u in unit_ids]

        def r4(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        results.append(
            MonthResult(
                month=month,
                units=len(unit_ids),
                positives=sum(labels),
                auc=r4(auc(risk, labels)),
                top_decile=r4(top_decile_capture(risk, labels)),
                baseline_auc=r4(auc(naive, labels)),
                baseline_top_decile=r4(top_decile_capture(naive, labels)),
            )
        )
        cache.pop(shift_month(month, -1), None)
        if progress:
            progress("backtest", n + 1, len(months))
    return Backtest(model.version, results)
