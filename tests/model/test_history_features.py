"""History features in Spark (spark_jobs/training_data.add_history, used by `make train` and the
backtest) equal ``patternalarm.history_features.reference`` on the rows of
tests/support/history_cases.py, the same rows tests/streaming/test_history_lookup.py holds
PostgreSQL (the window scorer's query) to: so Spark and the stream agree. Also: nothing after a
window changes it, and a user's history file gets the same features through the mapping path.
"""

from __future__ import annotations

import csv
import math
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from patternalarm import config
from patternalarm.history_features import HISTORY_FEATURE_NAMES, MODEL_FEATURE_NAMES, HistoryKey, PastWindow, reference
from spark_jobs import history, training_data
from tests.support import history_cases as cases


def frame(spark: Any, windows: Sequence[PastWindow]) -> Any:
    rows = [(w.actor_id, "fintech", w.window_start, w.window_start + timedelta(minutes=1),
             1.0 if w.fraud_known_at is not None else 0.0, w.txn_count, w.amount_sum, list(w.counterparties))
            for w in windows]
    return spark.createDataFrame(rows, "actor_id string, domain string, window_start timestamp, "
                                       "window_end timestamp, label double, txn_count double, amount_sum double, "
                                       "counterparties array<string>")


def by_key(df: Any) -> dict[tuple[str, Any], dict[str, float]]:
    return {(r["actor_id"], r["window_start"]): {n: r[n] for n in HISTORY_FEATURE_NAMES} for r in df.collect()}


def assert_matches_reference(got: dict[tuple[str, Any], dict[str, float]], windows: Sequence[PastWindow],
                             delay: int) -> None:
    for w in cases.windows():
        key = HistoryKey(w.actor_id, w.window_start, w.counterparties)
        want = reference(windows, key, delay)
        row = got[(w.actor_id, w.window_start.replace(tzinfo=None))]
        for name in HISTORY_FEATURE_NAMES:
            assert math.isclose(row[name], want[name], rel_tol=1e-9, abs_tol=1e-9), (key, name, row[name], want[name])


def test_spark_equals_the_reference(spark_local: Any) -> None:
    for delay in (cases.LABEL_DELAY_MIN, 0):
        got = by_key(training_data.add_history(frame(spark_local, cases.windows()), delay))
        assert len(got) == len(cases.windows())
        assert_matches_reference(got, cases.windows(), delay)


def test_later_windows_and_labels_change_nothing(spark_local: Any) -> None:
    before = by_key(training_data.add_history(frame(spark_local, cases.windows()), cases.LABEL_DELAY_MIN))
    later = by_key(training_data.add_history(frame(spark_local, cases.windows() + cases.later_windows()),
                                             cases.LABEL_DELAY_MIN))
    assert {k: later[k] for k in before} == before


def test_a_history_file_gets_the_same_history_features(spark_local: Any, tmp_path: Path) -> None:
    """The cases as transactions in a CSV (`make train FILE=... MAPPING=...`): windows, then history."""
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["customer", "ts", "amt", "fraud", "terminal"])
        for w in cases.windows():
            n = int(w.txn_count)
            for i in range(n):
                party = w.counterparties[i % len(w.counterparties)] if w.counterparties else ""
                moment = w.window_start + timedelta(seconds=1 + i)
                out.writerow([w.actor_id, moment.strftime("%Y-%m-%d %H:%M:%S"), repr(w.amount_sum / n),
                              int(w.fraud_known_at is not None), party])
    mapping = history.ColumnMapping.from_json('{"actor": "customer", "timestamp": "ts", "amount": "amt", "label": '
                                              '"fraud", "counterparty": "terminal", "default_domain": "fintech"}')
    windows, _ = history.labelled_windows(spark_local, path, mapping)
    assert windows.columns[-len(MODEL_FEATURE_NAMES):] == list(MODEL_FEATURE_NAMES)
    assert_matches_reference(by_key(windows), cases.windows(), config.load().label_delay_min)


def test_the_feature_fingerprint_follows_the_definitions_not_the_query(monkeypatch: Any) -> None:
    """A training run records a fingerprint of the feature definitions (``patternalarm.features_sha``).
    Rewriting PostgreSQL's query for speed (migrations 018, 019) changed it while the features stayed
    the same; now only the definition (names, constants, the Python reference) does."""
    from patternalarm import history_features

    before = history_features.definition_text()
    monkeypatch.setattr(history_features, "postgres_sql", lambda keys, parties: "SELECT 1")
    assert history_features.definition_text() == before
    monkeypatch.setattr(history_features, "HORIZONS", (("1h", 60), ("1d", 1440)))
    assert history_features.definition_text() != before
