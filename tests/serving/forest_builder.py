"""Build real forest files for the serving tests: Spark trains, spark_jobs.forest_export exports.

Runs under the ``airflow`` venv (pyspark) as a script, called by tests/serving/factories.py:

    python tests/serving/forest_builder.py OUT_DIR

Writes ``<name>.npz`` for every entry of SPECS plus ``done.json``. Training rows are synthetic actors
(legitimate shoppers and transferors, card testers, structurers) turned into features by
``patternalarm.features.compute`` plus synthetic history features, so the models score requests the
way a trained champion would: card-testing bursts high, ordinary baskets low.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

# name -> (numTrees, maxDepth, seed, number of leading MODEL_FEATURE_NAMES used)
SPECS: dict[str, tuple[int, int, int, int | None]] = {
    "v_a": (12, 5, 1, None),
    "v_b": (20, 6, 2, None),
    "v_c": (6, 4, 3, None),
    "v_d": (30, 8, 4, None),
    "wrong_features": (5, 4, 5, 18),  # a valid file for a different feature set: must be refused
}


def _actor(rng: random.Random, fraud: bool) -> list:
    from patternalarm.features import Txn

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(100_000))
    kind = rng.choice(["ecommerce", "fintech", "gaming"])
    if fraud and kind == "fintech":  # structuring through mules, cross-border
        return [Txn(amount=rng.uniform(9_000, 9_900), event_time=t0 + timedelta(minutes=3 * i), domain="fintech",
                    payment_method="WIRE", country_from="US", country_to=rng.choice(["GB", "DE", "NL"]),
                    counterparty=f"mule-{rng.randrange(1000)}") for i in range(rng.randint(3, 6))]
    if fraud:  # card testing / gold farming: bursts of tiny amounts in short sessions
        return [Txn(amount=round(rng.uniform(0.5, 4.99), 2), event_time=t0 + timedelta(seconds=rng.uniform(2, 40) * i),
                    domain=kind, payment_method="card", session_sec=rng.uniform(4, 55),
                    device=f"fp-{rng.randrange(3)}") for i in range(rng.randint(5, 8))]
    if kind == "fintech":
        home = rng.choice(["US", "GB", "DE"])
        return [Txn(amount=rng.lognormvariate(5, 0.9), event_time=t0 + timedelta(hours=5 * i), domain="fintech",
                    payment_method=rng.choice(["ACH", "SEPA"]), country_from=home, country_to=home,
                    counterparty=f"acct-{rng.randrange(10_000)}") for i in range(rng.randint(1, 3))]
    return [Txn(amount=round(rng.uniform(8, 400), 2), event_time=t0 + timedelta(minutes=20 * i), domain=kind,
                payment_method=rng.choice(["card", "paypal"]), session_sec=rng.uniform(90, 1800),
                device=f"fp-{rng.randrange(100_000)}") for i in range(rng.randint(1, 4))]


def _history(rng: random.Random, fraud: bool) -> dict[str, float] | None:
    """Half the actors are new (empty history); the others' fraud rates follow their label."""
    from patternalarm.history_features import HISTORY_FEATURE_NAMES

    if rng.random() < 0.5:
        return None
    return {n: (float(rng.randint(0, 50)) if "_count_" in n else
                (rng.uniform(0.2, 1.0) if fraud else rng.uniform(0.0, 0.05)) if "_rate_" in n else
                rng.uniform(1.0, 500.0)) for n in HISTORY_FEATURE_NAMES}


def training_rows(n: int = 1500, seed: int = 7) -> list[tuple[list[float], float]]:
    from patternalarm.features import compute
    from patternalarm.history_features import model_row

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fraud = i % 4 == 0
        rows.append((model_row(compute(_actor(rng, fraud)), _history(rng, fraud)), 1.0 if fraud else 0.0))
    return rows


def build(out_dir: Path) -> None:
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import SparkSession

    from patternalarm.history_features import MODEL_FEATURE_NAMES as FEATURE_NAMES
    from spark_jobs.forest_export import export_and_save

    spark = (SparkSession.builder.master("local[1]").appName("serving-test-forests")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1").getOrCreate())
    try:
        rows = training_rows()
        frame = spark.createDataFrame([(*features, label) for features, label in rows],
                                      [*FEATURE_NAMES, "label"])
        for name, (trees, depth, seed, width) in SPECS.items():
            columns = list(FEATURE_NAMES[:width]) if width else list(FEATURE_NAMES)
            assembled = VectorAssembler(inputCols=columns, outputCol="features").transform(frame)
            model = RandomForestClassifier(numTrees=trees, maxDepth=depth, seed=seed,
                                           labelCol="label").fit(assembled)
            export_and_save(model, columns, out_dir / f"{name}.npz")
    finally:
        spark.stop()
    (out_dir / "done.json").write_text(json.dumps(sorted(SPECS)))


if __name__ == "__main__":
    build(Path(sys.argv[1]))
