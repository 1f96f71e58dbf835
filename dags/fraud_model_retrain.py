"""Daily retraining of the fraud model on analysts' verdicts, gated against the champion.

1. **extract**: the training set from PostgreSQL into var/retrain/<run id>/training_set.csv: windows
   of incidents with a verdict, plus a hashed sample of windows that raised no alert, labelled by the
   delayed ground truth (spark_jobs/retrain.py says why and how; `sample_rate`, `label_delay_hours`,
   `lookback_days`, `seed` are parameters).
2. **validate**: the Great Expectations suite `fraud_training_set` (expectations/training_set.py:
   schema, nulls, ranges, label balance, `min_rows`); a failure stops the run, and the report is in
   Data Docs at var/gx/gx/uncommitted/data_docs/local_site/index.html.
3. **train**: SparkSubmitOperator (connection `spark_default`: local[*] by default, the master is the
   connection's host) runs spark_jobs/retrain.py: the training job of spark_jobs/train.py on that file,
   one MLflow run (params; metrics on the time-split holdout: ROC AUC, average precision, precision
   and recall at the threshold and at the alert budget `alert_budget` / PA_ALERT_BUDGET; lineage,
   Spark model, serving file), a new registered version.
4. **gate**: the new version and the current champion score the most recent labelled period; the new
   one gets alias `champion` only when `gate_metric` is better by `gate_margin`, else `challenger`.
5. **serve**: when promoted, the scoring service reloads and /predict/health must report the new
   version (`verify_serving`: false skips this, e.g. against a private registry).
6. **record**: one row in `model_deployments` (version, alias, decision, metrics, who triggered it).

Manual runs: Trigger DAG w/ config, e.g. `{"gate_margin": 0.02, "triggered_by": "alice"}`;
`make retrain` runs it from the command line.
"""

from __future__ import annotations

import sys

import pendulum
from airflow.decorators import dag, task
from airflow.models.param import Param
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from patternalarm.config import REPO_ROOT

FOLDER = "{{ ti.xcom_pull(task_ids='extract')['folder'] }}"


@dag(
    dag_id="fraud_model_retrain",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["patternalarm", "ml"],
    default_args={"owner": "ml", "retries": 1, "retry_delay": pendulum.duration(minutes=2)},
    doc_md=__doc__,
    params={
        "sample_rate": Param(0.05, type="number", minimum=0, maximum=1,
                             description="share of unalerted windows sampled as ground-truth-labelled rows"),
        "label_delay_hours": Param(1.0, type="number", minimum=0,
                                   description="unalerted windows younger than this have no label yet"),
        "lookback_days": Param(30.0, type="number", minimum=0),
        "seed": Param(42, type="integer"),
        "now": Param("", type="string", description="ISO-8601 reference time of the extraction; empty: now"),
        "min_rows": Param(200, type="integer", minimum=1),
        "min_positive_share": Param(0.01, type="number"),
        "max_positive_share": Param(0.6, type="number"),
        "num_trees": Param(50, type="integer", minimum=1),
        "max_depth": Param(8, type="integer", minimum=1),
        "holdout_fraction": Param(0.2, type="number"),
        "alert_budget": Param("", type="string",
                              description="for precision/recall at the budget: '1%', '0.01' or '50/day'; "
                                          "empty: PA_ALERT_BUDGET"),
        "gate_metric": Param("average_precision", enum=["average_precision", "roc_auc"]),
        "gate_margin": Param(0.005, type="number"),
        "tracking_uri": Param("", type="string", description="MLflow; empty: the stack's (PA_MLFLOW_URL)"),
        "verify_serving": Param(True, type="boolean"),
        "triggered_by": Param("", type="string", description="who/what started it; empty: the run type"),
    },
)
def fraud_model_retrain() -> None:

    @task
    def extract(params: dict | None = None, run_id: str | None = None) -> dict[str, str]:
        from patternalarm import config
        from spark_jobs import retrain

        settings = config.load()
        folder = retrain.run_folder(settings, str(run_id))
        extract_params = retrain.ExtractParams(
            sample_rate=float(params["sample_rate"]), label_delay_hours=float(params["label_delay_hours"]),
            lookback_days=float(params["lookback_days"]), seed=int(params["seed"]), now=params["now"] or None)
        path = retrain.extract(settings, folder, extract_params)
        tracking_uri = params["tracking_uri"] or settings.resolved_mlflow_url()
        return {"file": str(path), "folder": str(folder), "tracking_uri": tracking_uri,
                "model_name": settings.model_name}

    @task
    def validate(extracted: dict[str, str], params: dict | None = None, run_id: str | None = None) -> dict:
        from pathlib import Path

        from expectations import training_set
        from patternalarm import config

        from airflow.exceptions import AirflowFailException

        thresholds = training_set.Thresholds(min_rows=int(params["min_rows"]),
                                             min_positive_share=float(params["min_positive_share"]),
                                             max_positive_share=float(params["max_positive_share"]))
        try:
            return training_set.run_checkpoint(Path(extracted["file"]), config.load().resolved_var_dir(),
                                               str(run_id), thresholds)
        except training_set.TrainingSetInvalid as exc:
            # The same file fails the same way again: no retry, the run stops here at once.
            raise AirflowFailException(str(exc)) from exc

    train = SparkSubmitOperator(
        task_id="train",
        conn_id="spark_default",
        application=str(REPO_ROOT / "spark_jobs" / "retrain.py"),
        name="patternalarm-retrain",
        driver_memory="2g",  # as spark_jobs/train.spark_session; spark-submit's 1g is tight for 1M windows
        conf={"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable},
        application_args=[
            "--input", "{{ ti.xcom_pull(task_ids='extract')['file'] }}",
            "--out", FOLDER + "/train_result.json",
            "--tracking-uri", "{{ ti.xcom_pull(task_ids='extract')['tracking_uri'] }}",
            "--model-name", "{{ ti.xcom_pull(task_ids='extract')['model_name'] }}",
            "--num-trees", "{{ params.num_trees }}", "--max-depth", "{{ params.max_depth }}",
            "--seed", "{{ params.seed }}", "--holdout-fraction", "{{ params.holdout_fraction }}",
            "--alert-budget", "{{ params.alert_budget }}",
        ],
    )

    @task
    def gate(extracted: dict[str, str], params: dict | None = None) -> dict:
        import json
        from dataclasses import asdict
        from pathlib import Path

        from patternalarm import config
        from spark_jobs import retrain

        trained = json.loads((Path(extracted["folder"]) / retrain.RESULT_FILE).read_text())
        decision = retrain.gate(config.load(), Path(extracted["file"]), str(trained["version"]),
                                extracted["tracking_uri"], params["gate_metric"], float(params["gate_margin"]),
                                float(params["holdout_fraction"]))
        return asdict(decision)

    @task
    def serve(decision: dict, params: dict | None = None) -> str:
        from patternalarm import config
        from spark_jobs import retrain

        if decision["decided"] != "promoted":
            return f"not promoted ({decision['decided']}): the service keeps v{decision['champion_version']}"
        if not params["verify_serving"]:
            return "promoted; serving check skipped (verify_serving=false)"
        return retrain.reload_and_verify(config.load(), decision["version"])

    @task
    def record(decision: dict, serving: str, params: dict | None = None, dag_run=None, run_id: str | None = None
               ) -> int:
        from patternalarm import config
        from spark_jobs import retrain

        triggered_by = params["triggered_by"] or str(getattr(dag_run, "run_type", "unknown"))
        return retrain.record_deployment(config.load(), retrain.GateDecision(**decision), triggered_by,
                                         str(run_id), serving)

    extracted = extract()
    validated = validate(extracted)
    decision = gate(extracted)
    validated >> train >> decision
    record(decision, serve(decision))


fraud_model_retrain()
