"""Train the fraud model in Spark, evaluate it on later windows, log it to MLflow and register it.

    python -m spark_jobs.train --events FILE.jsonl --truth TRUTH.jsonl [--promote]
    python -m spark_jobs.train --generate 30 [--seed 42 --fraud-rate 0.004] [--promote]
    python -m spark_jobs.train --quickstart        # `make train`: generated data, registered, champion
    python -m spark_jobs.train --history FILE.csv|.parquet [--mapping MAPPING.json] [--promote]
                                                   # `make train FILE=... MAPPING=...`: your own history

Steps, each a function below: labelled rows (spark_jobs/training_data.py) -> time-based split (the
last windows are the holdout: the model is judged on a future it did not see) -> RandomForest on the
features in MODEL_FEATURE_NAMES order (window then history features), positives up-weighted so the
rare class counts -> ROC AUC, average precision, precision/recall at the decision threshold and at the
alert budget, recall per injected
pattern (spark_jobs/metrics.py) on the holdout -> one MLflow run in experiment
"patternalarm-fraud" with params, metrics, data lineage, the Spark model (``spark_model``) and the
serving file (``serving_model/forest.npz``, spark_jobs/forest_export.py) -> a new version of the
registered model, and with --promote the serving alias on it. The version is printed (JSON summary).

Runs in the ``airflow`` venv (pyspark, mlflow, numpy); works under spark-submit too (--master unset).
Importing it has no side effects and does not import pyspark or mlflow.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from patternalarm import config, features, history_features, model_registry
from patternalarm.config import REPO_ROOT
from spark_jobs import history, metrics, training_data

if TYPE_CHECKING:
    import numpy as np
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame, SparkSession

EXPERIMENT = "patternalarm-fraud"
SPARK_ARTIFACT = "spark_model"
SERVING_DIR, SERVING_FILE = "serving_model", "forest.npz"  # serving/registry.py: serving_model/forest.npz
WEIGHT = "weight"
_ISO = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"  # Spark pattern for ISO-8601 UTC strings in lineage and the split

# `make train` and the demo's first model: ~2 minutes on 2 cores, a few hundred injected instances.
QUICKSTART = {"generate": 30.0, "mode": "NORMAL", "fraud_rate": 0.004, "seed": 42, "num_trees": 40,
              "max_depth": 8}
GENERATED_START = "2026-01-01T00:00:00+00:00"  # simulated clock of generated data (like the generator CLI)


@dataclass(frozen=True)
class ForestParams:
    num_trees: int = 50
    max_depth: int = 8
    seed: int = 42
    max_bins: int = 32


@dataclass
class Dataset:
    """Labelled rows plus where they came from (logged to MLflow as the run's lineage)."""

    rows: "DataFrame"
    lineage: dict[str, Any]


@dataclass
class Split:
    train: "DataFrame"
    holdout: "DataFrame"
    cutoff: str  # first window_start of the holdout, ISO-8601 UTC


@dataclass
class TrainResult:
    model: "PipelineModel"
    split: Split
    metrics: dict[str, float]
    lineage: dict[str, Any]
    params: dict[str, Any]
    run_id: str
    version: str | None
    promoted: bool
    serving_reload: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def say(message: str) -> None:
    """Progress on stderr (stdout carries the JSON summary)."""
    print(f"train: {message}", file=sys.stderr, flush=True)


# --- data ----------------------------------------------------------------------------------------

def generate_labelled(minutes: float, seed: int, fraud_rate: float, mode: str, out_dir: Path,
                      start: str = GENERATED_START, patterns: tuple[str, ...] | None = None,
                      ) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """Events (a JSONL file under out_dir) and ground truth from the generator's offline run
    (``patterns``: the injected patterns to draw from; all registered ones by default).

    Offline: a simulated clock at the mode's rate, nothing sleeps, and the seed makes the output
    byte-for-byte reproducible. Stdlib and the repo only (no Kafka, no database).
    """
    from streaming.generator import EventStream, run_offline
    from streaming.load_profile import rate_function

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"events-seed{seed}.jsonl"
    truth: list[dict[str, Any]] = []
    run_id = f"train-seed{seed}"
    stream = EventStream(seed, fraud_rate, run_id, patterns)
    with path.open("w") as out:
        def write(event: dict[str, Any]) -> None:
            out.write(json.dumps(event, separators=(",", ":")) + "\n")

        stats = run_offline(stream, write, truth.append, rate_function(mode)(0), minutes * 60.0,
                            datetime.fromisoformat(start))
    source = {"kind": "generated", "minutes": minutes, "mode": mode, "fraud_rate": fraud_rate, "seed": seed,
              "start": start, "generator_run_id": run_id, "events_generated": stats.produced,
              "injected_instances": stats.injected}
    return path, truth, source


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(spark: "SparkSession", events_path: Path, truth: list[dict[str, Any]],
                 source: Mapping[str, Any]) -> Dataset:
    """Training rows from an events file and its ground truth, cached, with counts for the lineage."""
    payloads = training_data.payloads_from_file(spark, events_path)
    prepared = training_data.prepare_events(payloads).cache()
    rows = training_data.window_rows(spark, prepared, training_data.truth_transactions(spark, truth)).cache()
    total = payloads.count()
    valid = prepared.count()
    span = prepared.selectExpr(f"date_format(MIN(event_time), \"{_ISO}\") AS first",
                               f"date_format(MAX(event_time), \"{_ISO}\") AS last").first()
    windows = rows.count()  # materialise the rows' cache before dropping the events' one
    prepared.unpersist()
    lineage = {"source": dict(source), "events_file": str(events_path), "events_total": total,
               "events_valid": valid, "events_rejected": total - valid, "truth_instances": len(truth),
               "windows": windows, "event_time_first": span["first"], "event_time_last": span["last"]}
    return Dataset(rows, lineage)


def split_by_time(rows: "DataFrame", holdout_fraction: float) -> Split:
    """Train on the earlier windows, hold out the last ``holdout_fraction`` of the distinct minutes.

    Why by time and not at random: windows of one attack and of one minute's traffic are alike, so a
    random split leaks them into both sides; the model's real job is scoring minutes it never saw.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout fraction {holdout_fraction} must be between 0 and 1 (e.g. 0.2)")
    starts = sorted(r[0] for r in rows.selectExpr(f"date_format(window_start, \"{_ISO}\")").distinct().collect())
    if len(starts) < 2:
        raise ValueError(f"the data spans {len(starts)} window(s); a time split needs at least 2 minutes: "
                         "generate or pass more data")
    first_holdout = min(len(starts) - 1, max(1, round(len(starts) * (1.0 - holdout_fraction))))
    cutoff = starts[first_holdout]
    condition = f"window_start >= to_timestamp('{cutoff}', \"{_ISO}\")"
    return Split(rows.filter(f"NOT ({condition})"), rows.filter(condition), cutoff)


def label_counts(rows: "DataFrame") -> tuple[int, int]:
    """(negatives, positives)."""
    counts = {float(r[0]): int(r[1]) for r in rows.groupBy(training_data.LABEL).count().collect()}
    return counts.get(0.0, 0), counts.get(1.0, 0)


def class_weights(negatives: int, positives: int) -> dict[float, float]:
    """'Balanced' weights n / (2 n_class): each class carries half the total weight.

    Why: a few positive windows per thousand; unweighted, the forest's leaves are almost all
    majority-class and the fraud probability is squashed towards 0.
    """
    if negatives == 0 or positives == 0:
        raise ValueError(f"training windows: {negatives} negative, {positives} positive; both classes are "
                         "needed: generate more minutes or raise --fraud-rate")
    total = negatives + positives
    return {0.0: total / (2.0 * negatives), 1.0: total / (2.0 * positives)}


def with_weights(rows: "DataFrame", weights: Mapping[float, float]) -> "DataFrame":
    from pyspark.sql import functions as F

    return rows.withColumn(WEIGHT, F.when(F.col(training_data.LABEL) == 1.0, F.lit(weights[1.0]))
                           .otherwise(F.lit(weights[0.0])))


# --- model ---------------------------------------------------------------------------------------

def fit_forest(train: "DataFrame", params: ForestParams) -> "PipelineModel":
    """VectorAssembler over MODEL_FEATURE_NAMES (the order forest_export and the service rely on) + forest."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import VectorAssembler

    assembler = VectorAssembler(inputCols=list(history_features.MODEL_FEATURE_NAMES), outputCol="features")
    forest = RandomForestClassifier(featuresCol="features", labelCol=training_data.LABEL, weightCol=WEIGHT,
                                    numTrees=params.num_trees, maxDepth=params.max_depth,
                                    maxBins=params.max_bins, seed=params.seed)
    return Pipeline(stages=[assembler, forest]).fit(train)


def forest_stage(model: "PipelineModel") -> Any:
    return model.stages[-1]


@dataclass
class Scored:
    """The holdout's windows as arrays: what spark_jobs/metrics.py reads."""

    labels: "np.ndarray"
    scores: "np.ndarray"  # P(fraud)
    days: "np.ndarray"  # UTC day of the window start, 'YYYY-MM-DD'
    actors: "np.ndarray"
    patterns: list[str | None]


def score_rows(model: "PipelineModel", rows: "DataFrame") -> Scored:
    """P(fraud) of every row, with its label, day, actor and ground-truth pattern."""
    import numpy as np
    from pyspark.ml.functions import vector_to_array

    scored = (model.transform(rows)
              .selectExpr(training_data.LABEL, "date_format(window_start, 'yyyy-MM-dd') AS day", "actor_id",
                          "pattern", "probability").withColumn("p", vector_to_array("probability")[1])
              .select(training_data.LABEL, "p", "day", "actor_id", "pattern").collect())
    return Scored(labels=np.asarray([r[0] for r in scored], dtype=np.float64),
                  scores=np.asarray([r[1] for r in scored], dtype=np.float64),
                  days=np.asarray([r[2] for r in scored], dtype=object),
                  actors=np.asarray([r[3] for r in scored], dtype=object),
                  patterns=[r[4] for r in scored])


def evaluate_holdout(scored: Scored, threshold: float, budget: metrics.AlertBudget) -> dict[str, float]:
    """:func:`evaluate` plus precision/recall at the alert budget and recall per pattern."""
    at_budget = metrics.at_budget(scored.labels, scored.scores, scored.days, budget, scored.patterns)
    return {**evaluate(scored.labels, scored.scores, threshold),
            **{k: v for k, v in at_budget.items() if v == v}}  # NaN (no alert, no positive) is not logged


def evaluate(labels: "np.ndarray", scores: "np.ndarray", threshold: float) -> dict[str, float]:
    """Ranking quality (ROC AUC, average precision) and the decision at ``threshold``."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        raise ValueError(f"the holdout has {positives} positive windows of {labels.size}; both classes are "
                         "needed to evaluate: generate more minutes, raise --fraud-rate or the holdout fraction")
    flagged = scores >= threshold
    tp = int(np.sum(flagged & (labels == 1.0)))
    fp = int(np.sum(flagged & (labels == 0.0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives
    return {"roc_auc": float(roc_auc_score(labels, scores)),
            "average_precision": float(average_precision_score(labels, scores)),
            "precision_at_threshold": precision, "recall_at_threshold": recall,
            "f1_at_threshold": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "holdout_true_positives": float(tp), "holdout_false_positives": float(fp),
            "holdout_false_negatives": float(positives - tp)}


# --- MLflow --------------------------------------------------------------------------------------

def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def feature_definition_sha() -> str:
    """Fingerprint of the feature definitions (window SQL and history): a model is only valid with them."""
    text = features.sql_select_list() + history_features.definition_text()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def log_run(tracking_uri: str, model: "PipelineModel", params: Mapping[str, Any], metrics: Mapping[str, float],
            lineage: Mapping[str, Any]) -> str:
    """One run in EXPERIMENT: params, metrics, lineage.json, the Spark model and the serving file."""
    import mlflow
    import pyspark
    from mlflow.models import Model
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from spark_jobs.forest_export import export_and_save

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    names = list(history_features.MODEL_FEATURE_NAMES)
    signature = ModelSignature(inputs=Schema([ColSpec("double", n) for n in names]),
                               outputs=Schema([ColSpec("double")]))
    with mlflow.start_run(run_name=f"forest-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}") as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.log_dict(dict(lineage), "lineage.json")
        mlflow.set_tags({"patternalarm.features_sha": feature_definition_sha(),
                         "patternalarm.git_commit": str(lineage.get("git_commit")),
                         "patternalarm.source": str(lineage["source"].get("kind"))})
        # What mlflow.spark.log_model falls back to for a proxied (mlflow-artifacts:) store, without
        # first trying Hadoop on that scheme (an ERROR stack trace in the log, then the same result).
        # Explicit requirements: otherwise MLflow reloads the model in a fresh Spark to infer them.
        Model.log(artifact_path=SPARK_ARTIFACT, flavor=mlflow.spark, spark_model=model, signature=signature,
                  pip_requirements=[f"pyspark=={pyspark.__version__}"])
        with tempfile.TemporaryDirectory(prefix="forest-") as tmp:
            path = export_and_save(forest_stage(model), names, Path(tmp) / SERVING_FILE)
            mlflow.log_artifact(str(path), artifact_path=SERVING_DIR)
        return str(run.info.run_id)


def register(tracking_uri: str, name: str, run_id: str, alias: str | None,
             description: str | None = None) -> str:
    """A new version of ``name`` from the run's Spark model; ``alias`` moved onto it when given."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    version = mlflow.register_model(f"runs:/{run_id}/{SPARK_ARTIFACT}", name, await_registration_for=120)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if description:
        client.update_model_version(name, version.version, description=description)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


# --- the job -------------------------------------------------------------------------------------

def train(spark: "SparkSession", dataset: Dataset, params: ForestParams, holdout_fraction: float,
          threshold: float, tracking_uri: str, model_name: str, alias: str | None,
          budget: metrics.AlertBudget | None = None) -> TrainResult:
    """Split, fit, evaluate, log, register (and alias when ``alias`` is given); see the module doc."""
    started = time.monotonic()
    budget = budget or metrics.AlertBudget.parse(config.load().alert_budget)
    split = split_by_time(dataset.rows, holdout_fraction)
    negatives, positives = label_counts(split.train)
    weights = class_weights(negatives, positives)
    say(f"{dataset.lineage['events_valid']} valid events ({dataset.lineage['events_rejected']} rejected); "
        f"training on {negatives + positives} windows ({positives} positive) before {split.cutoff}")
    model = fit_forest(with_weights(split.train, weights), params)
    fit_seconds = time.monotonic() - started
    scored = score_rows(model, split.holdout)
    labels = scored.labels
    run_metrics = {**evaluate_holdout(scored, threshold, budget), "fit_seconds": round(fit_seconds, 2)}
    say(f"holdout: {labels.size} windows ({int(labels.sum())} positive): ROC AUC {run_metrics['roc_auc']:.4f}, "
        f"AP {run_metrics['average_precision']:.4f}, precision {run_metrics['precision_at_threshold']:.4f} / recall "
        f"{run_metrics['recall_at_threshold']:.4f} at {threshold}; at the alert budget {budget}: precision "
        f"{run_metrics.get('precision_at_budget', float('nan')):.4f} / recall "
        f"{run_metrics.get('recall_at_budget', float('nan')):.4f}")
    lineage = {**dataset.lineage, "git_commit": _git_commit(),
               "feature_names": list(history_features.MODEL_FEATURE_NAMES),
               "label_delay_min": config.load().label_delay_min,
               "features_sha": feature_definition_sha(), "window": training_data.WINDOW,
               "holdout_first_window": split.cutoff, "train_windows": negatives + positives,
               "train_positive_windows": positives, "holdout_windows": int(labels.size),
               "holdout_positive_windows": int(labels.sum()),
               "train_positive_share": positives / (negatives + positives),
               "holdout_positive_share": float(labels.mean())}
    run_params = {"num_trees": params.num_trees, "max_depth": params.max_depth, "max_bins": params.max_bins,
                  "seed": params.seed, "holdout_fraction": holdout_fraction, "threshold": threshold,
                  "alert_budget": str(budget),
                  "weight_negative": round(weights[0.0], 6), "weight_positive": round(weights[1.0], 6),
                  "num_features": len(history_features.MODEL_FEATURE_NAMES),
                  "label_delay_min": config.load().label_delay_min, "source": dataset.lineage["source"].get("kind")}
    source = dataset.lineage["source"]
    run_params.update({f"data_{k}": v for k, v in source.items() if k in ("minutes", "mode", "fraud_rate", "seed")})
    for key in ("train_windows", "train_positive_windows", "holdout_windows", "holdout_positive_windows"):
        run_metrics[key] = float(lineage[key])
    run_id = log_run(tracking_uri, model, run_params, run_metrics, lineage)
    say(f"logged run {run_id} to {tracking_uri} (experiment {EXPERIMENT})")
    description = (f"RandomForest {params.num_trees} trees depth {params.max_depth}; holdout ROC AUC "
                   f"{run_metrics['roc_auc']:.4f}, AP {run_metrics['average_precision']:.4f}; run {run_id}")
    version = register(tracking_uri, model_name, run_id, alias, description)
    say(f"registered {model_name} v{version}" + (f", alias {alias!r} now on it" if alias else ""))
    return TrainResult(model=model, split=split, metrics=run_metrics, lineage=lineage, params=run_params,
                       run_id=run_id, version=version, promoted=alias is not None)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = config.load()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data (one of --events/--truth, --generate, --history, --quickstart)")
    data.add_argument("--events", type=Path, help="contract events, one JSON object per line")
    data.add_argument("--truth", type=Path, help="ground truth JSONL of those events (generator --truth-file)")
    data.add_argument("--history", type=Path, help="your labelled transactions: .csv (header) or .parquet")
    data.add_argument("--mapping", default=None, help="--history's column mapping: a JSON file or JSON text "
                                                      "(spark_jobs/history.py); default: the default names")
    data.add_argument("--generate", type=float, metavar="N_MINUTES", help="generate N simulated minutes offline")
    data.add_argument("--mode", default="NORMAL", help="generator load mode for --generate (events/min)")
    data.add_argument("--fraud-rate", type=float, default=settings.fraud_rate, help="for --generate")
    data.add_argument("--seed", type=int, default=settings.generator_seed, help="generator and forest seed")
    data.add_argument("--work-dir", type=Path, default=settings.resolved_var_dir() / "train",
                      help="where generated events are written")
    data.add_argument("--quickstart", action="store_true",
                      help=f"`make train`: {QUICKSTART}, --promote and --reload-serving")
    model = parser.add_argument_group("model")
    model.add_argument("--num-trees", type=int, default=ForestParams.num_trees)
    model.add_argument("--max-depth", type=int, default=ForestParams.max_depth)
    model.add_argument("--holdout-fraction", type=float, default=0.2, help="last share of the minutes held out")
    model.add_argument("--threshold", type=float, default=0.5, help="decision threshold for precision/recall")
    model.add_argument("--alert-budget", default=settings.alert_budget,
                       help="alerts analysts review, for precision/recall at the budget: '1%%', '0.01' or '50/day'")
    registry = parser.add_argument_group("registry")
    registry.add_argument("--tracking-uri", default=settings.resolved_mlflow_url())
    registry.add_argument("--model-name", default=settings.model_name)
    registry.add_argument("--promote", action="store_true", help=f"set alias {settings.model_alias!r} on the version")
    registry.add_argument("--alias", default=settings.model_alias)
    registry.add_argument("--reload-serving", action="store_true",
                          help="then POST the scoring service's /admin/reload (skipped when it is not running)")
    parser.add_argument("--master", default=None, help="Spark master; default: spark-submit's, else local[*]")
    args = parser.parse_args(argv)
    if args.quickstart:
        for key, value in QUICKSTART.items():  # quickstart values, except what was given explicitly
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
        args.promote = args.reload_serving = True
    sources = [name for name, given in (("--events", args.events is not None), ("--generate", args.generate
               is not None), ("--history", args.history is not None)) if given]
    if len(sources) > 1:
        parser.error(f"{' and '.join(sources)} are alternatives: pass one")
    if not sources or (sources == ["--events"] and args.truth is None):
        parser.error("give --events FILE and --truth FILE, or --generate N_MINUTES, or --history FILE "
                     "[--mapping M], or --quickstart")
    try:
        metrics.AlertBudget.parse(args.alert_budget)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def spark_session(master: str | None, app_name: str = "patternalarm-train") -> "SparkSession":
    """Local-friendly defaults: UTC session time (windows and the lineage's times), few shuffle
    partitions (the data is MBs, not GBs), no UI. Under spark-submit its settings win.

    Python workers run this interpreter unless PYSPARK_PYTHON says otherwise: Spark's default is
    ``python3`` from PATH, which is not the venv (no pandas/pyarrow for the contract check's UDF).
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = (SparkSession.builder.appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "8")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", "2g"))
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


def history_dataset(spark: "SparkSession", path: Path, mapping: history.ColumnMapping) -> Dataset:
    """Training rows from a user's labelled history (spark_jobs/history.py), cached, with lineage."""
    rows, source = history.labelled_windows(spark, path, mapping)
    rows = rows.cache()
    span = rows.selectExpr(f"date_format(MIN(window_start), \"{_ISO}\") AS first",
                           f"date_format(MAX(window_end), \"{_ISO}\") AS last", "COUNT(*) AS windows").first()
    lineage = {"source": source, "events_file": str(path), "events_total": source["rows"],
               "events_valid": source["rows"], "events_rejected": 0, "windows": int(span["windows"]),
               "event_time_first": span["first"], "event_time_last": span["last"]}
    return Dataset(rows, lineage)


def dataset_from_args(spark: "SparkSession", args: argparse.Namespace) -> Dataset:
    if args.history is not None:
        say(f"reading labelled history {args.history}")
        return history_dataset(spark, args.history, history.ColumnMapping.from_json(args.mapping))
    if args.generate is not None:
        say(f"generating {args.generate:g} simulated minutes at {args.mode} (fraud rate {args.fraud_rate}, "
            f"seed {args.seed}) into {args.work_dir}")
        path, truth, source = generate_labelled(args.generate, args.seed, args.fraud_rate, args.mode, args.work_dir)
        return load_dataset(spark, path, truth, source)
    source = {"kind": "file", "events": str(args.events), "events_sha256": _sha256(args.events),
              "truth": str(args.truth), "truth_sha256": _sha256(args.truth), "seed": args.seed}
    return load_dataset(spark, args.events, training_data.read_truth(args.truth), source)


def run(spark: "SparkSession", args: argparse.Namespace) -> TrainResult:
    """The CLI's work on an existing session (tests call this)."""
    settings = config.load()
    dataset = dataset_from_args(spark, args)
    params = ForestParams(num_trees=args.num_trees, max_depth=args.max_depth, seed=args.seed)
    result = train(spark, dataset, params, args.holdout_fraction, args.threshold, args.tracking_uri,
                   args.model_name, args.alias if args.promote else None,
                   metrics.AlertBudget.parse(args.alert_budget))
    if args.reload_serving and result.promoted:
        result.serving_reload = model_registry.reload_serving(settings)
        say(f"scoring service reload: {result.serving_reload}")
    return result


def summary(result: TrainResult, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    return {"model_name": args.model_name, "version": result.version, "run_id": result.run_id,
            "alias": args.alias if result.promoted else None, "tracking_uri": args.tracking_uri,
            "metrics": {k: round(v, 6) for k, v in result.metrics.items()},
            "train_windows": result.lineage["train_windows"], "holdout_windows": result.lineage["holdout_windows"],
            "serving_reload": result.serving_reload, "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    spark = spark_session(args.master)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        result = run(spark, args)
    except ValueError as exc:
        say(str(exc))
        return 2
    finally:
        spark.stop()
    print(json.dumps(summary(result, args, time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
