"""The fraud_model_backtest DAG with dag.test(): a model trained on the constructed history
(tests/model/history_data.py) is registered in a private MLflow server, then the DAG's check task,
spark-submit of spark_jobs/backtest.py through spark_default, and the report run to success, and the
backtest's MLflow run holds the perfect ranker's numbers. A bad mapping fails in the check task,
before Spark."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.models import DagBag
from airflow.utils.state import DagRunState

from patternalarm.config import REPO_ROOT
from tests.model import history_data
from tests.model.conftest import mlflow_server  # noqa: F401  (the private registry fixture)

MODEL_NAME = "patternalarm-fraud"  # the DAG reads PA_MODEL_NAME's default


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    previous = os.environ.get("PA_VAR_DIR")
    os.environ["PA_VAR_DIR"] = str(tmp_path_factory.mktemp("var"))
    try:
        yield history_data.write_csv(tmp_path_factory.mktemp("history") / "history.csv", history_data.rows())
    finally:
        if previous is None:
            os.environ.pop("PA_VAR_DIR", None)
        else:
            os.environ["PA_VAR_DIR"] = previous


@pytest.fixture(scope="module")
def version(history_file: Path, mlflow_server: str) -> str:  # noqa: F811
    from spark_jobs import train

    spark = train.spark_session("local[2]", app_name="patternalarm-backtest-dag-test")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        args = train.parse_args(["--history", str(history_file), "--mapping", json.dumps(history_data.MAPPING),
                                 "--num-trees", "10", "--max-depth", "5", "--holdout-fraction", "0.3",
                                 "--tracking-uri", mlflow_server, "--model-name", MODEL_NAME,
                                 "--alias", "champion", "--promote"])
        return str(train.run(spark, args).version)
    finally:
        spark.stop()


@pytest.fixture(scope="module")
def dag() -> Any:
    loaded = DagBag(dag_folder=str(REPO_ROOT / "dags"), include_examples=False).get_dag("fraud_model_backtest")
    for t in loaded.tasks:
        t.retries = 0  # a failure must end the test run now, not wait for a retry
    return loaded


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_the_backtest_dag_reports_the_perfect_ranker(dag: Any, history_file: Path, version: str,
                                                     mlflow_server: str) -> None:  # noqa: F811
    from mlflow.tracking import MlflowClient

    run = dag.test(run_conf={"file": str(history_file), "mapping": json.dumps(history_data.MAPPING),
                             "model": "champion", "k": history_data.TESTERS, "alert_budget": "8/day",
                             "tracking_uri": mlflow_server})
    assert run.state == DagRunState.SUCCESS, states(run)
    report = next(ti for ti in run.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    assert report["version"] == version
    assert report["overall"]["roc_auc"] == 1.0 and report["overall"]["card_precision_at_k"] == 1.0
    logged = MlflowClient(tracking_uri=mlflow_server).get_run(report["run_id"])
    assert logged.data.params["model_version"] == version and logged.data.params["alert_budget"] == "8/day"
    assert logged.data.metrics["recall_at_budget.card_testing"] == 1.0


def test_a_bad_mapping_fails_before_spark(dag: Any, history_file: Path, mlflow_server: str) -> None:  # noqa: F811
    run = dag.test(run_conf={"file": str(history_file), "mapping": '{"customer": "actor"}', "model": "champion",
                             "k": 4, "alert_budget": "", "tracking_uri": mlflow_server})
    assert run.state == DagRunState.FAILED
    got = states(run)
    assert got["check"] == "failed" and got["backtest"] == "upstream_failed"
