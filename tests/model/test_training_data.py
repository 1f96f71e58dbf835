"""Training rows: Spark's features equal the Python definition, and labels follow the ground truth.

Same rows -> same features: for generated events, every (actor, 1-minute window) row Spark computes
with ``features.sql_select_list()`` equals ``features.compute`` over that window's transactions
(``features.txn_from_event``), to 1e-9. That is the guard against training/serving skew: the scoring
service computes exactly ``features.compute`` on a request's transactions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from patternalarm import features
from patternalarm.events import parse_timestamp
from patternalarm.history_features import MODEL_FEATURE_NAMES
from tests.model.conftest import Labelled

pytest.importorskip("pyspark", reason="Spark tests run in the airflow venv")

from spark_jobs import training_data  # noqa: E402

pytestmark = pytest.mark.spark

TOLERANCE = 1e-9
Key = tuple[str, str, int]  # actor_id, domain, window start (epoch seconds)


def _window_key(event: dict[str, Any]) -> tuple[Key, datetime]:
    moment = parse_timestamp(event["timestamp"])
    start = moment.replace(second=0, microsecond=0)
    return (event["actor_id"], event["domain"], int(start.timestamp())), moment


def python_windows(events: list[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    """The events of each actor's 1-minute window, grouped in plain Python (the independent side)."""
    groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        key, _ = _window_key(event)
        groups[key].append(event)
    return groups


def spark_rows(rows: Any) -> dict[Key, dict[str, Any]]:
    collected = rows.selectExpr("actor_id", "domain", "unix_seconds(window_start) AS ws",
                                "unix_seconds(window_end) - unix_seconds(window_start) AS length",
                                "label", "pattern", *MODEL_FEATURE_NAMES).collect()
    out = {(r["actor_id"], r["domain"], int(r["ws"])): r.asDict() for r in collected}
    assert len(out) == len(collected), "one row per actor and window"
    return out


def assert_same_rows(got: dict[Key, dict[str, Any]], want: dict[Key, dict[str, Any]]) -> None:
    """Same windows, labels and patterns; features to TOLERANCE (a sum's order follows partitioning)."""
    assert got.keys() == want.keys()
    for key, row in want.items():
        other = got[key]
        assert {k: v for k, v in other.items() if k not in MODEL_FEATURE_NAMES} == \
            {k: v for k, v in row.items() if k not in MODEL_FEATURE_NAMES}, key
        for name in MODEL_FEATURE_NAMES:
            assert abs(other[name] - row[name]) <= TOLERANCE, (key, name, other[name], row[name])


@pytest.fixture(scope="module")
def rows(spark_local: Any, labelled: Labelled) -> dict[Key, dict[str, Any]]:
    payloads = training_data.payloads_from_dicts(spark_local, labelled.events)
    return spark_rows(training_data.training_rows(spark_local, payloads, labelled.truth))


def test_the_data_exercises_the_features(labelled: Labelled, rows: dict[Key, dict[str, Any]]) -> None:
    """Guard against a vacuous comparison: all domains, multi-event windows, attacks across minutes."""
    assert {k[1] for k in rows} == {"fintech", "ecommerce", "gaming", "iot"}
    assert sum(1 for r in rows.values() if r["txn_count"] >= 5) >= 20
    assert any(r["session_mean"] == features.MISSING for r in rows.values())
    for share in ("small_amount_share", "large_amount_share", "cross_border_share", "short_session_share"):
        values = {r[share] for r in rows.values()}
        assert values & {2 / 7, 1 / 3, 1 / 6, 1 / 7, 2 / 3, 5 / 7, 5 / 6, 4 / 7, 3 / 7, 6 / 7}, share
    assert any(r["window_span_sec"] % 60 not in (0, 15, 30, 45) for r in rows.values() if r["txn_count"] > 2)
    per_instance = [{_window_key(e)[0] for e in labelled.events if e["transaction_id"] in set(t["transaction_ids"])}
                    for t in labelled.truth]
    assert any(len(keys) == 2 for keys in per_instance), "some instance should straddle a minute boundary"


def test_spark_features_equal_python_features(labelled: Labelled, rows: dict[Key, dict[str, Any]]) -> None:
    expected = python_windows(labelled.events)
    assert set(rows) == set(expected)
    worst: tuple[float, Key | None, str] = (0.0, None, "")
    for key, events in expected.items():
        txns = [features.txn_from_event(e, _window_key(e)[1]) for e in events]
        want = features.compute(txns)
        got = rows[key]
        assert got["length"] == 60
        for name, value in zip(features.FEATURE_NAMES, want, strict=True):
            diff = abs(got[name] - value)
            if diff > worst[0]:
                worst = (diff, key, name)
    assert worst[0] <= TOLERANCE, f"largest difference {worst[0]} in {worst[2]} of window {worst[1]}"


def test_windows_of_injected_instances_are_labelled_1_and_the_rest_0(
        labelled: Labelled, rows: dict[Key, dict[str, Any]]) -> None:
    by_txn = {e["transaction_id"]: e for e in labelled.events}
    injected: dict[Key, str] = {}
    for instance in labelled.truth:
        for txn_id in instance["transaction_ids"]:
            injected[_window_key(by_txn[txn_id])[0]] = instance["pattern"]
    assert len(labelled.truth) >= 30 and injected
    for key, row in rows.items():
        if key in injected:
            assert (row["label"], row["pattern"]) == (1.0, injected[key]), key
        else:
            assert (row["label"], row["pattern"]) == (0.0, None), key


def test_events_breaking_the_contract_are_dropped_like_dead_letters(
        spark_local: Any, labelled: Labelled, rows: dict[Key, dict[str, Any]], tmp_path: Path) -> None:
    """A file with malformed lines, wrong kinds and bad timestamps gives the same rows as the clean
    events: training never learns from what the job would have sent to the dead-letter topic."""
    bad = dict(labelled.events[0], transaction_id="tx-bad-amount", amount="12.50")
    late = dict(labelled.events[1], transaction_id="tx-bad-time", timestamp="2026-01-01 00:00:01")
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(e) for e in labelled.events[:2]] + ["{not json", json.dumps(bad), json.dumps(late), "[]"]
    lines += [json.dumps(e) for e in labelled.events[2:]]
    path.write_text("\n".join(lines) + "\n")
    from_file = spark_rows(training_data.training_rows(
        spark_local, training_data.payloads_from_file(spark_local, path), labelled.truth))
    assert_same_rows(from_file, rows)


def test_rows_from_actor_windows_match_rows_from_events(spark_local: Any, labelled: Labelled) -> None:
    """The retraining path: actor_windows rows (features as the scorer's JSON) + labelled intervals give
    the same features and labels as the events + ground truth path."""
    from pyspark.sql import functions as F

    events_rows = training_data.training_rows(
        spark_local, training_data.payloads_from_dicts(spark_local, labelled.events), labelled.truth)
    table = events_rows.select(*training_data.KEY_COLUMNS,
                               F.to_json(F.struct(*MODEL_FEATURE_NAMES)).alias("features"))
    intervals = spark_local.createDataFrame(
        [(t["actor_id"], datetime.fromisoformat(t["first_event_time"]), datetime.fromisoformat(t["last_event_time"]),
          1.0) for t in labelled.truth],
        "actor_id string, first_event_time timestamp, last_event_time timestamp, label double")
    from_table = spark_rows(training_data.rows_from_actor_windows(table, intervals))
    from_events = spark_rows(events_rows)
    assert_same_rows(from_table, {k: dict(r, pattern=None) for k, r in from_events.items()})


def test_rows_from_actor_windows_drop_incomplete_windows_and_let_fraud_win(spark_local: Any) -> None:
    t0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    complete = json.dumps({n: 1.0 for n in MODEL_FEATURE_NAMES})
    partial = json.dumps({n: 1.0 for n in MODEL_FEATURE_NAMES[:-1]})  # e.g. written without history
    minute = 60
    windows = spark_local.createDataFrame(
        [("a", "fintech", t0, complete), ("b", "fintech", t0, partial),
         ("c", "gaming", t0, complete), ("d", "gaming", t0, complete)],
        "actor_id string, domain string, window_start timestamp, features string"
    ).withColumn("window_end", training_data_window_end(minute))
    labels = spark_local.createDataFrame(
        [("c", t0, t0, 0.0), ("c", t0, t0, 1.0), ("d", t0, t0, 0.0)],
        "actor_id string, first_event_time timestamp, last_event_time timestamp, label double")
    out = {r["actor_id"]: r["label"] for r in training_data.rows_from_actor_windows(windows, labels).collect()}
    assert out == {"a": 0.0, "c": 1.0, "d": 0.0}


def training_data_window_end(seconds: int) -> Any:
    from pyspark.sql import functions as F

    return F.col("window_start") + F.expr(f"INTERVAL {seconds} SECONDS")
