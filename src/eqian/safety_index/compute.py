"""The index model (``config.toml``) and the pure scoring of one unit-month.

Nothing here touches the database. ``score_values`` takes the unit's metric values for the month
(summed ``eqian.core.facts`` facts) and returns the score, grade and each deduction or bonus as
figures (``Scored``: code, points, the component's metric values); ``explain`` turns those into
the Chinese reasons, links and advice with the texts of the model version they were scored with.
A month is stored as figures and explained when read: a city's month is 20,000 units, and its
reasons written out took most of the scoring time and nine tenths of what was stored.
``score_unit`` does both for one unit. A metric that no domain provides is 0, so it contributes
nothing.
"""

from __future__ import annotations

import bisect
import functools
import json
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

CONFIG_PATH = Path(__file__).with_name("config.toml")
KINDS = ("count", "shortfall", "average")
GRADES = ("excellent", "good", "fair", "poor")
GRADE_LABELS = {"excellent": "优", "good": "良", "fair": "中", "poor": "差"}
GRADE_COLOURS = {"excellent": "#2e7d32", "good": "#1e88e5", "fair": "#f9a825", "poor": "#c62828"}


@dataclass(frozen=True)
class Term:
    metric: str
    points: float
    per: float = 1.0


@dataclass(frozen=True)
class Component:
    code: str
    name: str
    max: float
    reason: str
    advice: str = ""
    link: str = ""
    kind: str = "count"
    sign: str = "deduction"
    terms: tuple[Term, ...] = ()
    numerator: str = ""
    denominator: str = ""
    exclude: str = ""  # shortfall: a metric taken off the denominator (cases not due yet)
    target: float = 1.0
    min_base: float = 1.0
    sum: str = ""
    count: str = ""
    threshold: float = 0.0
    points: float = 0.0
    per: float = 1.0

    @functools.cached_property
    def metrics(self) -> tuple[str, ...]:
        if self.kind == "count":
            return tuple(t.metric for t in self.terms)
        if self.kind == "shortfall":
            return (self.numerator, self.denominator, *((self.exclude,) if self.exclude else ()))
        return (self.sum, self.count)


@dataclass(frozen=True)
class IndexModel:
    version: str
    thresholds: tuple[tuple[str, float], ...]  # (grade, lowest score), best first
    components: tuple[Component, ...]

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset(m for c in self.components for m in c.metrics)

    @functools.cached_property
    def by_code(self) -> dict[str, Component]:
        return {c.code: c for c in self.components}

    @functools.cached_property
    def rules(
        self,
    ) -> tuple[tuple[str, Callable[[Mapping[str, Column]], Column], float, bool, tuple[str, ...]], ...]:
        """Per component, in order: code, rule (``_rule``), cap, whether a bonus, metrics."""
        return tuple((c.code, _rule(c), c.max, c.sign == "bonus", c.metrics) for c in self.components)


class Item(NamedTuple):
    """One deduction (points > 0 taken off) or bonus (points > 0 added) with its reason."""

    code: str
    name: str
    sign: str
    points: float
    reason: str
    metrics: tuple[str, ...]
    link: str

    def as_json(self) -> dict[str, Any]:
        """The stored form (``metrics`` stays a tuple: JSON writes it as a list)."""
        return self._asdict()


class UnitScore(NamedTuple):
    score: float
    grade: str
    items: tuple[Item, ...] = ()
    advice: tuple[str, ...] = ()


def parse_model(raw: Mapping[str, Any], source: str = "config") -> IndexModel:
    """Validate a model; a mistake in the file is a clear ``ValueError`` at start, not a wrong score."""
    version = str(raw.get("version", "")).strip()
    if not version:
        raise ValueError(f"{source}: version is required")
    grades = raw.get("grades", {})
    try:
        thresholds = tuple((g, float(grades[g])) for g in GRADES[:3])
    except KeyError as exc:
        raise ValueError(f"{source}: grades need excellent, good and fair") from exc
    if not 100 >= thresholds[0][1] > thresholds[1][1] > thresholds[2][1] >= 0:
        raise ValueError(f"{source}: grade thresholds must fall from excellent to fair within 0–100")
    components: list[Component] = []
    seen: set[str] = set()
    for n, c in enumerate(raw.get("component", [])):
        where = f"{source}: component {n} ({c.get('code', '?')})"
        kind = c.get("kind", "count")
        if kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}")
        if c.get("sign", "deduction") not in ("deduction", "bonus"):
            raise ValueError(f"{where}: sign must be deduction or bonus")
        if c["code"] in seen:
            raise ValueError(f"{where}: duplicate code")
        seen.add(c["code"])
        terms = tuple(
            Term(str(t["metric"]), float(t["points"]), float(t.get("per", 1))) for t in c.get("terms", [])
        )
        comp = Component(
            code=str(c["code"]),
            name=str(c["name"]),
            max=float(c["max"]),
            reason=str(c["reason"]),
            advice=str(c.get("advice", "")),
            link=str(c.get("link", "")),
            kind=kind,
            sign=str(c.get("sign", "deduction")),
            terms=terms,
            numerator=str(c.get("numerator", "")),
            denominator=str(c.get("denominator", "")),
            exclude=str(c.get("exclude", "")),
            target=float(c.get("target", 1.0)),
            min_base=float(c.get("min_base", 1)),
            sum=str(c.get("sum", "")),
            count=str(c.get("count", "")),
            threshold=float(c.get("threshold", 0)),
            points=float(c.get("points", 0)),
            per=float(c.get("per", 1)),
        )
        if comp.max <= 0 or any(t.per <= 0 for t in terms) or comp.per <= 0 or comp.target <= 0:
            raise ValueError(f"{where}: max, per and target must be positive")
        if not all(comp.metrics) or (kind == "count" and not terms):
            raise ValueError(f"{where}: the metrics of a {kind} component are missing")
        components.append(comp)
    if not components:
        raise ValueError(f"{source}: no components")
    return IndexModel(version=version, thresholds=thresholds, components=tuple(components))


def as_config(model: IndexModel) -> dict[str, Any]:
    """The model as ``parse_model`` reads it, in JSON's types: what is stored for its version."""
    config: dict[str, Any] = json.loads(
        json.dumps(
            {
                "version": model.version,
                "grades": dict(model.thresholds),
                "component": [asdict(c) for c in model.components],
            }
        )
    )
    return config


@functools.cache
def load_model(path: Path = CONFIG_PATH) -> IndexModel:
    return parse_model(tomllib.loads(path.read_text(encoding="utf-8")), str(path))


def grade_for(score: float, model: IndexModel) -> str:
    for grade, lowest in model.thresholds:
        if score >= lowest:
            return grade
    return "poor"


def fmt(x: float) -> str:
    """12 → "12", 12.345 → "12.3"."""
    return str(round(x)) if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


Column = list[float]


def _rule(comp: Component) -> Callable[[Mapping[str, Column]], Column]:
    """The component's points before the cap (0 where it does not apply) for a slice of units at
    once, from their values by metric (a column each): built once per model. A city's month
    applies each rule to 20,000 units, and a rule called once per unit was most of the scoring."""
    if comp.kind == "count":
        terms = tuple((t.metric, t.points, t.per) for t in comp.terms)

        def count(cols: Mapping[str, Column]) -> Column:
            total = [0.0] * len(cols[terms[0][0]])
            for metric, points, per in terms:
                total = [t + x * points / per if x else t for t, x in zip(total, cols[metric], strict=True)]
            return total

        return count
    if comp.kind == "shortfall":
        num, den, exclude = comp.numerator, comp.denominator, comp.exclude
        floor, top, target = comp.min_base, comp.max, comp.target

        def shortfall(cols: Mapping[str, Column]) -> Column:
            base = (
                [d - e for d, e in zip(cols[den], cols[exclude], strict=True)]
                if exclude
                else [d - 0.0 for d in cols[den]]  # a float, as d - e is: stored figures compare equal
            )
            return [
                top * max(0.0, target - min(1.0, x / b)) / target if b >= floor and b > 0 else 0.0
                for x, b in zip(cols[num], base, strict=True)
            ]

        return shortfall
    sum_of, count_of, floor = comp.sum, comp.count, comp.min_base
    threshold, points, per = comp.threshold, comp.points, comp.per

    def average(cols: Mapping[str, Column]) -> Column:
        return [
            max(0.0, x / c - threshold) * points / per if c >= floor and c > 0 else 0.0
            for x, c in zip(cols[sum_of], cols[count_of], strict=True)
        ]

    return average


def _placeholders(comp: Component, v: Mapping[str, float]) -> dict[str, str]:
    """The figures a component's reason text may name (only built for components that score)."""
    if comp.kind == "count":
        each = [v.get(t.metric, 0.0) for t in comp.terms]
        return {"value": fmt(sum(each)), **{f"v{n}": fmt(x) for n, x in enumerate(each)}}
    if comp.kind == "shortfall":
        base = v.get(comp.denominator, 0.0) - (v.get(comp.exclude, 0.0) if comp.exclude else 0.0)
        rate = min(1.0, v.get(comp.numerator, 0.0) / base)
        return {"base": fmt(base), "rate": f"{rate * 100:.1f}%"}
    count = v.get(comp.count, 0.0)
    return {"avg": fmt(v.get(comp.sum, 0.0) / count / comp.per), "base": fmt(count)}


class _Blank(dict[str, str]):
    """Placeholders a component's text names but this case does not fill stay empty."""

    def __missing__(self, key: str) -> str:
        return ""


# One deduction or bonus as stored: the component's code, its points (> 0) and the values of its
# metrics (``Component.metrics``, in order), from which its reason is written when it is read.
Scored = tuple[str, float, tuple[float, ...]]


def score_values(model: IndexModel, values: Mapping[str, float]) -> tuple[float, str, list[Scored]]:
    """The unit-month's score, grade and scored components, in the model's order."""
    return score_many(model, [values])[0]


def score_many(
    model: IndexModel, units: Sequence[Mapping[str, float]]
) -> list[tuple[float, str, list[Scored]]]:
    """``score_values`` of each unit, a component at a time over all of them (``_rule``)."""
    return score_columns(model, {m: [v.get(m, 0.0) for v in units] for m in model.metrics}, len(units))


def score_columns(
    model: IndexModel, columns: Mapping[str, Column], size: int
) -> list[tuple[float, str, list[Scored]]]:
    """``score_many`` of ``size`` units given as columns: ``columns[metric][i]`` is unit i's value
    (a metric missing is 0 for all). The monthly job sums its facts into columns (service.py)."""
    zeros = [0.0] * size
    cols = {m: columns.get(m, zeros) for m in model.metrics}
    totals = [100.0] * size
    items: list[list[Scored]] = [[] for _ in range(size)]
    for code, rule, cap, bonus, metrics in model.rules:
        raw = rule(cols)
        hits = [i for i, x in enumerate(raw) if x > 0]
        points = [round(min(cap, raw[i]), 2) for i in hits]
        figures = zip(*[[col[i] for i in hits] for col in (cols[m] for m in metrics)], strict=True)
        for i, p, fig in zip(hits, points, figures, strict=True):
            if p > 0:
                totals[i] += p if bonus else -p
                items[i].append((code, p, fig))
    out = []
    for total, scored in zip(totals, items, strict=True):
        score = round(max(0.0, min(100.0, total)), 1)
        out.append((score, grade_for(score, model), scored))
    return out


def score_slices(
    model: IndexModel, columns: Mapping[str, Column], size: int, step: int
) -> Iterator[list[tuple[float, str, list[Scored]]]]:
    """``score_columns`` of ``size`` units, ``step`` units at a time (the caller may yield between
    slices); only the model's metrics are sliced."""
    for lo in range(0, size, step):
        hi = min(lo + step, size)
        yield score_columns(model, {m: columns[m][lo:hi] for m in model.metrics if m in columns}, hi - lo)


def explain(
    model: IndexModel, scored: Iterable[Sequence[Any]], *, unit_id: int, month: str
) -> tuple[tuple[Item, ...], tuple[str, ...]]:
    """The reasons and links of stored scored components, and the advice of the three largest
    deductions, in ``model``'s words (the version the month was scored with)."""
    items: list[Item] = []
    worst: list[tuple[float, str, str]] = []
    for code, points, figures in scored:
        comp = model.by_code.get(code)
        if comp is None:  # not in that version: say what is known rather than fail the page
            items.append(Item(code, code, "deduction", points, "", (), ""))
            continue
        if comp.sign == "deduction" and comp.advice:
            worst.append((-points, comp.code, comp.advice))
        placeholders = _placeholders(comp, dict(zip(comp.metrics, figures, strict=False)))
        items.append(
            Item(
                code=comp.code,
                name=comp.name,
                sign=comp.sign,
                points=points,
                reason=comp.reason.format_map(_Blank(placeholders)),
                metrics=comp.metrics,
                link=comp.link.format(unit_id=unit_id, month=month),
            )
        )
    worst.sort()
    return tuple(items), tuple(a for _, _, a in worst[:3])


def score_unit(model: IndexModel, values: Mapping[str, float], *, unit_id: int, month: str) -> UnitScore:
    score, grade, scored = score_values(model, values)
    items, advice = explain(model, scored, unit_id=unit_id, month=month)
    return UnitScore(score=score, grade=grade, items=items, advice=advice)


def competition_ranks(scores: Sequence[float]) -> list[int]:
    """1 + how many scores are strictly higher (ties share a rank: 1, 2, 2, 4)."""
    desc = sorted(-s for s in scores)
    return [bisect.bisect_left(desc, -s) + 1 for s in scores]


def group_ranks(keys: Iterable[object], scores: Sequence[float]) -> tuple[list[int], list[int]]:
    """Rank of each score within its group, and the group's size."""
    keys = list(keys)
    groups: dict[object, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    ranks = [0] * len(keys)
    sizes = [0] * len(keys)
    for members in groups.values():
        for i, r in zip(members, competition_ranks([scores[i] for i in members]), strict=True):
            ranks[i] = r
            sizes[i] = len(members)
    return ranks, sizes
