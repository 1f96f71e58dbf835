"""How often registered models flag a freshly started stream (issue #5: cold-start false positives).

    PYTHONPATH=. TZ=UTC $(python3 scripts/envs.py python airflow) scripts/fresh_stream_flags.py \
        --minutes 15 --seed 7 --models 3 5

Generates an offline stream (spark_jobs.train.generate_labelled, a seed other than the quickstart's
42 so it is data no model trained on), computes its windows and history features with Spark
exactly as training does (the history store starts empty, like a new deployment), scores them with
each model version from the stack's MLflow and prints, per 5 minutes of event time, the share of
windows at score >= --threshold, how many of those are fraud and how many are fintech windows of
actors with no history (actor_txn_count_1d = 0). Offline only: no Kafka, no detection job. Prints
numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0, help="generator minutes (train's --generate)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--models", nargs="+", required=True, help="registered versions of patternalarm-fraud")
    parser.add_argument("--out-dir", default="var/fresh_stream")
    args = parser.parse_args()

    import mlflow
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from patternalarm import config
    from spark_jobs import train

    spark = train.spark_session(None)
    path, truth, source = train.generate_labelled(args.minutes, args.seed, 0.004, "NORMAL", Path(args.out_dir))
    rows = train.load_dataset(spark, path, truth, source).rows
    first = int(rows.agg(F.min("window_start")).first()[0].timestamp())
    rows = rows.withColumn("slice", F.floor((F.col("window_start").cast("long") - F.lit(first)) / 300))
    new_fintech = ((F.col("domain") == "fintech") & (F.col("actor_txn_count_1d") == 0)).cast("int")
    mlflow.set_tracking_uri(config.load().resolved_mlflow_url())
    for version in args.models:
        model = mlflow.spark.load_model(f"models:/patternalarm-fraud/{version}")
        scored = (model.transform(rows).withColumn("p", vector_to_array("probability")[1])
                  .withColumn("flag", (F.col("p") >= args.threshold).cast("int")))
        per_slice = (scored.groupBy("slice")
                     .agg(F.count("*").alias("windows"), F.sum("flag").alias("flagged"),
                          F.sum(F.col("flag") * F.col("label")).alias("fraud_flagged"),
                          F.sum(F.col("flag") * new_fintech).alias("new_fintech_flagged"),
                          F.sum("label").alias("fraud"))
                     .orderBy("slice").collect())
        total, flagged = sum(r.windows for r in per_slice), sum(r.flagged for r in per_slice)
        print(f"v{version}: {total} windows, {flagged} flagged ({flagged / total:.2%}), "
              f"{sum(r.fraud_flagged for r in per_slice):.0f} of them fraud")
        for r in per_slice:
            print(f"  minutes {int(r.slice) * 5:>3}-{int(r.slice) * 5 + 5:<3} {r.windows:>6} windows, flagged "
                  f"{r.flagged / r.windows:.2%} ({r.flagged}: fraud {r.fraud_flagged:.0f}, new fintech "
                  f"{r.new_fintech_flagged}), fraud windows {r.fraud:.0f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
