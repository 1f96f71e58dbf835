"""Benchmark: numpy ForestModel vs Spark's transform/collect on the same 150-tree depth-16 forest.

Prints numbers, asserts nothing (timing assertions do not belong in tests on a shared 2-core box).

    PYTHONPATH=. $(python3 scripts/envs.py python airflow) serving/bench_forest.py
    PYTHONPATH=. $(python3 scripts/envs.py python serving) serving/bench_forest.py --no-spark

The first run trains the forest in Spark local[2] on synthetic data (~4-5 minutes on 2 cores) and
caches the Spark model and its export under var/bench_forest/; later runs reuse them. With
--no-spark (or without pyspark) only the cached export is timed. Timings are wall-clock medians
(and best) of repeated calls in this process; other processes on the machine inflate them, so the
load average is printed alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from serving.forest_model import ForestModel  # noqa: E402

SPEC = {"rows": 40_000, "features": 20, "num_trees": 150, "max_depth": 16, "seed": 7, "data_seed": 1}
FEATURE_NAMES = [f"f{i:02d}" for i in range(SPEC["features"])]
BATCHES = (1, 10, 100, 1000)
POOL_ROWS = 50_000


def _cache_dir() -> Path:
    from patternalarm import config

    return config.load().resolved_var_dir() / "bench_forest"


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy nonlinear label so trees reach depth 16 with thousands of leaves each."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SPEC["features"]))
    logit = X[:, 0] + X[:, 1] * X[:, 2] - np.abs(X[:, 3]) + 0.5 * np.sin(3 * X[:, 4])
    y = (logit + rng.logistic(size=n) > 0.8).astype(np.float64)
    return X, y


def _spark_session() -> Any:
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("bench-forest")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _ensure_forest(cache: Path, spark: Any | None) -> tuple[Path, Any | None]:
    """Return (export path, Spark model or None); train and export when the cache is stale."""
    npz, model_dir, spec_file = cache / "forest.npz", cache / "spark_model", cache / "spec.json"
    fresh = spec_file.exists() and json.loads(spec_file.read_text()) == SPEC and npz.exists()
    if spark is None:
        if not fresh:
            raise SystemExit(f"no cached forest in {cache}; run once with pyspark (airflow venv) to train it")
        return npz, None
    from pyspark.ml.classification import RandomForestClassificationModel, RandomForestClassifier
    from pyspark.ml.linalg import Vectors

    from spark_jobs.forest_export import export_and_save

    if fresh and model_dir.exists():
        return npz, RandomForestClassificationModel.load(str(model_dir))
    cache.mkdir(parents=True, exist_ok=True)
    X, y = _synthetic(SPEC["rows"], SPEC["data_seed"])
    frame = spark.createDataFrame([(Vectors.dense(r), float(v)) for r, v in zip(X.tolist(), y.tolist())],
                                  ["features", "label"])
    print(f"training {SPEC['num_trees']} trees, depth {SPEC['max_depth']}, on {SPEC['rows']} rows ...",
          flush=True)
    started = time.perf_counter()
    model = RandomForestClassifier(numTrees=SPEC["num_trees"], maxDepth=SPEC["max_depth"],
                                   seed=SPEC["seed"]).fit(frame)
    print(f"  trained in {time.perf_counter() - started:.0f} s; {model.totalNumNodes} nodes", flush=True)
    model.write().overwrite().save(str(model_dir))
    started = time.perf_counter()
    export_and_save(model, FEATURE_NAMES, npz)
    print(f"  exported in {time.perf_counter() - started:.1f} s -> {npz} ({npz.stat().st_size / 1e6:.1f} MB)",
          flush=True)
    spec_file.write_text(json.dumps(SPEC))
    return npz, model


def _time(fn: Callable[[], object], min_total_s: float = 1.0, min_reps: int = 5) -> tuple[float, float, float]:
    """(median wall, best wall, median CPU of this process) seconds per call, over at least
    min_reps calls and min_total_s seconds. CPU time leaves out the time other processes held the
    core, so on a busy machine it is the steadier number (for 2 threads it sums both threads)."""
    fn()  # warm-up
    walls: list[float] = []
    cpus: list[float] = []
    started = time.perf_counter()
    while len(walls) < min_reps or time.perf_counter() - started < min_total_s:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def _cycling(forest: ForestModel, pool: np.ndarray, batch: int) -> Callable[[], object]:
    """A call that scores the next `batch` rows of the pool each time (wrapping around)."""
    position = [0]

    def call() -> object:
        start = position[0]
        position[0] = (start + batch) % (pool.shape[0] - batch)
        return forest.predict_proba(pool[start:start + batch])

    return call


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, numpy {np.__version__}, "
            f"load average {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-spark", action="store_true", help="time only the cached numpy export")
    args = parser.parse_args()
    spark = None
    if not args.no_spark:
        try:
            spark = _spark_session()
        except ImportError:
            print("pyspark not importable: timing the cached export only")
    print(f"machine: {_machine()}")
    npz, model = _ensure_forest(_cache_dir(), spark)
    forest = ForestModel.load(npz)
    threaded = ForestModel.load(npz, threads=2)
    load_median, _, _ = _time(lambda: ForestModel.load(npz), min_total_s=1.0, min_reps=3)
    print(f"forest: {forest.num_trees} trees, max depth {forest.max_depth}, {forest.metadata['num_nodes']} nodes, "
          f"{forest.num_predicates} distinct split predicates; "
          f"file {npz.stat().st_size / 1e6:.1f} MB, load {load_median * 1e3:.0f} ms")
    pool, _ = _synthetic(POOL_ROWS, seed=99)  # calls cycle through distinct rows: no warm-cache flattery

    print()
    header = ("path", "batch", "wall median ms", "wall best ms", "cpu median ms", "us/row median", "us/row best")
    print(f"{header[0]:<30}{header[1]:>6}" + "".join(f"{h:>15}" for h in header[2:]))
    numpy_single = 0.0
    for batch in BATCHES:
        for label, fm in (("numpy ForestModel, 1 thread", forest), ("numpy ForestModel, 2 threads", threaded)):
            median, best, cpu = _time(_cycling(fm, pool, batch))
            numpy_single = numpy_single or median
            print(f"{label:<30}{batch:>6}{median * 1e3:>15.3f}{best * 1e3:>15.3f}{cpu * 1e3:>15.3f}"
                  f"{median / batch * 1e6:>15.2f}{best / batch * 1e6:>15.2f}", flush=True)
    if model is not None:
        from pyspark.ml.linalg import Vectors

        one = spark.createDataFrame([(Vectors.dense(pool[0].tolist()),)], ["features"])
        spark_median, spark_best, spark_cpu = _time(
            lambda: model.transform(one).select("probability").collect(), min_total_s=10.0, min_reps=5)
        spark_p1 = model.transform(one).select("probability").collect()[0].probability[1]
        print(f"{'Spark transform+collect':<30}{1:>6}{spark_median * 1e3:>15.3f}{spark_best * 1e3:>15.3f}"
              f"{spark_cpu * 1e3:>15.3f}{spark_median * 1e6:>15.2f}{spark_best * 1e6:>15.2f}"
              "   (cpu: Python side only; the work runs in the JVM)")
        print(f"\nsingle prediction: Spark {spark_median * 1e3:.1f} ms vs numpy {numpy_single * 1e3:.3f} ms "
              f"= {spark_median / numpy_single:.0f}x; same probability: "
              f"{spark_p1 == float(forest.predict_proba(pool[:1])[0])}")
        spark.stop()
    print(f"\nmachine at end: {_machine()}")


if __name__ == "__main__":
    main()
