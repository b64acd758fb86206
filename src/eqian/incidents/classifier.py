"""Classification of a 110 call's Chinese description (placeholder until the lexicon lands).

Contract: ``classify(text)`` returns a ``Classification``; ``CATEGORIES`` maps the stable codes to
Chinese labels; ``suggest_rules(overrides)`` turns officers' corrections into lexicon suggestions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CATEGORIES: dict[str, str] = {
    "labor": "劳资纠纷",
    "processing_fee": "加工费纠纷",
    "economic": "经济纠纷",
    "contract": "合同纠纷",
    "family": "家庭纠纷",
    "neighbor": "邻里纠纷",
    "traffic": "交通事故",
    "theft": "盗窃",
    "fraud": "诈骗",
    "fire": "火灾/消防",
    "help": "走失/求助",
    "public_order": "治安",
    "environment": "生态环境",
    "other": "其他",
}


@dataclass(frozen=True)
class Classification:
    category: str
    police: bool
    confidence: float
    evidence: tuple[str, ...]
    version: str


@dataclass(frozen=True)
class RuleSuggestion:
    word: str
    category: str
    support: int  # how many corrected descriptions contain the word


def lexicon_version() -> str:
    return "0"


def classify(text: str) -> Classification:
    return Classification("other", True, 0.0, (), lexicon_version())


def suggest_rules(overrides: Iterable[tuple[str, str]]) -> list[RuleSuggestion]:
    return []
