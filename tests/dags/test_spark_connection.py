"""spark_default, as the stack configures it (services.airflow_env, set by conftest.py), makes
spark-submit use every core: `--master local[*]` in the command SparkSubmitHook builds, which is
the command the DAGs' SparkSubmitOperator tasks run (provider 4.1.5 ignores the URI form's `master`
extra, so the connection is the JSON form with the master as its host)."""

from __future__ import annotations

import json
import os

from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook



def test_spark_default_is_the_json_form_with_all_cores() -> None:
    assert json.loads(os.environ["AIRFLOW_CONN_SPARK_DEFAULT"]) == {"conn_type": "spark", "host": "local[*]"}


def test_spark_submit_command_uses_local_star() -> None:
    command = SparkSubmitHook(conn_id="spark_default")._build_spark_submit_command("spark_jobs/retrain.py")
    assert command[0] == "spark-submit"
    assert command[command.index("--master") + 1] == "local[*]"
    assert command.count("--master") == 1


def test_the_dags_submit_through_spark_default() -> None:
    from airflow.models import DagBag

    from patternalarm.config import REPO_ROOT

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"), include_examples=False)
    for dag_id, task_id in (("fraud_model_retrain", "train"), ("fraud_model_backtest", "backtest")):
        operator = bag.get_dag(dag_id).get_task(task_id)
        assert operator._conn_id == "spark_default", (dag_id, operator._conn_id)
