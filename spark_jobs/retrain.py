"""Retraining on what the stream saw: extract, train (under spark-submit), gate, record.

The ``fraud_model_retrain`` DAG (dags/fraud_model_retrain.py) wires these functions; each is
importable and testable on its own, and importing this module imports neither pyspark, mlflow,
psycopg2 nor great_expectations (the DAG file imports it at parse time).

Training set (:func:`extract`), one row per ``actor_windows`` row (actor, 1-minute window):

* **Reviewed windows**: windows of an actor that overlap (event time) an incident with an analyst's
  verdict; label 1 when a fraud verdict covers it, else 0 (a legit verdict: a known false positive,
  the most useful negative there is).
* **Unalerted sample**: windows that no incident overlaps, sampled at ``sample_rate`` (default 5%)
  by a hash of (actor, window start, seed), so a re-run of the same day picks the same rows
  (idempotent task) and a different seed a different sample. They are labelled by the delayed ground
  truth (1 when a ground_truth instance of the actor overlaps the window, else 0) and only when the
  window ended at least ``label_delay`` before the extraction: in real operations chargebacks and
  reports arrive days later, and a window whose label cannot be known yet would be a false 0.
  Why the sample: trained only on what it already flagged, the model never learns about the frauds
  the patterns miss, nor what ordinary traffic looks like (selection bias).

Both parts are limited to windows that ended within ``lookback`` of the extraction. The file is a
CSV (header, ISO-8601 UTC times) under the run folder with a ``lineage.json`` next to it.

Gate (:func:`gate`): the new version and the current champion score the most recent labelled period
(the last ``holdout_fraction`` of the set's minutes, the same cut the training job holds out, so the
new model has not seen it) with their serving files (serving/forest_model.py, numpy, no Spark); the
new version is promoted (alias champion) only when its ``metric`` beats the champion's by ``margin``,
otherwise it gets alias challenger. No champion yet, or a champion on another feature list (the
service refuses to serve it): promoted. A period with one class only cannot
rank anything: refused (no alias moves).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if __name__ == "__main__":  # spark-submit runs this file as a script: the repo's packages must resolve
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patternalarm import features, history_features  # noqa: E402
from patternalarm.config import Settings  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

TRAINING_FILE = "training_set.csv"
LINEAGE_FILE = "lineage.json"
RESULT_FILE = "train_result.json"
KEY_COLUMNS = ["actor_id", "domain", "window_start", "window_end"]
META_COLUMNS = ["label", "source"]  # source: 'reviewed' or 'sample'
COLUMNS = KEY_COLUMNS + META_COLUMNS + list(history_features.MODEL_FEATURE_NAMES)
METRICS = ("roc_auc", "average_precision")
CHALLENGER = "challenger"


@dataclass(frozen=True)
class ExtractParams:
    sample_rate: float = 0.05
    label_delay_hours: float = 0.0
    lookback_days: float = 30.0
    seed: int = 42
    now: str | None = None  # ISO-8601 UTC; default: the extraction's clock (tests and backfills pin it)
    history_label_delay_min: int | None = None  # history features' label delay; default PA_LABEL_DELAY_MIN

    def resolved_label_delay_min(self) -> int:
        from patternalarm import config

        return config.load().label_delay_min if self.history_label_delay_min is None \
            else int(self.history_label_delay_min)

    def reference_time(self) -> datetime:
        return datetime.fromisoformat(self.now) if self.now else datetime.now(timezone.utc)


@dataclass
class GateDecision:
    decided: str  # promoted | challenger | refused
    alias: str | None
    version: str
    champion_version: str | None
    metric: str
    margin: float
    new: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] = field(default_factory=dict)
    period_start: str | None = None
    period_rows: int = 0
    reason: str = ""


def run_folder(settings: Settings, run_id: str) -> Path:
    """var/retrain/<run id> (characters a path does not like replaced)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return settings.resolved_var_dir() / "retrain" / safe


# --- extract -------------------------------------------------------------------------------------

def _feature_selects() -> str:
    """Window features as the scorer stored them; history features as it logged them, else computed
    now by the scorer's own query (history_features.postgres_sql) for windows stored without them."""
    window = [f"(r.features->>'{n}')::double precision AS \"{n}\"" for n in features.FEATURE_NAMES]
    past = [f"COALESCE((r.features->>'{n}')::double precision, h.\"{n}\") AS \"{n}\""
            for n in history_features.HISTORY_FEATURE_NAMES]
    return ",\n  ".join(window + past)


def _history_join() -> str:
    """History of the rows (CTE ``rows``) whose features lack any history feature."""
    lacking = " OR ".join(f"NOT (features ? '{n}')" for n in history_features.HISTORY_FEATURE_NAMES)
    keys = f"SELECT i, actor_id, window_start AS ws FROM rows WHERE {lacking}"
    parties = f"SELECT i, unnest(counterparties) AS cp FROM rows WHERE {lacking}"
    return f"LEFT JOIN ({history_features.postgres_sql(keys, parties)}) h USING (i)"


def extract_sql() -> str:
    """Both parts of the set (module docstring) in one statement; parameters are named (psycopg2)."""
    return f"""
WITH recent AS (
  SELECT * FROM actor_windows
   WHERE window_end > %(since)s AND window_end <= %(now)s
), reviewed AS (
  SELECT w.actor_id, w.window_start,
         MAX(CASE WHEN i.verdict = 'fraud' THEN 1 ELSE 0 END)::double precision AS label
    FROM recent w JOIN incidents i
      ON i.actor_id = w.actor_id AND i.verdict IS NOT NULL
     AND w.window_start <= i.last_event_time AND w.window_end > i.first_event_time
   GROUP BY w.actor_id, w.window_start
), truth_hits AS (  -- a join, not a correlated EXISTS: that re-scanned ground_truth per window (hours at 1M)
  SELECT DISTINCT w.actor_id, w.window_start
    FROM recent w JOIN ground_truth g
      ON g.actor_id = w.actor_id AND w.window_start <= g.last_event_time AND w.window_end > g.first_event_time
), sampled AS (
  SELECT w.actor_id, w.window_start, (t.actor_id IS NOT NULL)::int::double precision AS label
    FROM recent w LEFT JOIN truth_hits t ON t.actor_id = w.actor_id AND t.window_start = w.window_start
   WHERE w.window_end <= %(labelled_until)s
     AND NOT EXISTS (SELECT 1 FROM incidents i
                      WHERE i.actor_id = w.actor_id AND w.window_start <= i.last_event_time
                        AND w.window_end > i.first_event_time)
     AND (hashtextextended(w.actor_id || '|' || w.window_start::text, %(seed)s) & 1048575)
         < %(sample_cut)s
), labelled AS (
  SELECT actor_id, window_start, label, 'reviewed' AS source FROM reviewed
  UNION ALL
  SELECT actor_id, window_start, label, 'sample' AS source FROM sampled
), rows AS (
  SELECT row_number() OVER (ORDER BY w.window_start, w.actor_id) AS i, w.actor_id, w.domain, w.window_start,
         w.window_end, w.counterparties, w.features, l.label, l.source
    FROM labelled l JOIN recent w USING (actor_id, window_start)
)
SELECT r.actor_id, r.domain,
  to_char(r.window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS window_start,
  to_char(r.window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS window_end,
  r.label, r.source,
  {_feature_selects()}
FROM rows r {_history_join()}
ORDER BY r.i"""


# Fresh statistics before the extraction: its plan must not depend on when autovacuum last analyzed
# these tables. Right after a bulk load (a restore, a seeded test database) actor_windows without
# statistics made the same extraction of 561 rows take 15 s instead of 0.07, and once, with some
# tables analyzed and others not, over 9 minutes. A daily job can afford the ~30,000-row samples.
ANALYZE_READ_TABLES = ("ANALYZE actor_windows, incidents, ground_truth, actor_hours, actor_counterparty_hours, "
                       "counterparty_hours, counterparty_minutes, counterparty_fraud_windows")


def extract(settings: Settings, out_dir: Path, params: ExtractParams = ExtractParams()) -> Path:
    """Write the training set (module docstring) to out_dir/training_set.csv; lineage.json beside it.

    Rewrites both files on a re-run (idempotent). Windows missing a feature keep an empty cell: the
    Great Expectations suite rejects them rather than this function silently dropping them.
    """
    import psycopg2

    if not 0.0 <= params.sample_rate <= 1.0:
        raise ValueError(f"sample_rate {params.sample_rate} must be between 0 and 1 (e.g. 0.05)")
    now = params.reference_time()
    query = {"now": now, "since": now - timedelta(days=params.lookback_days),
             "labelled_until": now - timedelta(hours=params.label_delay_hours), "seed": params.seed,
             "sample_cut": int(round(params.sample_rate * 1048576)), "delay": params.resolved_label_delay_min()}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / TRAINING_FILE
    counts: dict[str, dict[str, int]] = {"reviewed": {"0": 0, "1": 0}, "sample": {"0": 0, "1": 0}}
    with psycopg2.connect(settings.db_url(settings.pg_database, driver="postgresql")) as conn, \
            conn.cursor() as cur, path.open("w", newline="") as handle:
        cur.execute(ANALYZE_READ_TABLES)
        cur.execute(extract_sql(), query)
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in cur:
            writer.writerow(["" if v is None else v for v in row])
            counts[row[5]][str(int(row[4]))] += 1
    lineage = {"kind": "postgres", "database": settings.pg_database, "host": settings.pg_host,
               "extracted_at": now.isoformat(), "params": asdict(params), "counts": counts,
               "rows": sum(sum(c.values()) for c in counts.values()), "file": str(path),
               "history_retention_days": settings.history_retention_days}
    if params.lookback_days > settings.history_retention_days:
        # not an error: the retrain works on what is kept; but the run's lineage should say so
        lineage["lookback_beyond_retention"] = (
            f"lookback_days {params.lookback_days:g} exceeds PA_HISTORY_RETENTION_DAYS "
            f"{settings.history_retention_days:g}: windows older than the retention were already deleted "
            "(streaming/history_retention.py); raise PA_HISTORY_RETENTION_DAYS to train on more")
        print(f"warning: {lineage['lookback_beyond_retention']}", file=sys.stderr)
    (out_dir / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, default=str))
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- train (runs under spark-submit) -------------------------------------------------------------

def train_from_file(path: Path, out: Path, tracking_uri: str, model_name: str, num_trees: int,
                    max_depth: int, seed: int, holdout_fraction: float, threshold: float,
                    master: str | None = None, alert_budget: str | None = None) -> dict[str, Any]:
    """The training job (spark_jobs/train.py: split, fit, evaluate, MLflow run, register without an
    alias: the gate decides) on an extracted set; the summary is written to ``out`` (JSON).

    The metrics include precision/recall at ``alert_budget`` (PA_ALERT_BUDGET by default); recall per
    pattern needs a ground-truth pattern, which actor_windows rows do not carry, so it is absent here.
    """
    from pyspark.sql import functions as F

    from spark_jobs import metrics, train

    spark = train.spark_session(master, app_name="patternalarm-retrain")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        schema = ", ".join([f"{c} string" for c in KEY_COLUMNS] + ["label double", "source string"]
                           + [f"`{n}` double" for n in history_features.MODEL_FEATURE_NAMES])
        raw = spark.read.csv(str(path), header=True, schema=schema)
        rows = (raw.withColumn("window_start", F.to_timestamp("window_start"))
                .withColumn("window_end", F.to_timestamp("window_end"))
                .withColumn("pattern", F.lit(None).cast("string"))
                .dropna(subset=list(history_features.MODEL_FEATURE_NAMES)).cache())
        lineage_path = path.parent / LINEAGE_FILE
        extracted = json.loads(lineage_path.read_text()) if lineage_path.exists() else {}
        total = rows.count()
        source = {"kind": "retrain", "file": str(path), "seed": seed,
                  "extracted_at": extracted.get("extracted_at"), "counts": extracted.get("counts")}
        dataset = train.Dataset(rows, {"source": source, "events_valid": total, "events_rejected": 0,
                                       "windows": total, "training_file": str(path)})
        result = train.train(spark, dataset, train.ForestParams(num_trees=num_trees, max_depth=max_depth,
                                                                seed=seed),
                             holdout_fraction, threshold, tracking_uri, model_name, alias=None,
                             budget=metrics.AlertBudget.parse(alert_budget) if alert_budget else None)
    finally:
        spark.stop()
    summary = {"version": result.version, "run_id": result.run_id, "holdout_first_window": result.split.cutoff,
               "metrics": result.metrics, "model_name": model_name, "tracking_uri": tracking_uri}
    out.write_text(json.dumps(summary, indent=2))
    return summary


# --- gate ----------------------------------------------------------------------------------------

def recent_period(rows: list[dict[str, str]], holdout_fraction: float) -> tuple[str, list[dict[str, str]]]:
    """The last ``holdout_fraction`` of the set's distinct minutes (train.split_by_time's cut)."""
    starts = sorted({r["window_start"] for r in rows})
    if len(starts) < 2:
        raise ValueError(f"the training set spans {len(starts)} minute(s); the gate needs at least 2")
    first = starts[min(len(starts) - 1, max(1, round(len(starts) * (1.0 - holdout_fraction))))]
    return first, [r for r in rows if r["window_start"] >= first]


def score_period(forest_path: Path, rows: list[dict[str, str]]) -> dict[str, float]:
    """ROC AUC and average precision of a serving file on rows (its own feature order)."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    from serving.forest_model import ForestModel

    model = ForestModel.load(forest_path)
    try:
        X = np.asarray([[float(r[n]) for n in model.feature_names] for r in rows], dtype=np.float64)
        y = np.asarray([float(r["label"]) for r in rows])
        p = model.predict_proba(X)
    finally:
        model.close()
    return {"roc_auc": float(roc_auc_score(y, p)), "average_precision": float(average_precision_score(y, p))}


def servable(forest_path: Path) -> bool:
    """Whether the scoring service would load this serving file: the same feature list as the code."""
    from serving.forest_model import ForestModel

    model = ForestModel.load(forest_path)
    try:
        return list(model.feature_names) == list(history_features.MODEL_FEATURE_NAMES)
    finally:
        model.close()


def _serving_file(client: Any, tracking_uri: str, name: str, version: str, dest: Path) -> Path:
    import mlflow

    run_id = client.get_model_version(name, version).run_id
    dest.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="serving_model/forest.npz",
                                                    dst_path=str(dest), tracking_uri=tracking_uri))


def decide(new: Mapping[str, float], champion: Mapping[str, float] | None, metric: str,
           margin: float) -> tuple[str, str]:
    """(decision, reason) from the two backtests: the rule in the module docstring."""
    if metric not in METRICS:
        raise ValueError(f"gate metric {metric!r}: use one of {METRICS}")
    if champion is None:
        return "promoted", "no champion to beat"
    if new[metric] >= champion[metric] + margin:
        return "promoted", f"{metric} {new[metric]:.4f} >= champion {champion[metric]:.4f} + margin {margin}"
    return "challenger", f"{metric} {new[metric]:.4f} < champion {champion[metric]:.4f} + margin {margin}"


def gate(settings: Settings, training_file: Path, version: str, tracking_uri: str, metric: str = "average_precision",
         margin: float = 0.0, holdout_fraction: float = 0.2) -> GateDecision:
    """Backtest the new version and the champion on the recent period, move the alias it earns."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name, champion_alias = settings.model_name, settings.model_alias
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    start, period = recent_period(read_rows(training_file), holdout_fraction)
    period = [r for r in period if all(r[n] != "" for n in history_features.MODEL_FEATURE_NAMES)]
    decision = GateDecision("refused", None, version, None, metric, margin, period_start=start,
                            period_rows=len(period))
    positives = sum(float(r["label"]) == 1.0 for r in period)
    if positives in (0, len(period)):
        decision.reason = (f"the recent period has {positives} positive window(s) of {len(period)}; "
                           "nothing to rank, so no alias moves")
        return decision
    work = training_file.parent / "gate"
    decision.new = score_period(_serving_file(client, tracking_uri, name, version, work / "new"), period)
    try:
        champion_version = str(client.get_model_version_by_alias(name, champion_alias).version)
    except MlflowException:
        champion_version = None
    if champion_version == version:  # a re-run after the promotion: already decided
        decision.decided, decision.alias, decision.reason = "promoted", champion_alias, "already champion"
        decision.champion_version = champion_version
        return decision
    if champion_version is not None:
        decision.champion_version = champion_version
        champion_file = _serving_file(client, tracking_uri, name, champion_version, work / "champion")
        decision.champion = score_period(champion_file, period)
    decision.decided, decision.reason = decide(decision.new, decision.champion or None, metric, margin)
    if champion_version is not None and decision.decided != "promoted" and not servable(champion_file):
        # the service refuses a model on another feature list: keeping it would leave it without one
        decision.decided = "promoted"
        decision.reason = (f"champion v{champion_version} is on another feature list than the service's "
                           f"(history_features.MODEL_FEATURE_NAMES), so it cannot be served; {decision.reason}")
    decision.alias = champion_alias if decision.decided == "promoted" else CHALLENGER
    client.set_registered_model_alias(name, decision.alias, version)
    return decision


# --- serving and the record ----------------------------------------------------------------------

def serving_health(settings: Settings, timeout_s: float = 10.0) -> dict[str, Any]:
    """GET /predict/health of the scoring service (raises when it does not answer)."""
    with urllib.request.urlopen(f"{settings.resolved_serving_url()}/predict/health", timeout=timeout_s) as resp:
        return dict(json.loads(resp.read()))


def reload_and_verify(settings: Settings, version: str) -> str:
    """Ask the service to reload, then check it serves ``version``; raise (the task retries) if not."""
    from patternalarm import model_registry

    outcome = model_registry.reload_serving(settings)
    try:
        health = serving_health(settings)
    except OSError as exc:
        raise RuntimeError(f"scoring service at {settings.resolved_serving_url()} did not answer /predict/health "
                           f"({exc}); reload said {outcome!r}; start it with `make up SERVICES=serving`") from exc
    served = str(health.get("model_version"))
    if served != str(version):
        raise RuntimeError(f"scoring service serves v{served}, not the promoted v{version}; reload said "
                           f"{outcome!r}; health: {health}")
    return f"serving v{served} ({outcome})"


def record_deployment(settings: Settings, decision: GateDecision, triggered_by: str, run_id: str,
                      serving: str | None) -> int:
    """One model_deployments row per (dag run, version); a re-run updates it (idempotent)."""
    import psycopg2

    metrics = {"metric": decision.metric, "margin": decision.margin, "new": decision.new,
               "champion": decision.champion, "champion_version": decision.champion_version,
               "period_start": decision.period_start, "period_rows": decision.period_rows,
               "reason": decision.reason}
    with psycopg2.connect(settings.db_url(settings.pg_database, driver="postgresql")) as conn, conn.cursor() as cur:
        cur.execute("""
INSERT INTO model_deployments (model_name, version, alias, decided, metrics, triggered_by, run_id, serving)
VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s)
ON CONFLICT (run_id, version) DO UPDATE SET alias = EXCLUDED.alias, decided = EXCLUDED.decided,
  metrics = EXCLUDED.metrics, triggered_by = EXCLUDED.triggered_by, serving = EXCLUDED.serving
RETURNING deployment_id""", (settings.model_name, decision.version, decision.alias, decision.decided,
                             json.dumps(metrics, default=_json_safe), triggered_by, run_id, serving))
        return int(cur.fetchone()[0])


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


# --- CLI (the SparkSubmitOperator's application) -------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train on an extracted set (spark-submit spark_jobs/retrain.py)")
    parser.add_argument("--input", type=Path, required=True, help="training_set.csv from extract()")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON summary goes")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--num-trees", type=int, default=50)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--alert-budget", default=None, help="'1%%', '0.01' or '50/day'; default PA_ALERT_BUDGET")
    parser.add_argument("--master", default=None)
    args = parser.parse_args(argv)
    summary = train_from_file(args.input, args.out, args.tracking_uri, args.model_name, args.num_trees,
                              args.max_depth, args.seed, args.holdout_fraction, args.threshold, args.master,
                              args.alert_budget)
    print(json.dumps({k: summary[k] for k in ("version", "run_id", "holdout_first_window")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
