"""A user's labelled transaction history (CSV or Parquet) as the stream's labelled windows.

The same windows the detection job computes (spark_jobs/training_data.py: per actor and domain,
tumbling 1-minute event-time windows, ``features.sql_select_list()`` in Spark SQL), from a file whose
columns a small mapping names. A window is labelled fraud when any of its transactions is.

Mapping (JSON object; a file path or the JSON text itself), logical name -> the file's column::

    {"actor": "customer_id", "amount": "tx_amount", "timestamp": "tx_datetime", "label": "tx_fraud",
     "counterparty": "terminal_id", "domain": "channel", "payment_method": "method",
     "device": "device_id", "country_from": "country", "country_to": "dest_country",
     "session_sec": "session_seconds", "transaction_id": "tx_id", "pattern": "fraud_scenario",
     "timestamp_format": "yyyy-MM-dd HH:mm:ss", "default_domain": "ecommerce"}

Required: actor, amount, timestamp, label (defaults: actor_id, amount, timestamp, label). The rest
are optional; an unmapped column is NULL, as for events of a domain without that field. Without a
``domain`` column every row is ``default_domain`` (ecommerce unless given). ``timestamp_format`` is a
Spark datetime pattern; without it ISO-8601 / ``yyyy-MM-dd HH:mm:ss`` strings, Parquet timestamps
(nanosecond ones included) and epoch numbers (seconds, ms, µs or ns, told apart by magnitude) are
read as UTC. ``pattern`` (the fraud scenario of a fraudulent row) enables
recall per pattern.

Validation errors (:class:`MappingError`) name the fix: a missing column, an unparsable timestamp, a
label that is not 0/1, an amount that is not a number, an unknown domain.

Importing this module does not import pyspark.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patternalarm import events
from spark_jobs import training_data

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

REQUIRED = ("actor", "amount", "timestamp", "label")
# Optional logical columns -> the prepared column features.py reads (spark_jobs/training_data.py).
OPTIONAL = ("counterparty", "payment_method", "device", "country_from", "country_to", "session_sec")
LABEL_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}
_EXAMPLES = 5


class MappingError(ValueError):
    """The file does not fit the mapping; the message says what to change."""


@dataclass(frozen=True)
class ColumnMapping:
    """Logical name -> column of the user's file (module docstring)."""

    actor: str = "actor_id"
    amount: str = "amount"
    timestamp: str = "timestamp"
    label: str = "label"
    counterparty: str | None = None
    domain: str | None = None
    payment_method: str | None = None
    device: str | None = None
    country_from: str | None = None
    country_to: str | None = None
    session_sec: str | None = None
    transaction_id: str | None = None
    pattern: str | None = None
    timestamp_format: str | None = None
    default_domain: str = "ecommerce"

    @classmethod
    def from_json(cls, text_or_path: str | Path | None) -> "ColumnMapping":
        """A mapping from a JSON file, JSON text, or None (the defaults)."""
        if text_or_path is None or str(text_or_path).strip() == "":
            return cls()
        text = str(text_or_path).strip()
        if not text.startswith("{"):
            path = Path(text)
            if not path.is_file():
                raise MappingError(f"mapping {text!r} is neither a JSON object nor a file: pass MAPPING=path.json "
                                   "or MAPPING='{\"actor\": \"customer_id\", ...}'")
            text = path.read_text()
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise MappingError(f"mapping is not valid JSON ({exc}); write an object like "
                               "{\"actor\": \"customer_id\", \"label\": \"is_fraud\"}") from exc
        if not isinstance(raw, dict):
            raise MappingError("the mapping must be a JSON object of logical name -> column name")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise MappingError(f"unknown mapping key(s) {unknown}; use {sorted(known)}")
        bad = sorted(k for k, v in raw.items() if not isinstance(v, str) or not v)
        if bad:
            raise MappingError(f"mapping key(s) {bad} must name a column (a non-empty string)")
        mapping = cls(**raw)
        if mapping.default_domain not in events.DOMAINS:
            raise MappingError(f"default_domain {mapping.default_domain!r}: use one of {sorted(events.DOMAINS)}")
        return mapping

    def columns(self) -> dict[str, str]:
        """Logical name -> file column, for every mapped column (not the options)."""
        return {k: v for k, v in asdict(self).items()
                if v is not None and k not in ("timestamp_format", "default_domain")}


def read_file(spark: "SparkSession", path: str | Path) -> "DataFrame":
    """CSV (header, every column a string: this module parses them) or Parquet, by extension."""
    path = Path(path)
    if not path.exists():
        raise MappingError(f"history file {path} does not exist; pass FILE=path/to/history.csv or .parquet")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq") or path.is_dir():
        # pandas/pyarrow write nanosecond timestamps, which Spark 3.5 refuses ("Illegal Parquet type:
        # INT64 (TIMESTAMP(NANOS,true))") unless read as longs; _timestamp_expr converts those back.
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
        return spark.read.parquet(str(path))
    if suffix in (".csv", ".gz", ".txt"):
        return spark.read.csv(str(path), header=True, inferSchema=False)
    raise MappingError(f"history file {path}: use a .csv (with a header) or a .parquet file")


def _examples(df: "DataFrame", column: str) -> list[str]:
    return [str(r[0]) for r in df.select(column).distinct().limit(_EXAMPLES).collect()]


def check_columns(raw: "DataFrame", mapping: ColumnMapping) -> None:
    missing = {k: v for k, v in mapping.columns().items() if v not in raw.columns}
    if missing:
        names = ", ".join(f"{k} -> {v!r}" for k, v in missing.items())
        raise MappingError(f"column(s) not in the file: {names}; the file has {raw.columns}. Fix the mapping "
                           "(MAPPING='{\"actor\": \"<your column>\", ...}') or rename the columns")


def _timestamp_expr(raw: "DataFrame", mapping: ColumnMapping) -> Any:
    """The mapped timestamp as a TIMESTAMP column (UTC session time)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType, TimestampNTZType, TimestampType

    column = F.col(f"`{mapping.timestamp}`")
    kind = raw.schema[mapping.timestamp].dataType
    if isinstance(kind, (TimestampType, TimestampNTZType)):
        return column.cast("timestamp")
    if isinstance(kind, NumericType):  # epoch seconds, ms, µs or ns (Parquet nanos read as long): by size
        x = column.cast("double")
        size = F.abs(x)
        micros = (F.when(size >= 1e17, x / 1e3).when(size >= 1e14, x).when(size >= 1e11, x * 1e3)
                  .otherwise(x * 1e6))
        return F.timestamp_micros(F.round(micros).cast("long"))
    text = column.cast("string")
    return F.to_timestamp(text, mapping.timestamp_format) if mapping.timestamp_format else F.to_timestamp(text)


def _label_expr(mapping: ColumnMapping) -> Any:
    from pyspark.sql import functions as F

    text = F.lower(F.trim(F.col(f"`{mapping.label}`").cast("string")))
    expr = None
    for value, label in LABEL_VALUES.items():
        expr = (F.when(text == value, F.lit(label)) if expr is None else expr.when(text == value, F.lit(label)))
    return expr


def prepare(raw: "DataFrame", mapping: ColumnMapping) -> "DataFrame":
    """The prepared columns (training_data's), plus ``txn_label`` and ``pattern``; validated."""
    from pyspark.sql import functions as F

    check_columns(raw, mapping)
    m = mapping.columns()
    col = lambda name: F.col(f"`{m[name]}`")  # noqa: E731
    selects = [
        (col("transaction_id").cast("string") if "transaction_id" in m
         else F.monotonically_increasing_id().cast("string")).alias("transaction_id"),
        col("actor").cast("string").alias("actor_id"),
        (F.lower(F.trim(col("domain").cast("string"))) if "domain" in m
         else F.lit(mapping.default_domain)).alias("domain"),
        _timestamp_expr(raw, mapping).alias("event_time"),
        col("amount").cast("double").alias("amount"),
    ]
    for name in training_data.prepared_column_names():
        kind = "double" if name in training_data.DOUBLE_COLUMNS else "string"
        selects.append((col(name).cast(kind) if name in m else F.lit(None).cast(kind)).alias(name))
    selects += [_label_expr(mapping).alias(training_data.TXN_LABEL),
                (col("pattern").cast("string") if "pattern" in m else F.lit(None).cast("string")).alias("pattern"),
                *[F.col(f"`{m[k]}`").alias(f"raw_{k}") for k in ("timestamp", "label", "amount")]]
    return raw.select(*selects)


def validate(prepared: "DataFrame", mapping: ColumnMapping) -> int:
    """Raise MappingError naming the fix for the first problem found; the number of rows otherwise."""
    from pyspark.sql import functions as F

    checks = [
        ("actor", F.col("actor_id").isNull(), "actor_id",
         "rows have no actor; drop them or map actor to a column that is always filled"),
        ("timestamp", F.col("event_time").isNull(), "raw_timestamp",
         "timestamp values could not be parsed; set \"timestamp_format\" in the mapping to a Spark datetime "
         "pattern such as \"yyyy-MM-dd HH:mm:ss\" (or use ISO-8601 / epoch seconds)"),
        ("label", F.col(training_data.TXN_LABEL).isNull(), "raw_label",
         "label values are not 0/1; map label to a column holding 0/1 (or true/false)"),
        ("amount", F.col("amount").isNull(), "raw_amount",
         "amount values are not numbers; map amount to a numeric column"),
        ("domain", F.col("domain").isNull() | ~F.col("domain").isin(*sorted(events.DOMAINS)), "domain",
         f"domain values are not one of {sorted(events.DOMAINS)}; map domain to such a column or leave it "
         "unmapped and set default_domain"),
    ]
    counts = prepared.select(F.count(F.lit(1)).alias("rows"),
                             *[F.sum(F.when(bad, 1).otherwise(0)).alias(name) for name, bad, _, _ in checks]).first()
    if counts["rows"] == 0:
        raise MappingError("the history file has no rows; pass a file with labelled transactions")
    for name, bad, shown, fix in checks:
        if counts[name]:
            column = getattr(mapping, name) or name
            raise MappingError(f"{counts[name]} of {counts['rows']} {fix} (column {column!r}, e.g. "
                               f"{_examples(prepared.filter(bad), shown)})")
    return int(counts["rows"])


def labelled_windows(spark: "SparkSession", path: str | Path, mapping: ColumnMapping
                     ) -> tuple["DataFrame", dict[str, Any]]:
    """(window rows like training_data.window_rows, lineage) of a history file; validated first."""
    prepared = prepare(read_file(spark, path), mapping).cache()
    rows = validate(prepared, mapping)
    windows = training_data.aggregate_windows(spark, prepared.drop("raw_timestamp", "raw_label", "raw_amount"))
    lineage = {"kind": "history", "file": str(path), "file_sha256": file_sha256(Path(path)),
               "mapping": {k: v for k, v in asdict(mapping).items() if v is not None}, "rows": rows}
    return windows, lineage


def file_sha256(path: Path) -> str:
    """Of the file, or of a Parquet directory's part files in name order."""
    digest = hashlib.sha256()
    parts = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))) \
        if path.is_dir() else [path]
    for part in parts:
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
