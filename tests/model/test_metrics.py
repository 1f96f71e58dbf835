"""spark_jobs/metrics.py on hand-computed cases (no Spark)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spark_jobs import metrics

DAYS = np.asarray(["d1"] * 5 + ["d2"] * 5, dtype=object)
ACTORS = np.asarray(["a", "a", "b", "c", "d", "a", "b", "b", "c", "d"], dtype=object)
LABELS = np.asarray([1, 0, 0, 1, 0, 0, 1, 1, 0, 0], dtype=np.float64)
SCORES = np.asarray([0.9, 0.8, 0.7, 0.2, 0.1, 0.3, 0.95, 0.5, 0.6, 0.05])


def test_budget_parsing() -> None:
    assert metrics.AlertBudget.parse("1%") == metrics.AlertBudget(share=0.01)
    assert metrics.AlertBudget.parse("0.25") == metrics.AlertBudget(share=0.25)
    assert metrics.AlertBudget.parse(" 50/day ") == metrics.AlertBudget(per_day=50)
    assert [str(metrics.AlertBudget.parse(t)) for t in ("0.01", "2.5%", "50/day")] == ["1%", "2.5%", "50/day"]
    for bad in ("0", "150%", "x/day", "0/day", "lots"):
        with pytest.raises(ValueError, match="50/day"):
            metrics.AlertBudget.parse(bad)


def test_top_k_and_card_precision_per_day() -> None:
    daily = metrics.per_day(DAYS, ACTORS, LABELS, SCORES, k=2)
    d1, d2 = daily
    # d1: top-2 windows 0.9 (fraud), 0.8 (legit); 2 frauds that day
    assert (d1["precision_at_k"], d1["recall_at_k"]) == (0.5, 0.5)
    # d1 actors by max score: a 0.9 (fraud), b 0.7 (legit) -> 1/2
    assert d1["card_precision_at_k"] == 0.5
    # d2: top-2 windows 0.95 (fraud), 0.6 (legit); actors: b 0.95 (fraud), c 0.6 (legit)
    assert (d2["precision_at_k"], d2["recall_at_k"], d2["card_precision_at_k"]) == (0.5, 0.5, 0.5)
    # d1 AUC: positives {0.9, 0.2} vs negatives {0.8, 0.7, 0.1}: pairs won 3 + 1 of 6
    assert d1["roc_auc"] == pytest.approx(4 / 6)
    total = metrics.overall(DAYS, ACTORS, LABELS, SCORES, 2, daily)
    assert total["recall_at_k"] == 2 / 4 and total["precision_at_k"] == 0.5 and total["days"] == 2.0


def test_perfect_ranking_scores_one() -> None:
    scores = LABELS + np.linspace(0, 0.1, LABELS.size)
    daily = metrics.per_day(DAYS, ACTORS, LABELS, scores, k=1)
    total = metrics.overall(DAYS, ACTORS, LABELS, scores, 1, daily)
    assert total["roc_auc"] == 1.0 and total["average_precision"] == 1.0
    assert total["card_precision_at_k"] == 1.0 and total["precision_at_k"] == 1.0


def test_one_class_day_has_no_auc() -> None:
    daily = metrics.per_day(np.asarray(["d"] * 3, dtype=object), np.asarray(["a", "b", "c"], dtype=object),
                            np.zeros(3), np.asarray([0.1, 0.2, 0.3]), k=2)
    assert math.isnan(daily[0]["roc_auc"]) and math.isnan(daily[0]["recall_at_k"])
    assert "-" in metrics.table(daily, metrics.overall(np.asarray(["d"] * 3, dtype=object),
                                                       np.asarray(["a", "b", "c"], dtype=object), np.zeros(3),
                                                       np.asarray([0.1, 0.2, 0.3]), 2, daily), 2)


def test_alert_budget_share_per_day_and_per_pattern() -> None:
    patterns = ["card_testing", None, None, "structuring", None, None, "card_testing", "structuring", None, None]
    share = metrics.at_budget(LABELS, SCORES, DAYS, metrics.AlertBudget(share=0.2), patterns)
    # top 2 of 10: 0.95 (fraud, card_testing) and 0.9 (fraud, card_testing)
    assert (share["alerts_at_budget"], share["precision_at_budget"], share["recall_at_budget"]) == (2.0, 1.0, 0.5)
    assert share["recall_at_budget.card_testing"] == 1.0 and share["recall_at_budget.structuring"] == 0.0
    assert share["positives.card_testing"] == 2.0
    daily = metrics.at_budget(LABELS, SCORES, DAYS, metrics.AlertBudget(per_day=1))
    # d1 top: 0.9 fraud; d2 top: 0.95 fraud
    assert (daily["alerts_at_budget"], daily["precision_at_budget"], daily["recall_at_budget"]) == (2.0, 1.0, 0.5)


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        metrics.per_day(DAYS, ACTORS, LABELS, SCORES, k=0)
