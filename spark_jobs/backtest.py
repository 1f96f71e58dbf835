"""Backtest a registered model version on a labelled history file.

    python -m spark_jobs.backtest --file history.csv [--mapping mapping.json] [--model 3|champion]
                                  [--k 100] [--alert-budget 1%]
    make backtest FILE=history.parquet MAPPING='{"actor": "customer_id", ...}' MODEL=challenger

Steps: the file (CSV or Parquet) through the column mapping into the stream's labelled windows
(spark_jobs/history.py: the one feature definition, per actor and 1-minute window, a window is fraud
when any of its transactions is) -> the chosen version's serving file (the numpy forest the scoring
service runs, bit-identical to Spark) scores every window -> per UTC day and overall: ROC AUC,
average precision, precision/recall@k, card precision@k, precision/recall at the alert budget and
recall per pattern (spark_jobs/metrics.py) -> one MLflow run in experiment ``patternalarm-backtest``
(params, overall metrics, per-day metrics as steps, the table and the per-day JSON) -> the table
on stdout.

Time-aware: a window's score uses its own transactions and the history features of earlier windows
(patternalarm/history_features.py; labels only PA_LABEL_DELAY_MIN after a labelled window ended),
nothing after it (tests/model/test_history.py appends later rows and checks earlier scores do not
move; tests/model/test_history_features.py holds the history features to the stream's).

Runs in the ``airflow`` venv, and under spark-submit (the fraud_model_backtest DAG). Importing it
imports neither pyspark nor mlflow.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__":  # spark-submit runs this file as a script: the repo's packages must resolve
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patternalarm import config, history_features  # noqa: E402
from spark_jobs import history, metrics  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

EXPERIMENT = "patternalarm-backtest"
KEYS = ["actor_id", "domain", "window_start"]


@dataclass
class BacktestResult:
    model_name: str
    version: str
    daily: list[dict[str, Any]]
    overall: dict[str, float]
    lineage: dict[str, Any]
    scored: "pd.DataFrame"  # one row per window: KEYS, day, label, pattern, score
    run_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"backtest: {message}", file=sys.stderr, flush=True)


def resolve_version(tracking_uri: str, model_name: str, model: str) -> tuple[str, str]:
    """(version, run id) of ``model``: a version number or an alias of ``model_name``."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        mv = (client.get_model_version(model_name, model) if model.isdigit()
              else client.get_model_version_by_alias(model_name, model))
    except MlflowException as exc:
        raise ValueError(f"model {model_name!r} has no version or alias {model!r} at {tracking_uri}; pass "
                         "MODEL=<version number> or an alias (champion, challenger); `make train` registers one"
                         ) from exc
    return str(mv.version), str(mv.run_id)


def serving_file(tracking_uri: str, model_name: str, version: str, run_id: str, work: Path) -> Path:
    """The version's serving forest, downloaded as the scoring service does."""
    from serving.registry import Registry, RegistryVersion

    registry = Registry(tracking_uri, model_name, "backtest")
    return registry.download(RegistryVersion(name=model_name, version=version, run_id=run_id, alias=None), work)


def window_frame(spark: "SparkSession", windows: "DataFrame") -> "pd.DataFrame":
    """The windows on the driver (Arrow): keys, UTC day, label, pattern and the features."""
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    return (windows.selectExpr(*KEYS, "date_format(window_start, 'yyyy-MM-dd') AS day", "label", "pattern",
                               *history_features.MODEL_FEATURE_NAMES)
            .orderBy(*KEYS).toPandas())


def score(frame: "pd.DataFrame", forest_path: Path) -> "pd.DataFrame":
    """Adds ``score`` (P(fraud)) from the serving forest; the features go in the model's own order."""
    import numpy as np

    from serving.forest_model import ForestModel

    model = ForestModel.load(forest_path)
    try:
        X = frame[list(model.feature_names)].to_numpy(dtype=np.float64)
        scores = model.predict_proba(X) if len(frame) else np.zeros(0)
    finally:
        model.close()
    out = frame[KEYS + ["day", "label", "pattern"]].copy()
    out["score"] = scores
    return out


def evaluate(scored: "pd.DataFrame", k: int, budget: metrics.AlertBudget
             ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """(per-day rows, overall metrics including the alert budget's) of scored windows."""
    import numpy as np

    days = scored["day"].to_numpy(dtype=object)
    actors = scored["actor_id"].to_numpy(dtype=object)
    labels = scored["label"].to_numpy(dtype=np.float64)
    scores = scored["score"].to_numpy(dtype=np.float64)
    daily = metrics.per_day(days, actors, labels, scores, k)
    total = metrics.overall(days, actors, labels, scores, k, daily)
    total.update(metrics.at_budget(labels, scores, days, budget, scored["pattern"].tolist()))
    return daily, total


def log_run(tracking_uri: str, result: BacktestResult, table: str) -> str:
    """One MLflow run: params, overall metrics, per-day metrics as steps (day order), table, JSON."""
    import math

    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"backtest-v{result.version}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}") as run:
        mlflow.log_params(result.params)
        mlflow.log_metrics({k: v for k, v in result.overall.items() if not math.isnan(v)})
        for step, day in enumerate(result.daily):
            stamp = int(datetime.fromisoformat(day["day"]).replace(tzinfo=timezone.utc).timestamp() * 1000)
            for key, value in day.items():
                if key != "day" and not (isinstance(value, float) and math.isnan(value)):
                    mlflow.log_metric(f"daily.{key}", float(value), step=step, timestamp=stamp)
        mlflow.log_text(table, "backtest_table.txt")
        mlflow.log_dict({"daily": result.daily, "overall": result.overall, "lineage": result.lineage},
                        "backtest.json")
        mlflow.set_tags({"patternalarm.model_name": result.model_name, "patternalarm.model_version": result.version})
        return str(run.info.run_id)


def backtest(spark: "SparkSession", path: str | Path, mapping: history.ColumnMapping, tracking_uri: str,
             model_name: str, model: str, k: int, budget: metrics.AlertBudget, log: bool = True
             ) -> BacktestResult:
    """Windows of the file, scored by the version, evaluated, logged (module docstring)."""
    version, run_id = resolve_version(tracking_uri, model_name, model)
    windows, lineage = history.labelled_windows(spark, path, mapping)
    frame = window_frame(spark, windows)
    say(f"{lineage['rows']} transactions -> {len(frame)} windows ({int(frame['label'].sum())} fraud); "
        f"scoring with {model_name} v{version}")
    with tempfile.TemporaryDirectory(prefix="backtest-") as tmp:
        scored = score(frame, serving_file(tracking_uri, model_name, version, run_id, Path(tmp)))
    daily, total = evaluate(scored, k, budget)
    params = {"model_name": model_name, "model_version": version, "model_ref": model, "model_run_id": run_id,
              "k": k, "alert_budget": str(budget), "file": str(path), "file_sha256": lineage["file_sha256"],
              "mapping": json.dumps(lineage["mapping"], sort_keys=True), "window": "1 minute"}
    result = BacktestResult(model_name, version, daily, total, lineage, scored, params=params)
    if log:
        result.run_id = log_run(tracking_uri, result, metrics.table(daily, total, k))
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = config.load()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", required=True, help="labelled history: .csv (header) or .parquet")
    parser.add_argument("--mapping", default=None, help="column mapping: a JSON file or JSON text "
                                                        "(spark_jobs/history.py); default: the default names")
    parser.add_argument("--model", default=settings.model_alias, help="registered version number or alias")
    parser.add_argument("--model-name", default=settings.model_name)
    parser.add_argument("--k", type=int, default=settings.backtest_k, help="top windows/actors per day")
    parser.add_argument("--alert-budget", default=settings.alert_budget, help="'1%%', '0.01' or '50/day'")
    parser.add_argument("--tracking-uri", default=settings.resolved_mlflow_url())
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON summary here")
    parser.add_argument("--master", default=None, help="Spark master; default: spark-submit's, else local[*]")
    return parser.parse_args(argv)


def summary(result: BacktestResult) -> dict[str, Any]:
    return {"model_name": result.model_name, "version": result.version, "run_id": result.run_id,
            "overall": result.overall, "daily": result.daily}


def main(argv: list[str] | None = None) -> int:
    from spark_jobs import train

    started = time.monotonic()
    args = parse_args(argv)
    try:
        mapping = history.ColumnMapping.from_json(args.mapping)
        budget = metrics.AlertBudget.parse(args.alert_budget)
    except ValueError as exc:
        say(str(exc))
        return 2
    spark = train.spark_session(args.master, app_name="patternalarm-backtest")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        result = backtest(spark, args.file, mapping, args.tracking_uri, args.model_name, args.model, args.k, budget)
    except ValueError as exc:  # MappingError included: the message names the fix
        say(str(exc))
        return 2
    finally:
        spark.stop()
    print(metrics.table(result.daily, result.overall, args.k))
    budget_line = {k: round(v, 4) for k, v in result.overall.items() if "budget" in k}
    print(f"alert budget {budget}: {budget_line}")
    print(f"MLflow run {result.run_id} (experiment {EXPERIMENT}); {time.monotonic() - started:.1f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary(result), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
