"""Scoring of incidents against ground truth (the arithmetic; the query runs in the integration tests)."""

from __future__ import annotations

import pytest

from streaming.evaluate import score


def test_precision_recall_f1_and_delays() -> None:
    rows = [
        ("instance", "card_testing", "i1", 0.8),
        ("instance", "card_testing", "i2", 1.2),
        ("instance", "card_testing", "i3", None),  # missed
        ("incident", "card_testing", "c1", 1),
        ("incident", "card_testing", "c2", 1),
        ("incident", "card_testing", "c3", 0),  # false alarm
        ("incident", "structuring", "c4", 0),
    ]
    by_pattern = {s.pattern: s for s in score(rows)}
    card = by_pattern["card_testing"]
    assert (card.instances, card.detected, card.incidents, card.true_incidents) == (3, 2, 3, 2)
    assert card.precision == pytest.approx(2 / 3, abs=1e-4) and card.recall == pytest.approx(2 / 3, abs=1e-4)
    assert card.f1 == pytest.approx(2 / 3, abs=1e-4)
    assert card.delay_p50_s == 0.8 or card.delay_p50_s == 1.2
    assert card.delay_p99_s == 1.2
    structuring = by_pattern["structuring"]
    assert structuring.precision == 0.0 and structuring.recall == 1.0 and structuring.delay_p50_s is None
