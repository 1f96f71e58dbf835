"""Labelled training rows in Spark: one row per actor and 1-minute event-time window.

The rows are what the detection job writes to ``actor_windows`` and what the scoring service
computes from a request, because all three run the one definition in ``patternalarm.features``:

* columns are prepared from contract events as ``features.COLUMN_SOURCES`` says (IoT readings use
  their ``value`` as the amount, like ``features.txn_from_event``), the contract's timestamp becomes
  ``event_time`` (TIMESTAMP, UTC);
* events that break the contract are dropped, as the job sends them to the dead-letter topic
  (``patternalarm.events.decode`` decides);
* windows are tumbling 1-minute windows aligned to the epoch, grouped by actor and domain, like
  ``streaming.detection_job.actor_windows_query`` (TUMBLE on event time);
* features are ``features.sql_select_list()`` run by Spark SQL.

A window is labelled 1 when it holds a transaction listed in the ground truth of an injected
instance, else 0. tests/model/test_training_data.py holds the rows to ``features.compute`` on the same
transactions (1e-9) and checks the labels against the ground truth.

Two sources of rows: contract events plus ground truth (:func:`training_rows`: the quickstart model,
generated data, replay files), or the ``actor_windows`` table plus labelled intervals
(:func:`rows_from_actor_windows`: retraining on what the job saw, with ground truth or analysts'
verdicts as labels).

Importing this module does not import pyspark (DAGs import it at parse time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from patternalarm import config, events, features, history_features

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

WINDOW = f"{history_features.WINDOW_MINUTES} minutes"  # the detection job's TUMBLE size
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSX"  # events.TIMESTAMP_PATTERN, in Spark's datetime syntax
# The contract field holding the amount per domain: features.txn_from_event's rule.
AMOUNT_FIELD = {d: ("value" if d == "iot" else "amount") for d in events.DOMAINS}
# Prepared columns that are numbers (features.py's module docstring); the others are strings.
DOUBLE_COLUMNS = frozenset({"session_sec"})
KEY_COLUMNS = ("actor_id", "domain", "window_start", "window_end")
LABEL = "label"


def prepared_column_names() -> list[str]:
    """The nullable columns features.py's aggregates read, in first-seen order of COLUMN_SOURCES."""
    names: list[str] = []
    for sources in features.COLUMN_SOURCES.values():
        names += [n for n in sources if n not in names]
    return names


def _contract_paths() -> dict[str, str]:
    """Every contract field the preparation reads (dotted path) -> Spark type name."""
    paths = {"transaction_id": "string", "domain": "string", "actor_id": "string", "timestamp": "string"}
    paths.update({field: "double" for field in AMOUNT_FIELD.values()})
    for sources in features.COLUMN_SOURCES.values():
        for column, path in sources.items():
            paths[path] = "double" if column in DOUBLE_COLUMNS else "string"
    return paths


def event_schema() -> Any:
    """A from_json schema holding just those fields (nested objects as structs): one parse per event.

    A string column reads a JSON string as itself; a double column reads a JSON number exactly as
    Python's json does (both round correctly), so amounts and session lengths match txn_from_event.
    """
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    tree: dict[str, Any] = {}
    for path, kind in _contract_paths().items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = kind

    def build(node: dict[str, Any]) -> StructType:
        return StructType([StructField(name, build(sub) if isinstance(sub, dict) else
                                       (DoubleType() if sub == "double" else StringType()))
                           for name, sub in node.items()])

    return build(tree)


def _field(path: str) -> str:
    return "e." + ".".join(f"`{part}`" for part in path.split("."))


def _by_domain(sources: Mapping[str, str]) -> str:
    """CASE over the domain picking each domain's source field; NULL for domains without one."""
    whens = " ".join(f"WHEN '{domain}' THEN {_field(path)}" for domain, path in sources.items())
    return f"CASE e.domain {whens} END"


def prepared_select_list() -> list[str]:
    """Select expressions over ``e`` (the parsed event) giving the columns the aggregates read."""
    exprs = [f"{_field('transaction_id')} AS transaction_id", f"{_field('actor_id')} AS actor_id",
             f"{_field('domain')} AS domain",
             f"to_timestamp({_field('timestamp')}, \"{TIMESTAMP_FORMAT}\") AS event_time",
             f"{_by_domain(AMOUNT_FIELD)} AS amount"]
    for column in prepared_column_names():
        sources = {d: src[column] for d, src in features.COLUMN_SOURCES.items() if column in src}
        exprs.append(f"{_by_domain(sources)} AS {column}")
    return exprs


def reject_reasons(payloads: "DataFrame") -> "DataFrame":
    """Add ``reject_reason`` (NULL for a valid event) to a frame with a ``payload`` string column:
    the contract's own validator, so training drops exactly what the job sends to dead letters."""
    from pyspark.sql.functions import udf

    def reason(payload: str | None) -> str | None:
        try:
            events.decode(payload if payload is not None else "")
        except events.InvalidEvent as exc:
            return exc.reason
        return None

    reason_udf = udf(reason, "string", useArrow=True)  # Arrow batches: the per-row cost is decode itself
    return payloads.withColumn("reject_reason", reason_udf("payload"))


def prepare_events(payloads: "DataFrame") -> "DataFrame":
    """Valid events as the prepared columns (see the module docstring); ``payloads`` has ``payload``."""
    from pyspark.sql.functions import col, from_json

    checked = reject_reasons(payloads).filter(col("reject_reason").isNull())
    parsed = checked.select(from_json("payload", event_schema()).alias("e"))
    return parsed.selectExpr(*prepared_select_list())


def payloads_from_file(spark: "SparkSession", path: str | Path) -> "DataFrame":
    """One JSON event per line (the generator's and ``make replay``'s format)."""
    return spark.read.text(str(path)).withColumnRenamed("value", "payload")


def payloads_from_dicts(spark: "SparkSession", items: Iterable[Mapping[str, Any]]) -> "DataFrame":
    """Events already in memory, serialised as they travel (events.encode), so they take the same path."""
    rows = [(events.encode(e).decode(),) for e in items]
    return spark.createDataFrame(rows, "payload string")


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """Ground truth as the generator writes it (--truth-file): one instance per line."""
    with Path(path).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def truth_transactions(spark: "SparkSession", truth: Iterable[Mapping[str, Any]]) -> "DataFrame":
    """(transaction_id, instance_id, pattern) for every transaction an injected instance sent."""
    rows = [(str(tid), str(t["instance_id"]), str(t["pattern"])) for t in truth for tid in t["transaction_ids"]]
    return spark.createDataFrame(rows, "transaction_id string, instance_id string, pattern string")


def window_rows(spark: "SparkSession", prepared: "DataFrame", truth_txns: "DataFrame") -> "DataFrame":
    """Group prepared events by actor and window, compute the features, label each window.

    Columns: actor_id, domain, window_start, window_end, label (1.0/0.0), pattern (one injected
    pattern the window holds, else NULL), then history_features.MODEL_FEATURE_NAMES in order.
    """
    from pyspark.sql.functions import broadcast

    labelled = (prepared.join(broadcast(truth_txns), "transaction_id", "left")
                .selectExpr("*", f"CASE WHEN instance_id IS NULL THEN 0 ELSE 1 END AS {TXN_LABEL}"))
    return aggregate_windows(spark, labelled)


TXN_LABEL = "txn_label"  # a transaction's own label (0/1) before windows are labelled


def aggregate_windows(spark: "SparkSession", labelled: "DataFrame",
                      label_delay_min: int | None = None) -> "DataFrame":
    """Prepared events with ``txn_label`` (0/1) and ``pattern`` (of a fraudulent transaction, else
    NULL) grouped into the stream's windows: per actor and domain, tumbling 1 minute on event time.

    A window is labelled 1 when any of its transactions is; its pattern is one of theirs. Columns as
    :func:`window_rows`: the window features, then the history features (:func:`add_history`, with
    ``label_delay_min``, default PA_LABEL_DELAY_MIN).
    """
    query = f"""
SELECT actor_id, domain, w.start AS window_start, w.end AS window_end,
  CAST(MAX({TXN_LABEL}) AS DOUBLE) AS {LABEL},
  MAX(CASE WHEN {TXN_LABEL} = 1 THEN pattern END) AS pattern,
  {features.sql_select_list()},
  array_sort(collect_set(counterparty)) AS {COUNTERPARTIES}
FROM (SELECT *, window(event_time, '{WINDOW}') AS w FROM {{events}})
GROUP BY actor_id, domain, w.start, w.end"""
    delay = config.load().label_delay_min if label_delay_min is None else label_delay_min
    return add_history(spark.sql(query, events=labelled), delay).drop(COUNTERPARTIES)


COUNTERPARTIES = "counterparties"  # a window's distinct counterparties (array<string>)


def add_history(windows: "DataFrame", label_delay_min: int) -> "DataFrame":
    """Adds history_features.HISTORY_FEATURE_NAMES to windows (actor_id, window_start, label,
    txn_count, amount_sum, counterparties), with Spark window functions over earlier windows only.

    The definitions are patternalarm/history_features.py's; here a horizon H is a RANGE frame over
    the window's epoch minute: counts ``H PRECEDING .. 1 PRECEDING`` (never the window itself or a
    later one), fraud rates ``D + H PRECEDING .. D + 1 PRECEDING`` (labels only D minutes after the
    labelled window ended, D = ``label_delay_min``; a window's label is known when it ends).
    Counterparty sums are "all windows touching c" minus "the actor's own windows touching c".
    ``history_coverage_min`` counts from the data set's earliest window (the store of a backtest or
    of a training set is the data set itself).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    missing, delay = F.lit(features.MISSING), int(label_delay_min)
    base = (windows.withColumn("_m", (F.col("window_start").cast("long") / 60).cast("long"))
            .withColumn("_fraud", (F.col(LABEL) == 1.0).cast("long")))

    def sums(spec: Any, prefix: str) -> list[Any]:
        out = []
        for suffix, minutes in history_features.HORIZONS:
            counts, rates = spec.rangeBetween(-minutes, -1), spec.rangeBetween(-(delay + minutes), -(delay + 1))
            out += [F.count(F.lit(1)).over(counts).alias(f"{prefix}windows_{suffix}"),
                    F.coalesce(F.sum("txn_count").over(counts), F.lit(0.0)).alias(f"{prefix}txns_{suffix}"),
                    F.coalesce(F.sum("amount_sum").over(counts), F.lit(0.0)).alias(f"{prefix}amount_{suffix}"),
                    F.count(F.lit(1)).over(rates).alias(f"{prefix}labelled_{suffix}"),
                    F.coalesce(F.sum("_fraud").over(rates), F.lit(0)).alias(f"{prefix}fraud_{suffix}")]
        return out

    actor = base.select("*", *sums(Window.partitionBy("actor_id").orderBy("_m"), "a_"))
    parties = base.select("actor_id", "_m", "txn_count", "amount_sum", "_fraud",
                          F.explode(COUNTERPARTIES).alias("_cp"))
    parties = parties.select("actor_id", "_m", *sums(Window.partitionBy("_cp").orderBy("_m"), "all_"),
                             *sums(Window.partitionBy("_cp", "actor_id").orderBy("_m"), "own_"))
    combined = []
    for suffix, _ in history_features.HORIZONS:
        other = {k: F.col(f"all_{k}_{suffix}") - F.col(f"own_{k}_{suffix}")
                 for k in ("windows", "txns", "amount", "labelled", "fraud")}
        combined += [F.max(other["windows"]).alias(f"c_windows_{suffix}"),
                     F.sum(other["txns"]).alias(f"c_txns_{suffix}"),
                     F.sum(other["amount"]).alias(f"c_amount_{suffix}"),
                     F.max(F.when(other["labelled"] > 0, other["fraud"] / other["labelled"])).alias(f"c_rate_{suffix}")]
    per_window = parties.groupBy("actor_id", "_m").agg(*combined)
    first = base.agg(F.min("_m").alias("_first_m"))  # one row: broadcast to every window
    joined = actor.join(per_window, ["actor_id", "_m"], "left").crossJoin(F.broadcast(first))
    outputs = []
    for suffix, _ in history_features.HORIZONS:
        a_txns, c_txns = F.col(f"a_txns_{suffix}"), F.col(f"c_txns_{suffix}")
        outputs += [
            a_txns.cast("double").alias(f"actor_txn_count_{suffix}"),
            F.when(a_txns > 0, F.col(f"a_amount_{suffix}") / a_txns).otherwise(missing)
            .alias(f"actor_amount_mean_{suffix}"),
            F.when(F.col(f"a_labelled_{suffix}") > 0, F.col(f"a_fraud_{suffix}") / F.col(f"a_labelled_{suffix}"))
            .otherwise(missing).alias(f"actor_fraud_rate_{suffix}"),
            F.coalesce(F.col(f"c_windows_{suffix}"), F.lit(0)).cast("double").alias(f"cp_window_count_{suffix}"),
            F.when(c_txns > 0, F.col(f"c_amount_{suffix}") / c_txns).otherwise(missing)
            .alias(f"cp_amount_mean_{suffix}"),
            F.coalesce(F.col(f"c_rate_{suffix}"), missing).alias(f"cp_fraud_rate_{suffix}")]
    cap = history_features.COVERAGE_CAP_MIN
    outputs.append(F.least(F.lit(cap), F.greatest(F.lit(0), F.col("_m") - F.col("_first_m")))
                   .cast("double").alias(history_features.COVERAGE))
    return joined.select(*windows.columns, *outputs)  # outputs are in HISTORY_FEATURE_NAMES order


def training_rows(spark: "SparkSession", payloads: "DataFrame",
                  truth: Iterable[Mapping[str, Any]]) -> "DataFrame":
    """Labelled feature rows from contract events (a ``payload`` column) and their ground truth."""
    return window_rows(spark, prepare_events(payloads), truth_transactions(spark, truth))


def rows_from_actor_windows(windows: "DataFrame", labels: "DataFrame") -> "DataFrame":
    """Labelled training rows from the detection job's ``actor_windows`` table (for retraining).

    ``windows``: the table's columns actor_id, domain, window_start, window_end and ``features``, the
    JSON object of feature values the scorer wrote, history features included (a string, e.g. jsonb
    read over JDBC).
    ``labels``: one labelled interval per row: actor_id, first_event_time, last_event_time and
    ``label`` (1.0 fraud, 0.0 legit): ground_truth rows (label 1) or incidents with an analyst's
    verdict (fraud 1, legit 0). The table keeps no transaction ids, so a window is matched to an
    interval of the same actor it overlaps (window_start <= last_event_time and window_end >
    first_event_time); its label is the largest matched one (fraud wins a conflict), 0.0 when none.

    Windows missing a feature (written by an older feature set) are dropped: the model needs every
    column and NaN is not a value it can score. Same columns as :func:`training_rows` (pattern NULL).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StructField, StructType

    names = list(history_features.MODEL_FEATURE_NAMES)
    schema = StructType([StructField(n, DoubleType()) for n in names])
    parsed = (windows.select(*KEY_COLUMNS, F.from_json(F.col("features").cast("string"), schema).alias("f"))
              .select(*KEY_COLUMNS, *[F.col(f"f.{n}").alias(n) for n in names])
              .dropna(subset=names))
    w, lab = parsed.select(*KEY_COLUMNS).alias("w"), labels.alias("l")
    overlaps = ((F.col("w.actor_id") == F.col("l.actor_id"))
                & (F.col("w.window_start") <= F.col("l.last_event_time"))
                & (F.col("w.window_end") > F.col("l.first_event_time")))
    matched = (w.join(lab, overlaps)
               .groupBy(*[F.col(f"w.{k}").alias(k) for k in KEY_COLUMNS])
               .agg(F.max(F.col("l.label").cast("double")).alias(LABEL)))
    return (parsed.join(matched, list(KEY_COLUMNS), "left")
            .select(*KEY_COLUMNS, F.coalesce(F.col(LABEL), F.lit(0.0)).alias(LABEL),
                    F.lit(None).cast("string").alias("pattern"), *names))
