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


def test_the_query_on_a_real_database_scores_score_only_incidents_by_actor() -> None:
    """MATCHES on a migrated database: a rule incident matched by a transaction id, a score-only
    (suspicious_activity) incident explained by an overlapping instance of its actor, and one that
    nothing explains."""
    from patternalarm.stack import postgres
    from streaming import evaluate
    from tests.support.databases import scratch_database

    with scratch_database("pa_test_evaluate") as settings:
        postgres.psql(settings, """
            INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, transaction_ids,
                                      first_event_time, last_event_time) VALUES
              ('g1', 'run-e', 'card_testing', 'ecommerce', 'user-1', '["t1","t2"]',
               '2026-01-05 10:00', '2026-01-05 10:03'),
              ('g2', 'run-e', 'structuring', 'fintech', 'acct-1', '["s1","s2","s3"]',
               '2026-01-05 10:10', '2026-01-05 10:20');
            INSERT INTO alerts (alert_id, pattern, domain, actor_id, severity, first_event_time, event_time,
                                emitted_at, transaction_ids) VALUES
              ('a1', 'card_testing', 'ecommerce', 'user-1', 'HIGH', '2026-01-05 10:00', '2026-01-05 10:03',
               '2026-01-05 10:03:03', '["t1","t2"]'),
              ('a2', 'suspicious_activity', 'fintech', 'acct-1', 'MEDIUM', '2026-01-05 10:19',
               '2026-01-05 10:20', '2026-01-05 10:21', '[]'),
              ('a3', 'suspicious_activity', 'gaming', 'player-9', 'MEDIUM', '2026-01-05 10:05',
               '2026-01-05 10:06', '2026-01-05 10:07', '[]');""")
        run_id, scores = evaluate.evaluate("run-e")

    by_pattern = {s.pattern: s for s in scores}
    assert run_id == "run-e"
    assert (by_pattern["card_testing"].detected, by_pattern["card_testing"].precision) == (1, 1.0)
    suspicious = by_pattern[evaluate.SCORE_ONLY]
    assert (suspicious.instances, suspicious.incidents, suspicious.true_incidents) == (0, 2, 1)
    assert suspicious.precision == 0.5
    assert by_pattern["structuring"].detected == 0  # a score-only incident is not a structuring detection
