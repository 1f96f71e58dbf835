"""Training from and backtesting on a user's labelled history, with a non-default column mapping.

Real Spark (local[2]) and a private MLflow server (conftest.py). The history is constructed
(history_data.py) so a forest ranks perfectly: the backtest must report ROC AUC 1.0 and card
precision@4 1.0 on every day, from the CSV (string times in a custom format) and from the Parquet
file (timestamp column) alike.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.model import history_data

pytest.importorskip("pyspark", reason="Spark tests run in the airflow venv")
pytest.importorskip("mlflow", reason="the registry client runs in the airflow venv")

from mlflow.tracking import MlflowClient  # noqa: E402

from spark_jobs import backtest, history, metrics, train  # noqa: E402

pytestmark = pytest.mark.spark

K = history_data.TESTERS  # the card testers of a day


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("history")
    items = history_data.rows()
    return {"csv": history_data.write_csv(folder / "history.csv", items),
            "parquet": history_data.write_parquet(folder / "history.parquet", items)}


@pytest.fixture(scope="module")
def model_name() -> str:
    return f"pa-test-history-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def trained(spark_local: Any, mlflow_server: str, model_name: str, files: dict[str, Path]) -> train.TrainResult:
    args = train.parse_args([
        "--history", str(files["csv"]), "--mapping", json.dumps(history_data.MAPPING),
        "--num-trees", "10", "--max-depth", "5", "--holdout-fraction", "0.3", "--alert-budget", "4/day",
        "--tracking-uri", mlflow_server, "--model-name", model_name])
    return train.run(spark_local, args)


def test_training_from_history_registers_a_version_with_budget_and_pattern_metrics(
        trained: train.TrainResult, mlflow_server: str, model_name: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version(model_name, trained.version)
    assert version.run_id == trained.run_id and not version.aliases  # no --promote: no alias
    run = client.get_run(trained.run_id)
    assert run.data.params["source"] == "history" and run.data.params["alert_budget"] == "4/day"
    got = run.data.metrics
    assert got["roc_auc"] == 1.0
    # holdout: the last 30% of the 30 minutes = day 3 from 12:01; 8 tester windows in minutes 2 and 7, budget 4
    assert got["alerts_at_budget"] == 4.0 and got["precision_at_budget"] == 1.0
    assert got["recall_at_budget"] == 0.5 and got["recall_at_budget.card_testing"] == 0.5
    assert got["positives.card_testing"] == 8.0
    lineage = json.loads(Path(client.download_artifacts(trained.run_id, "lineage.json")).read_text())
    assert lineage["source"]["kind"] == "history" and lineage["source"]["mapping"]["actor"] == "customer"
    assert lineage["source"]["rows"] == len(history_data.rows())


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_backtest_of_a_perfect_ranker(spark_local: Any, trained: train.TrainResult, mlflow_server: str,
                                      model_name: str, files: dict[str, Path], kind: str) -> None:
    mapping = history_data.MAPPING if kind == "csv" else history_data.parquet_mapping()
    result = backtest.backtest(spark_local, files[kind], history.ColumnMapping(**mapping), mlflow_server,
                               model_name, str(trained.version), K, metrics.AlertBudget(per_day=8))
    assert [d["day"] for d in result.daily] == ["2026-02-01", "2026-02-02", "2026-02-03"]
    per_day_windows = (history_data.LEGIT + history_data.TESTERS) * history_data.MINUTES
    for day in result.daily:
        assert (day["windows"], day["fraud_windows"]) == (per_day_windows, 8)
        assert day["roc_auc"] == 1.0 and day["average_precision"] == 1.0
        assert day["card_precision_at_k"] == 1.0 and day["precision_at_k"] == 1.0 and day["recall_at_k"] == 0.5
    total = result.overall
    assert (total["roc_auc"], total["card_precision_at_k"], total["recall_at_k"]) == (1.0, 1.0, 0.5)
    assert total["precision_at_budget"] == 1.0 and total["recall_at_budget.card_testing"] == 1.0
    run = MlflowClient(tracking_uri=mlflow_server).get_run(result.run_id)
    assert run.data.params["model_version"] == str(trained.version) and run.data.metrics["roc_auc"] == 1.0
    history_metric = MlflowClient(tracking_uri=mlflow_server).get_metric_history(result.run_id,
                                                                                  "daily.card_precision_at_k")
    assert [(m.step, m.value) for m in history_metric] == [(0, 1.0), (1, 1.0), (2, 1.0)]


def test_an_alias_selects_the_version(spark_local: Any, trained: train.TrainResult, mlflow_server: str,
                                      model_name: str) -> None:
    MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server).set_registered_model_alias(
        model_name, "challenger", str(trained.version))
    assert backtest.resolve_version(mlflow_server, model_name, "challenger") == (str(trained.version),
                                                                                  trained.run_id)
    with pytest.raises(ValueError, match="MODEL=<version number>"):
        backtest.resolve_version(mlflow_server, model_name, "nobody")


def test_later_rows_do_not_change_earlier_scores(spark_local: Any, trained: train.TrainResult,
                                                 mlflow_server: str, model_name: str, tmp_path: Path) -> None:
    """Time-aware: a window's score depends on nothing after it. The same history cut after day 1,
    then with days 2 and 3 appended (the same customers and testers acting again): day 1's windows
    keep exactly their scores."""
    items = history_data.rows()
    cut = history_data.START.replace(hour=23)
    early = history_data.write_csv(tmp_path / "early.csv", [r for r in items if r["tx_time"] < cut])
    full = history_data.write_csv(tmp_path / "full.csv", items)
    mapping = history.ColumnMapping(**history_data.MAPPING)

    def scores(path: Path) -> dict[tuple[str, str, str], float]:
        result = backtest.backtest(spark_local, path, mapping, mlflow_server, model_name, str(trained.version), K,
                                   metrics.AlertBudget(share=0.1), log=False)
        return {(r.actor_id, r.domain, str(r.window_start)): r.score for r in result.scored.itertuples()}

    before, after = scores(early), scores(full)
    assert len(after) == 3 * len(before)
    assert {key: after[key] for key in before} == before


@pytest.mark.parametrize("change, message", [
    (lambda m: {**m, "actor": "client"}, "column(s) not in the file: actor -> 'client'"),
    (lambda m: {**m, "timestamp_format": "yyyy-MM-dd"}, "set \"timestamp_format\""),
    (lambda m: {**m, "label": "tx_amount"}, "label values are not 0/1"),
    (lambda m: {**m, "amount": "customer"}, "amount values are not numbers"),
    (lambda m: {**m, "domain": "terminal"}, "domain values are not one of"),
])
def test_mapping_errors_name_the_fix(spark_local: Any, files: dict[str, Path], change: Any, message: str) -> None:
    mapping = history.ColumnMapping(**change(history_data.MAPPING))
    with pytest.raises(history.MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        history.labelled_windows(spark_local, files["csv"], mapping)


def test_mapping_text_is_checked_before_spark(tmp_path: Path) -> None:
    assert history.ColumnMapping.from_json(None) == history.ColumnMapping()
    (tmp_path / "m.json").write_text(json.dumps(history_data.MAPPING))
    assert history.ColumnMapping.from_json(str(tmp_path / "m.json")).actor == "customer"
    with pytest.raises(history.MappingError, match="unknown mapping key"):
        history.ColumnMapping.from_json('{"customer": "actor"}')
    with pytest.raises(history.MappingError, match="not valid JSON"):
        history.ColumnMapping.from_json('{"actor": ')
    with pytest.raises(history.MappingError, match="neither a JSON object nor a file"):
        history.ColumnMapping.from_json("no-such-mapping.json")
    with pytest.raises(history.MappingError, match="default_domain"):
        history.ColumnMapping.from_json('{"default_domain": "banking"}')
