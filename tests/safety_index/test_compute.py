"""The scoring rules of the index model, on hand-made metric values (no database)."""

from __future__ import annotations

import random

import pytest

from eqian.safety_index.backtest import auc, top_decile_capture
from eqian.safety_index.compute import (
    competition_ranks,
    grade_for,
    group_ranks,
    load_model,
    parse_model,
    score_many,
    score_unit,
    score_values,
)

MONTH = "2026-03"


def test_no_data_is_a_full_score() -> None:
    s = score_unit(load_model(), {}, unit_id=7, month=MONTH)
    assert (s.score, s.grade, s.items, s.advice) == (100.0, "excellent", (), ())


def test_deductions_bonuses_caps_and_advice() -> None:
    model = load_model()
    values = {
        "incidents.police": 2,  # 2 × 3 = 6
        "incidents.non_police": 3,  # 3 × 1 = 3  -> incidents 9
        "hazards.found": 3,
        "hazards.overdue_open": 6,  # 3 + 24 = 27, capped at 20
        "workforce.hired": 4,
        "workforce.registered_on_time": 3,  # 75 % of 10 points -> 2.5 off
        "hazards.self_inspections": 5,  # bonus 5, capped at 3
        "messaging.instructions": 0,  # no base: nothing, even with no acknowledgement
        "unknown.metric": 99,  # not in the model: ignored
    }
    s = score_unit(model, values, unit_id=7, month=MONTH)
    by = {i.code: i for i in s.items}
    assert by["incidents"].points == 9
    assert by["incidents"].sign == "deduction"
    assert by["incidents"].reason == "本月涉及本单位警务类警情 2 起、非警务类 3 起，其中严重警情 0 起"
    assert by["hazards"].points == 20
    assert by["workforce"].points == 2.5
    assert "75.0%" in by["workforce"].reason
    assert by["self_inspection"].points == 3
    assert by["self_inspection"].sign == "bonus"
    assert "instructions" not in by
    assert by["hazards"].link == "/hazards?unit_id=7&month=2026-03"
    assert by["hazards"].metrics == ("hazards.found", "hazards.overdue_open")
    assert s.score == 100 - 9 - 20 - 2.5 + 3 == 71.5
    assert s.grade == "fair"
    # Advice: the components with the largest deductions first, bonuses never.
    advice = {c.code: c.advice for c in model.components}
    assert s.advice == (advice["hazards"], advice["incidents"], advice["workforce"])


def test_average_and_clamping() -> None:
    model = load_model()
    # Rectified 2 hazards in 30 days in total: 15 days average, 8 over the 7-day threshold -> 4 points.
    s = score_unit(model, {"hazards.rectified": 2, "hazards.rectify_days_sum": 30}, unit_id=1, month=MONTH)
    (item,) = s.items
    assert (item.code, item.points) == ("rectify_speed", 4.0)
    assert "15 天" in item.reason
    terrible = dict.fromkeys(model.metrics, 1000.0)
    terrible.update({"workforce.registered_on_time": 0, "activities.attended": 0})
    assert score_unit(model, terrible, unit_id=1, month=MONTH).score >= 0


def test_grades_and_ranks() -> None:
    model = load_model()
    assert [grade_for(x, model) for x in (100, 90, 89.9, 75, 60, 59.9, 0)] == [
        "excellent",
        "excellent",
        "good",
        "good",
        "fair",
        "poor",
        "poor",
    ]
    assert competition_ranks([80, 95, 80, 60]) == [2, 1, 2, 4]
    ranks, sizes = group_ranks(["a", "b", "a", "a"], [70, 10, 90, 70])
    assert ranks == [2, 1, 1, 2]
    assert sizes == [3, 1, 3, 3]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"version": ""}, "version"),
        ({"grades": {"excellent": 60, "good": 75, "fair": 50}}, "grade thresholds"),
        ({"component": [{"code": "x", "name": "x", "max": 5, "reason": "", "kind": "ratio"}]}, "kind"),
        ({"component": [{"code": "x", "name": "x", "max": 5, "reason": "", "terms": []}]}, "metrics"),
    ],
)
def test_bad_models_are_refused(patch: dict[str, object], message: str) -> None:
    raw: dict[str, object] = {
        "version": "t",
        "grades": {"excellent": 90, "good": 75, "fair": 60},
        "component": [
            {"code": "a", "name": "a", "max": 5, "reason": "", "terms": [{"metric": "m", "points": 1}]}
        ],
    }
    raw.update(patch)
    with pytest.raises(ValueError, match=message):
        parse_model(raw)


def test_auc_and_top_decile_on_known_cases() -> None:
    assert auc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert auc([1, 1, 1, 1], [True, False, True, False]) == 0.5
    assert auc([2, 1, 1, 0], [True, True, False, False]) == 0.875  # one tie counted half
    assert auc([1, 2], [True, True]) is None
    risk = list(range(20, 0, -1))  # unit 0 riskiest
    labels = [i in (0, 5, 10, 15) for i in range(20)]
    assert top_decile_capture(risk, labels) == 0.25  # top 2: units 0 and 1, one of four positives
    # Ties at the cut share the places out: 4 tied for 2 places, 2 of them positive -> 1 captured.
    assert top_decile_capture([5, 5, 5, 5] + [0] * 16, [True, True, False, False] + [False] * 16) == 0.5


def test_a_slice_of_units_scores_as_each_unit_alone() -> None:
    """``compute_month`` scores units a slice at a time, component by component over the slice:
    each unit's score, grade and figures are those it gets alone, whatever its neighbours."""
    model = load_model()
    rng = random.Random(7)
    metrics = sorted(model.metrics)
    units = [
        {m: float(rng.choice((0, 1, 2, 3, 7, 40, 250))) for m in rng.sample(metrics, rng.randint(0, 14))}
        for _ in range(300)
    ]
    alone = [score_values(model, v) for v in units]
    assert score_many(model, units) == alone
    assert {round(s, 1) for s, _, _ in alone} != {100.0}  # the sample does deduct
    assert any(items for _, _, items in alone)
    assert not all(items for _, _, items in alone)
