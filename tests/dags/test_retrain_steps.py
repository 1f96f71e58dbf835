"""The retraining DAG's steps on their own: extraction from a scratch database, the GX checkpoint,
the gate's rule and the deployment record (no Spark, no MLflow: those run in test_fraud_model_retrain_dag.py)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg2
import pytest

from expectations import training_set
from patternalarm.stack import postgres
from spark_jobs import retrain
from tests.dags import retrain_data
from tests.support.databases import scratch_database


@pytest.fixture(scope="module")
def seeded() -> object:
    with scratch_database("pa_retrain") as settings:
        retrain_data.seed(settings)
        yield settings


def test_extract_labels_reviewed_and_sampled_windows(seeded: object, tmp_path: Path) -> None:
    params = retrain.ExtractParams(sample_rate=0.2, now=retrain_data.end_of_data())
    path = retrain.extract(seeded, tmp_path, params)
    rows = retrain.read_rows(path)
    lineage = json.loads((tmp_path / retrain.LINEAGE_FILE).read_text())
    assert list(rows[0]) == retrain.COLUMNS
    assert lineage["rows"] == len(rows)
    assert lineage["history_retention_days"] == seeded.history_retention_days
    assert "lookback_beyond_retention" not in lineage  # 30 days against the default 38
    with psycopg2.connect(seeded.db_url(seeded.pg_database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'actor_windows' AND last_analyze IS NOT NULL")
        assert cur.fetchone()[0] == 1, "the extraction plans with fresh statistics (retrain.ANALYZE_READ_TABLES)"
    conn.close()
    reviewed = [r for r in rows if r["source"] == "reviewed"]
    sampled = [r for r in rows if r["source"] == "sample"]
    # every window overlapping a verdict is in, labelled by it: 80 fraud (confirmed), 50 legit (false positives)
    assert sum(float(r["label"]) for r in reviewed) == 80 and len(reviewed) == 130
    # the sample is about 20% of the 2,270 unalerted windows, and holds missed frauds from ground truth
    assert 350 < len(sampled) < 560 and any(float(r["label"]) == 1.0 for r in sampled)
    # idempotent: the same parameters give the same file
    again = retrain.extract(seeded, tmp_path / "again", params)
    assert again.read_text() == path.read_text()


def test_label_delay_keeps_recent_unreviewed_windows_out(seeded: object, tmp_path: Path) -> None:
    params = retrain.ExtractParams(sample_rate=1.0, label_delay_hours=0.5, now=retrain_data.end_of_data())
    rows = retrain.read_rows(retrain.extract(seeded, tmp_path, params))
    sampled_starts = {r["window_start"] for r in rows if r["source"] == "sample"}
    assert max(sampled_starts) < "2026-03-01T00:31:00Z"  # 61 minutes of data, last 30 not yet labelled


def test_checkpoint_passes_a_good_set_and_stops_an_empty_one(seeded: object, tmp_path: Path) -> None:
    path = retrain.extract(seeded, tmp_path, retrain.ExtractParams(sample_rate=0.2, now=retrain_data.end_of_data()))
    summary = training_set.run_checkpoint(path, tmp_path / "var", "good")
    assert summary["success"] and summary["failed"] == []
    assert Path(summary["data_docs"]).is_file()
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(retrain.COLUMNS) + "\n")
    with pytest.raises(training_set.TrainingSetInvalid, match="expect_table_row_count_to_be_between"):
        training_set.run_checkpoint(empty, tmp_path / "var", "empty")


def test_gate_rule() -> None:
    new, champion = {"roc_auc": 0.9, "average_precision": 0.70}, {"roc_auc": 0.9, "average_precision": 0.65}
    assert retrain.decide(new, None, "average_precision", 0.0)[0] == "promoted"
    assert retrain.decide(new, champion, "average_precision", 0.01)[0] == "promoted"
    assert retrain.decide(new, champion, "average_precision", 0.10)[0] == "challenger"
    assert retrain.decide(new, champion, "roc_auc", 0.001)[0] == "challenger"
    with pytest.raises(ValueError, match="use one of"):
        retrain.decide(new, champion, "accuracy", 0.0)


def test_a_champion_on_another_feature_list_is_not_servable(tmp_path: Path) -> None:
    """The gate promotes over such a champion (the service would refuse it and serve nothing)."""
    import numpy as np

    from patternalarm.history_features import MODEL_FEATURE_NAMES
    from spark_jobs.forest_export import save_forest
    from tests.model.test_forest_file import _tiny

    old = _tiny()
    current = _tiny()
    current["metadata"].update(feature_names=list(MODEL_FEATURE_NAMES), num_features=len(MODEL_FEATURE_NAMES))
    current["feature_importances"] = np.full(len(MODEL_FEATURE_NAMES), 1.0 / len(MODEL_FEATURE_NAMES))
    assert not retrain.servable(save_forest(old, tmp_path / "old.npz"))
    assert retrain.servable(save_forest(current, tmp_path / "current.npz"))


def test_deployment_record_is_one_row_per_run_and_version(seeded: object) -> None:
    decision = retrain.GateDecision("challenger", "challenger", "7", "3", "average_precision", 0.01,
                                    new={"average_precision": 0.5}, champion={"average_precision": 0.6})
    first = retrain.record_deployment(seeded, decision, "manual:test", "run-1", None)
    decision.decided, decision.alias = "promoted", "champion"
    assert retrain.record_deployment(seeded, decision, "manual:test", "run-1", "serving v7") == first
    out = postgres.psql(seeded, "SELECT version, alias, decided, triggered_by, metrics->>'champion_version' "
                                "FROM model_deployments WHERE run_id = 'run-1'")
    assert out.split("|") == ["7", "champion", "promoted", "manual:test", "3"]


def test_windows_without_sessions_pass_but_other_negative_features_do_not(seeded: object, tmp_path: Path) -> None:
    """Fintech and IoT windows have no session lengths: session_mean is features.MISSING there, a
    value the suite must accept (it stopped the demo's retrain on real stream data)."""
    import csv

    from patternalarm import features

    path = retrain.extract(seeded, tmp_path, retrain.ExtractParams(sample_rate=0.2, now=retrain_data.end_of_data()))
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows[: len(rows) // 2]:
        row["session_mean"] = str(features.MISSING)

    def write(name: str) -> Path:
        out = tmp_path / name
        with out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return out

    assert training_set.run_checkpoint(write("missing.csv"), tmp_path / "var", "missing")["success"]
    rows[0]["txn_count"] = "-1.0"
    with pytest.raises(training_set.TrainingSetInvalid, match=r"expect_column_values_to_be_between\(txn_count\)"):
        training_set.run_checkpoint(write("negative.csv"), tmp_path / "var", "negative")


def test_extracted_history_is_the_scorers_lookup_or_what_it_logged(seeded: object, tmp_path: Path) -> None:
    """Windows stored without history features get them from the window scorer's own query (same
    numbers); a window whose features carry them (logged when it was scored) keeps those."""
    from datetime import datetime

    import psycopg2

    from patternalarm.history_features import HISTORY_FEATURE_NAMES, HistoryKey
    from streaming.history_lookup import history_features

    settings = seeded
    params = retrain.ExtractParams(sample_rate=1.0, now=retrain_data.end_of_data(), history_label_delay_min=10)
    rows = retrain.read_rows(retrain.extract(settings, tmp_path, params))  # type: ignore[arg-type]
    picked = [r for r in rows if r["actor_id"] in ("actor-0", "actor-3")][-30:]
    keys = [HistoryKey(r["actor_id"], datetime.fromisoformat(r["window_start"].replace("Z", "+00:00")), ())
            for r in picked]
    url = settings.db_url(settings.pg_database)  # type: ignore[attr-defined]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        want = history_features(cur, keys, label_delay_min=10)
        logged = picked[0]
        cur.execute("UPDATE actor_windows SET features = features || %s::jsonb "
                    "WHERE actor_id = %s AND window_start = %s",
                    (json.dumps({n: 123.0 for n in HISTORY_FEATURE_NAMES}), logged["actor_id"], keys[0].window_start))
    assert any(w["actor_fraud_rate_1h"] > 0 for w in want), "the seeded fraudster has a fraud history"
    for row, expected in zip(picked, want, strict=True):
        assert {n: float(row[n]) for n in HISTORY_FEATURE_NAMES} == pytest.approx(expected, rel=1e-9, abs=1e-9)
    again = {(r["actor_id"], r["window_start"]): r for r in
             retrain.read_rows(retrain.extract(settings, tmp_path / "again", params))}  # type: ignore[arg-type]
    assert {float(again[(logged["actor_id"], logged["window_start"])][n]) for n in HISTORY_FEATURE_NAMES} == {123.0}
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("UPDATE actor_windows SET features = features - %s::text[] "
                    "WHERE actor_id = %s AND window_start = %s",
                    (list(HISTORY_FEATURE_NAMES), logged["actor_id"], keys[0].window_start))


def test_a_lookback_beyond_the_retention_is_recorded_in_the_lineage(seeded: object, tmp_path: Path) -> None:
    """The retention (PA_HISTORY_RETENTION_DAYS) deletes windows the retrain would otherwise read: the
    run still trains on what is kept, and its lineage says what it could not see."""
    days = seeded.history_retention_days + 10
    params = retrain.ExtractParams(sample_rate=0.2, now=retrain_data.end_of_data(), lookback_days=days)
    retrain.extract(seeded, tmp_path, params)
    lineage = json.loads((tmp_path / retrain.LINEAGE_FILE).read_text())
    assert "PA_HISTORY_RETENTION_DAYS" in lineage["lookback_beyond_retention"]

