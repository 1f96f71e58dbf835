"""Backtest a registered model version on a labelled history file (on demand, with parameters).

1. **check**: the file exists and the column mapping parses (a typo fails here, in a second, not
   after Spark has started).
2. **backtest**: SparkSubmitOperator (connection `spark_default`, local[*] by default) runs
   spark_jobs/backtest.py: the file's transactions through the column mapping into the stream's
   1-minute actor windows (the one feature definition, patternalarm/features.py), scored by the
   version's serving forest; per UTC day and overall ROC AUC, average precision, precision/recall@k,
   card precision@k, precision/recall at the alert budget, recall per pattern; one MLflow run in
   experiment `patternalarm-backtest`.
3. **report**: the summary (version, MLflow run, overall metrics) as the task's XCom and log.

Why a DAG of its own rather than a task in fraud_model_retrain's gate: the gate already backtests
the new version against the champion on the most recent labelled period of the retraining set
(PostgreSQL); a history file is a user's on-demand input with its own column mapping, and tying it
to the daily retrain would make every retrain depend on a file being present.

Trigger with config, e.g. `{"file": "/data/history.parquet", "mapping": "{\"actor\": \"customer_id\"}",
"model": "challenger"}`; `make backtest FILE=... [MAPPING=...] [MODEL=...]` runs the same job directly.
"""

from __future__ import annotations

import sys

import pendulum
from airflow.decorators import dag, task
from airflow.models.param import Param
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from patternalarm.config import REPO_ROOT

CHECKED = "{{ ti.xcom_pull(task_ids='check') }}"


@dag(
    dag_id="fraud_model_backtest",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    tags=["patternalarm", "ml"],
    default_args={"owner": "ml", "retries": 1, "retry_delay": pendulum.duration(minutes=1)},
    doc_md=__doc__,
    params={
        "file": Param("", type="string", description="labelled history: .csv (header) or .parquet"),
        "mapping": Param("", type="string", description="column mapping: JSON text or a JSON file; empty: "
                                                        "actor_id, amount, timestamp, label"),
        "model": Param("champion", type="string", description="registered version number or alias"),
        "k": Param(100, type="integer", minimum=1, description="top windows/actors per day"),
        "alert_budget": Param("", type="string", description="'1%', '0.01' or '50/day'; empty: PA_ALERT_BUDGET"),
        "tracking_uri": Param("", type="string", description="MLflow; empty: the stack's (PA_MLFLOW_URL)"),
    },
)
def fraud_model_backtest() -> None:

    @task
    def check(params: dict | None = None, run_id: str | None = None) -> dict[str, str]:
        from pathlib import Path

        from patternalarm import config
        from spark_jobs import history, metrics

        settings = config.load()
        path = Path(params["file"])
        if not params["file"] or not path.exists():
            raise ValueError(f"history file {params['file']!r} not found: trigger with "
                             "{\"file\": \"/path/to/history.csv\"}")
        history.ColumnMapping.from_json(params["mapping"] or None)
        budget = params["alert_budget"] or settings.alert_budget
        metrics.AlertBudget.parse(budget)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(run_id))
        return {"file": str(path.resolve()), "mapping": params["mapping"] or "{}", "alert_budget": budget,
                "tracking_uri": params["tracking_uri"] or settings.resolved_mlflow_url(),
                "model_name": settings.model_name,
                "out": str(settings.resolved_var_dir() / "backtest" / safe / "backtest.json")}

    backtest = SparkSubmitOperator(
        task_id="backtest",
        conn_id="spark_default",
        application=str(REPO_ROOT / "spark_jobs" / "backtest.py"),
        name="patternalarm-backtest",
        driver_memory="2g",  # as spark_jobs/train.spark_session: the windows are collected to score them
        conf={"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable},
        application_args=[
            "--file", "{{ ti.xcom_pull(task_ids='check')['file'] }}",
            "--mapping", "{{ ti.xcom_pull(task_ids='check')['mapping'] }}",
            "--model", "{{ params.model }}", "--k", "{{ params.k }}",
            "--alert-budget", "{{ ti.xcom_pull(task_ids='check')['alert_budget'] }}",
            "--tracking-uri", "{{ ti.xcom_pull(task_ids='check')['tracking_uri'] }}",
            "--model-name", "{{ ti.xcom_pull(task_ids='check')['model_name'] }}",
            "--out", "{{ ti.xcom_pull(task_ids='check')['out'] }}",
        ],
    )

    @task
    def report(checked: dict[str, str]) -> dict:
        import json
        from pathlib import Path

        summary = json.loads(Path(checked["out"]).read_text())
        print(json.dumps({k: summary[k] for k in ("model_name", "version", "run_id", "overall")}, indent=2))
        return {k: summary[k] for k in ("model_name", "version", "run_id", "overall")}

    checked = check()
    checked >> backtest >> report(checked)


fraud_model_backtest()
