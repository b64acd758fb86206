"""The routing policy: category × police × unit category → route and SLA hours.

The rules are a table (``incident_routing_rules``), seeded from ``routing_policy.toml`` on first use
and edited by bureau admins through the API. The most specific matching rule wins; the catch-all
``* / * / *`` always exists.
"""

from __future__ import annotations

import functools
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.incidents.models import RoutingRule

POLICY_PATH = Path(__file__).with_name("routing_policy.toml")
ROUTES = ("dispatch", "self_governance", "mediation")
ROUTE_LABELS = {"dispatch": "派警处置", "self_governance": "企业自治", "mediation": "调解"}
DEFAULT_SLA = {"dispatch": 24, "self_governance": 72, "mediation": 168}
CACHE_SECONDS = 30.0
ANY = "*"
NO_UNIT = "none"

# Which categories are police matters when nobody says otherwise (e.g. a 110 export's own category).
POLICE_BY_CATEGORY = {
    "labor": False,
    "processing_fee": False,
    "economic": False,
    "contract": False,
    "family": False,
    "neighbor": False,
    "traffic": True,
    "theft": True,
    "fraud": True,
    "fire": True,
    "help": True,
    "public_order": True,
    "environment": True,
    "other": False,
}


@dataclass(frozen=True)
class Decision:
    route: str
    sla_hours: int
    rule_id: int | None


@dataclass(frozen=True)
class Policy:
    rules: tuple[tuple[int, str, str, str, str, int], ...]  # id, category, police, unit_category, route, sla

    def decide(self, category: str, police: bool, unit_category: str | None) -> Decision:
        pol = "yes" if police else "no"
        ucat = unit_category or NO_UNIT
        best: tuple[int, int, str, int] | None = None  # (specificity, -id, route, sla)
        for rid, c, p, u, route, sla in self.rules:
            if c not in (ANY, category) or p not in (ANY, pol) or u not in (ANY, ucat):
                continue
            # category outweighs unit category outweighs police
            score = (4 if c != ANY else 0) + (2 if u != ANY else 0) + (1 if p != ANY else 0)
            key = (score, -rid, route, sla)
            if best is None or key[:2] > best[:2]:
                best = key
        if best is None:
            return Decision("dispatch", DEFAULT_SLA["dispatch"], None)
        return Decision(best[2], best[3], -best[1])

    def sla_for(self, route: str, category: str, police: bool, unit_category: str | None) -> int:
        """The SLA of ``route`` for this incident: the policy's own when it picks the same route."""
        decided = self.decide(category, police, unit_category)
        return decided.sla_hours if decided.route == route else DEFAULT_SLA[route]


@functools.cache
def default_rules(path: Path = POLICY_PATH) -> tuple[dict[str, Any], ...]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = tuple(dict(r) for r in raw["rule"])
    for r in rules:
        if r["route"] not in ROUTES:
            raise ValueError(f"{path}: unknown route {r['route']}")
    if not any(r["category"] == ANY and r["police"] == ANY and r["unit_category"] == ANY for r in rules):
        raise ValueError(f"{path}: the catch-all rule * / * / * is missing")
    return rules


async def ensure_rules(session: AsyncSession) -> int:
    """Seed the table from the TOML when it is empty; no commit."""
    if await session.scalar(select(func.count()).select_from(RoutingRule)):
        return 0
    rules = default_rules()
    session.add_all(
        RoutingRule(
            category=r["category"],
            police=r["police"],
            unit_category=r["unit_category"],
            route=r["route"],
            sla_hours=int(r["sla_hours"]),
        )
        for r in rules
    )
    await session.flush()
    return len(rules)


_cache: dict[str, tuple[float, Policy]] = {}


def invalidate() -> None:
    _cache.clear()


async def get_policy(session: AsyncSession) -> Policy:
    """The current policy (cached per database for a few seconds; edits invalidate it)."""
    key = str(session.get_bind().engine.url)
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    rows = await session.execute(
        select(
            RoutingRule.id,
            RoutingRule.category,
            RoutingRule.police,
            RoutingRule.unit_category,
            RoutingRule.route,
            RoutingRule.sla_hours,
        )
    )
    found: tuple[tuple[int, str, str, str, str, int], ...] = tuple(
        (r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows
    )
    if not found:  # not seeded yet: decide by the file (seeding is a write, done by writers)
        found = tuple(
            (-(i + 1), r["category"], r["police"], r["unit_category"], r["route"], int(r["sla_hours"]))
            for i, r in enumerate(default_rules())
        )
    policy = Policy(found)
    _cache[key] = (time.monotonic(), policy)
    return policy
