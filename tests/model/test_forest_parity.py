"""The numpy evaluator (serving/forest_model.py) gives Spark's probability for the same forest.

Trains a real RandomForest in Spark local[2], exports it with spark_jobs/forest_export.py, and
compares ``ForestModel.predict_proba`` with ``model.transform(...).probability[1]`` collected from
Spark: random rows, rows sitting exactly on (and one ulp either side of) split thresholds, and
extreme values. Contract: max |difference| <= 1e-9 (in practice it is 0.0: same operations, same
order). Runs in the ``airflow`` venv (pyspark + numpy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="parity needs Spark: run in the airflow venv")

from serving.forest_model import ForestModel  # noqa: E402
from spark_jobs.forest_export import CategoricalSplitError, export_forest, save_forest  # noqa: E402

pytestmark = pytest.mark.spark

TOLERANCE = 1e-9
N_FEATURES = 20
FEATURE_NAMES = [f"f{i:02d}" for i in range(N_FEATURES)]


def _training_frame(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixed feature shapes (gaussian, heavy-tailed, integer counts with ties, bounded) and a
    nonlinear noisy label, so trees grow deep and split on every kind of column."""
    cols = []
    for i in range(N_FEATURES):
        kind = i % 4
        if kind == 0:
            cols.append(rng.normal(size=n))
        elif kind == 1:
            cols.append(rng.lognormal(mean=3.0, sigma=1.2, size=n))
        elif kind == 2:
            cols.append(rng.poisson(3.0, size=n).astype(np.float64))
        else:
            cols.append(rng.uniform(-1.0, 1.0, size=n))
    X = np.stack(cols, axis=1)
    logit = 1.2 * X[:, 0] - 0.4 * np.log(X[:, 1]) + 0.5 * (X[:, 2] > 4) + np.sin(4 * X[:, 3]) + X[:, 4] * X[:, 7]
    y = (logit + rng.logistic(size=n) > 0.0).astype(np.float64)
    return X, y


@pytest.fixture(scope="module")
def spark() -> Any:
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("forest-parity")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def trained(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 30-tree depth-10 forest trained through VectorAssembler, as the training job does."""
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import VectorAssembler

    rng = np.random.default_rng(20240601)
    X, y = _training_frame(rng, 4000)
    frame = spark.createDataFrame([(*row, float(label)) for row, label in zip(X.tolist(), y.tolist())],
                                  [*FEATURE_NAMES, "label"])
    assembled = VectorAssembler(inputCols=FEATURE_NAMES, outputCol="features").transform(frame)
    model = RandomForestClassifier(numTrees=30, maxDepth=10, seed=11, labelCol="label").fit(assembled)
    exported = export_forest(model, FEATURE_NAMES)
    path = save_forest(exported, tmp_path_factory.mktemp("forest") / "forest.npz")
    return {"model": model, "exported": exported, "path": path, "X": X,
            "forest": ForestModel.load(path), "forest_threaded": ForestModel.load(path, threads=2)}


def _spark_probability(spark: Any, model: Any, X: np.ndarray) -> np.ndarray:
    """Spark's probability vectors for rows X, in row order: (n, num_classes)."""
    from pyspark.ml.linalg import Vectors

    frame = spark.createDataFrame([(i, Vectors.dense(row)) for i, row in enumerate(X.tolist())],
                                  ["row_id", "features"])
    rows = model.transform(frame).select("row_id", "probability").collect()
    out = np.empty((X.shape[0], model.numClasses))
    for row in rows:
        out[row.row_id] = row.probability.toArray()
    return out


def _assert_parity(spark: Any, trained: dict[str, Any], X: np.ndarray) -> None:
    expected = _spark_probability(spark, trained["model"], X)
    forest: ForestModel = trained["forest"]
    got = forest.predict_proba(X)
    diff = np.abs(got - expected[:, 1])
    worst = int(np.argmax(diff))
    assert diff.max() <= TOLERANCE, (f"row {worst}: numpy {got[worst]!r} vs Spark {expected[worst, 1]!r} "
                                     f"({int(np.count_nonzero(diff > TOLERANCE))} rows over {TOLERANCE})")
    assert np.abs(forest.predict_proba_all(X) - expected).max() <= TOLERANCE
    assert np.array_equal(trained["forest_threaded"].predict_proba(X), got)


def _threshold_table(exported: dict[str, Any]) -> dict[int, np.ndarray]:
    feature, threshold = exported["feature"], exported["threshold"]
    return {f: np.unique(threshold[feature == f]) for f in np.unique(feature[feature >= 0]).tolist()}


def test_file_carries_metadata_and_importances(trained: dict[str, Any]) -> None:
    forest: ForestModel = trained["forest"]
    model = trained["model"]
    assert forest.feature_names == FEATURE_NAMES
    assert (forest.num_trees, forest.num_classes, forest.num_features) == (30, 2, N_FEATURES)
    assert forest.metadata["format_version"] == 1
    assert forest.metadata["spark_version"] == "3.5.0"
    assert 1 <= forest.max_depth <= 10
    assert forest.metadata["num_nodes"] == model.totalNumNodes
    np.testing.assert_array_equal(forest.feature_importances, model.featureImportances.toArray())


def test_py4j_walk_reads_the_same_trees_as_the_saved_node_table(trained: dict[str, Any]) -> None:
    walked = export_forest(trained["model"], FEATURE_NAMES, source="py4j")
    for key in ("tree_offsets", "feature", "threshold", "left", "right", "leaf_value", "tree_weights",
                "feature_importances"):
        np.testing.assert_array_equal(walked[key], trained["exported"][key], err_msg=key)


def test_random_rows_match_spark(spark: Any, trained: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    X, _ = _training_frame(rng, 10_000)
    X[5000:] *= rng.uniform(0.5, 2.0, size=(5000, N_FEATURES))  # off the training distribution too
    _assert_parity(spark, trained, X)


def test_rows_on_split_thresholds_match_spark(spark: Any, trained: dict[str, Any]) -> None:
    """x == threshold must go left (Spark: x <= threshold), one ulp above must go right."""
    rng = np.random.default_rng(8)
    table = _threshold_table(trained["exported"])
    base = rng.normal(size=(3000, N_FEATURES))
    for f, values in table.items():  # every feature on some threshold of its own in every row
        base[:, f] = rng.choice(values, size=base.shape[0])
    below, above = np.nextafter(base, -np.inf), np.nextafter(base, np.inf)
    single = []
    for f, values in table.items():  # each threshold alone, and one ulp either side
        for v in values:
            row = trained["X"][len(single) % trained["X"].shape[0]].copy()
            for value in (v, np.nextafter(v, -np.inf), np.nextafter(v, np.inf)):
                row[f] = value
                single.append(row.copy())
    _assert_parity(spark, trained, np.concatenate([base, below, above, np.asarray(single)]))


def test_extreme_values_match_spark(spark: Any, trained: dict[str, Any]) -> None:
    rng = np.random.default_rng(9)
    specials = np.array([np.inf, -np.inf, np.finfo(np.float64).max, -np.finfo(np.float64).max,
                         5e-324, -5e-324, 0.0, -0.0, 1e300, -1e300])
    X = rng.choice(specials, size=(500, N_FEATURES))
    mixed = trained["X"][:500].copy()
    mask = rng.random(mixed.shape) < 0.3
    mixed[mask] = rng.choice(specials, size=int(mask.sum()))
    _assert_parity(spark, trained, np.concatenate([X, mixed, np.tile(specials[:, None], (1, N_FEATURES))]))


def test_batch_size_does_not_change_results(trained: dict[str, Any]) -> None:
    forest: ForestModel = trained["forest"]
    X = trained["X"][:300]
    batch = forest.predict_proba(X)
    one_by_one = np.array([forest.predict_proba(X[i:i + 1])[0] for i in range(X.shape[0])])
    np.testing.assert_array_equal(batch, one_by_one)
    assert forest.predict_proba(X[:0]).shape == (0,)


def test_nan_is_rejected_and_spark_would_send_it_right(spark: Any, trained: dict[str, Any]) -> None:
    """Documented behaviour: Spark routes NaN right at every split (NaN <= t is false), i.e. like
    +inf; the evaluator refuses NaN rather than reproduce that arbitrary path."""
    forest: ForestModel = trained["forest"]
    X = trained["X"][:50].copy()
    X[np.arange(50), np.arange(50) % N_FEATURES] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        forest.predict_proba(X)
    as_inf = np.where(np.isnan(X), np.inf, X)
    np.testing.assert_array_equal(_spark_probability(spark, trained["model"], X)[:, 1],
                                  forest.predict_proba(as_inf))


def test_wrong_shape_is_rejected(trained: dict[str, Any]) -> None:
    forest: ForestModel = trained["forest"]
    with pytest.raises(ValueError, match="shape"):
        forest.predict_proba(np.zeros((3, N_FEATURES - 1)))
    with pytest.raises(ValueError, match="shape"):
        forest.predict_proba(np.zeros(N_FEATURES))


def test_categorical_splits_are_refused(spark: Any, tmp_path: Path) -> None:
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    rng = np.random.default_rng(10)
    colour = rng.choice(["red", "green", "blue"], size=600)
    amount = rng.normal(size=600)
    label = ((colour == "red") ^ (rng.random(600) < 0.05)).astype(float)
    frame = spark.createDataFrame(list(zip(colour.tolist(), amount.tolist(), label.tolist())),
                                  ["colour", "amount", "label"])
    indexed = StringIndexer(inputCol="colour", outputCol="colour_idx").fit(frame).transform(frame)
    assembled = VectorAssembler(inputCols=["colour_idx", "amount"], outputCol="features").transform(indexed)
    model = RandomForestClassifier(numTrees=3, maxDepth=3, seed=1).fit(assembled)
    for source in ("saved", "py4j"):
        with pytest.raises(CategoricalSplitError, match="categorical"):
            export_forest(model, ["colour_idx", "amount"], source=source)
