"""Export a Spark RandomForestClassificationModel to a numpy file the scoring service can evaluate.

Why: scoring through Spark cost ~950 ms per request (a job per request). The forest itself is a
few hundred thousand (feature, threshold, child, class-count) tuples; flattened into numpy arrays
it is evaluated in microseconds by ``serving/forest_model.py`` without importing pyspark, and
gives Spark's ``probability`` to the last bit (see tests/model/test_forest_parity.py).

File format (``FORMAT_VERSION`` 1): one ``.npz`` (zip of .npy, compressed, no pickles) holding

==================  ============  ===========================================================
key                 dtype/shape   meaning
==================  ============  ===========================================================
metadata            str, ()       JSON: format, format_version, feature_names, num_features,
                                  num_classes, num_trees, num_nodes, max_depth, spark_version,
                                  model_uid, exported_at, decision_rule
tree_offsets        int64 (T+1,)  nodes of tree t are [tree_offsets[t], tree_offsets[t+1]);
                                  the root of tree t is node tree_offsets[t]
feature             int32 (N,)    feature index tested by an internal node; -1 on leaves
threshold           float64 (N,)  go LEFT when x[feature] <= threshold; 0.0 on leaves
left, right         int32 (N,)    global node index of the children; a leaf points to itself
leaf_value          float64 (N,C) per-class vote of a leaf = class counts / their sum (what
                                  Spark adds per tree); zeros on internal nodes and on leaves
                                  with no weight (Spark skips those)
tree_weights        float64 (T,)  Spark's treeWeights (all 1.0; Spark's predictRaw ignores them)
feature_importances float64 (F,)  model.featureImportances, in feature_names order
==================  ============  ===========================================================

Nodes are stored tree by tree in breadth-first order, so every internal node has
``right == left + 1`` and a parent always precedes its children: the evaluator relies on both.

Spark's probability for a row x (Spark 3.5, RandomForestClassificationModel.predictRaw and
ProbabilisticClassificationModel.normalizeToProbabilitiesInPlace)::

    votes[c] = sum over trees, in tree order, of leaf_value[leaf reached in that tree, c]
    probability[c] = votes[c] / (votes[0] + votes[1] + ...)

NaN: Spark's ContinuousSplit sends a row left iff ``x <= threshold``, which is false for NaN, so a
NaN feature silently goes right at every split that tests it. VectorAssembler (handleInvalid
"error", the default) refuses NaN, so a trained model never saw one; the serving evaluator
therefore rejects NaN input instead of reproducing that arbitrary path. +/-inf are ordinary
values for both (-inf always left, +inf always right).

Two ways to read the trees, both from the JVM model and giving identical arrays:
``source="saved"`` (default) lets Spark serialize its own node table (``model.write()``) and reads
it back with ``spark.read.parquet``: a few seconds for a 150-tree depth-16 forest.
``source="py4j"`` walks ``model._java_obj.trees()`` node by node through py4j (rootNode, split,
leftChild/rightChild, impurityStats): ~0.3 ms per node, i.e. minutes for a big forest, kept as an
independent cross-check that the parity test runs on a small forest.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "patternalarm-forest"
FORMAT_VERSION = 1
DECISION_RULE = "left if x[feature] <= threshold else right"
ARRAY_KEYS = ("tree_offsets", "feature", "threshold", "left", "right", "leaf_value",
              "tree_weights", "feature_importances")


@dataclass
class RawTree:
    """One tree as Spark numbers it: node id -> split or class counts; root is id 0."""

    feature: dict[int, int]          # internal node id -> feature index
    threshold: dict[int, float]      # internal node id -> threshold
    children: dict[int, tuple[int, int]]  # internal node id -> (left id, right id)
    counts: dict[int, list[float]]   # leaf id -> impurity stats (weighted class counts)


class CategoricalSplitError(ValueError):
    """The model splits on a categorical feature, which the exported format cannot express."""


def export_forest(model: Any, feature_names: list[str], source: str = "saved",
                  staging_dir: str | None = None) -> dict[str, Any]:
    """Flatten ``model`` into the arrays and metadata described in the module docstring.

    ``feature_names`` must be the VectorAssembler input columns in assembly order: feature index i
    of the model is ``feature_names[i]``, and callers of the evaluator pass columns in that order.
    ``staging_dir`` (source="saved" only) is where Spark writes its node table; the default is a
    local temporary directory, right for local[*] masters (use a shared path on a cluster).
    """
    num_features = int(model.numFeatures)
    if len(feature_names) != num_features:
        raise ValueError(f"model has {num_features} features but {len(feature_names)} feature_names "
                         "were given; pass the VectorAssembler inputCols in order")
    if len(set(feature_names)) != len(feature_names):
        raise ValueError("feature_names contains duplicates; each assembled column must be named once")
    weights = np.asarray([float(w) for w in model.treeWeights], dtype=np.float64)
    if not np.all(weights == 1.0):
        raise ValueError("treeWeights are not all 1.0; Spark's classifier ignores them when predicting, "
                         "so this model's meaning is unclear: retrain with RandomForestClassifier")
    num_classes = int(model.numClasses)
    if source == "saved":
        trees = _read_saved_trees(model, staging_dir)
    elif source == "py4j":
        trees = [_walk_java_tree(jtree.rootNode()) for jtree in model._java_obj.trees()]
    else:
        raise ValueError(f"source={source!r}; use 'saved' or 'py4j'")
    if len(trees) != len(weights):
        raise RuntimeError(f"read {len(trees)} trees but the model has {len(weights)}")
    arrays = _flatten(trees, num_classes)
    arrays["tree_weights"] = weights
    arrays["feature_importances"] = np.asarray(model.featureImportances.toArray(), dtype=np.float64)
    max_depth = _max_depth(arrays)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "feature_names": list(feature_names),
        "num_features": num_features,
        "num_classes": num_classes,
        "num_trees": len(trees),
        "num_nodes": int(arrays["feature"].shape[0]),
        "max_depth": max_depth,
        "spark_version": _spark_version(),
        "model_uid": str(model.uid),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "decision_rule": DECISION_RULE,
    }
    return {"metadata": metadata, **arrays}


def save_forest(exported: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``export_forest``'s result to one compressed ``.npz`` atomically; return the path.

    Atomic (temp file + rename) because the scoring service may hot-reload the same path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {key: exported[key] for key in ARRAY_KEYS}
    payload["metadata"] = np.array(json.dumps(exported["metadata"], sort_keys=True))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **payload)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(buffer.getvalue())
    os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; the service may run as another user
    os.replace(tmp_name, target)
    return target


def export_and_save(model: Any, feature_names: list[str], path: str | os.PathLike[str],
                    **kwargs: Any) -> Path:
    """Convenience for training jobs: export then save."""
    return save_forest(export_forest(model, feature_names, **kwargs), path)


# --- reading trees -------------------------------------------------------------------------------

def _read_saved_trees(model: Any, staging_dir: str | None) -> list[RawTree]:
    """Let Spark write its node table (EnsembleNodeData parquet) and read it back in bulk."""
    from pyspark.sql import SparkSession  # training side only; the evaluator never imports this

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError("export_forest(source='saved') needs an active SparkSession "
                           "(the one that trained the model); or pass source='py4j'")
    owned = staging_dir is None
    base = tempfile.mkdtemp(prefix="forest-export-") if owned else staging_dir
    model_dir = os.path.join(base, "model")
    try:
        model.write().overwrite().save(model_dir)
        rows = (spark.read.parquet(os.path.join(model_dir, "data"))
                .selectExpr("treeID", "nodeData.id AS id", "nodeData.impurityStats AS stats",
                            "nodeData.leftChild AS l", "nodeData.rightChild AS r",
                            "nodeData.split.featureIndex AS f",
                            "nodeData.split.leftCategoriesOrThreshold AS t",
                            "nodeData.split.numCategories AS k")
                .collect())
    finally:
        if owned:
            shutil.rmtree(base, ignore_errors=True)
    by_tree: dict[int, RawTree] = {}
    for row in rows:
        tree = by_tree.setdefault(int(row.treeID), RawTree({}, {}, {}, {}))
        node_id = int(row.id)
        if row.l < 0:
            tree.counts[node_id] = [float(v) for v in row.stats]
            continue
        if row.k != -1:
            raise CategoricalSplitError(
                f"tree {row.treeID} node {node_id} splits feature {row.f} categorically; only "
                "continuous features are supported: drop categoricalFeatures metadata / StringIndexer "
                "outputs from the assembler or extend the format")
        if len(row.t) != 1:
            raise RuntimeError(f"continuous split with {len(row.t)} thresholds in tree {row.treeID}")
        tree.feature[node_id] = int(row.f)
        tree.threshold[node_id] = float(row.t[0])
        tree.children[node_id] = (int(row.l), int(row.r))
    if sorted(by_tree) != list(range(len(by_tree))):
        raise RuntimeError(f"saved node table has tree ids {sorted(by_tree)[:5]}..., expected 0..T-1")
    return [by_tree[t] for t in range(len(by_tree))]


def _walk_java_tree(root: Any) -> RawTree:
    """Read one tree through py4j (iteratively: depth-16 trees would be fine recursively, but
    nothing is gained by risking the recursion limit). Ids are assigned in visit order."""
    tree = RawTree({}, {}, {}, {})
    stack = [(root, 0)]
    next_id = 1
    while stack:
        node, node_id = stack.pop()
        kind = node.getClass().getSimpleName()
        if kind == "LeafNode":
            tree.counts[node_id] = [float(v) for v in node.impurityStats().stats()]
            continue
        if kind != "InternalNode":
            raise RuntimeError(f"unexpected Spark tree node class {kind}")
        split = node.split()
        split_kind = split.getClass().getSimpleName()
        if split_kind == "CategoricalSplit":
            raise CategoricalSplitError(
                f"a node splits feature {split.featureIndex()} categorically; only continuous "
                "features are supported")
        if split_kind != "ContinuousSplit":
            raise RuntimeError(f"unexpected Spark split class {split_kind}")
        tree.feature[node_id] = int(split.featureIndex())
        tree.threshold[node_id] = float(split.threshold())
        left_id, right_id = next_id, next_id + 1
        next_id += 2
        tree.children[node_id] = (left_id, right_id)
        stack.append((node.rightChild(), right_id))
        stack.append((node.leftChild(), left_id))
    return tree


# --- flattening ----------------------------------------------------------------------------------

def _bfs_order(tree: RawTree) -> list[int]:
    """Spark node ids in breadth-first order: children of a node end up adjacent (left, right)."""
    order: list[int] = []
    queue = deque([0])
    while queue:
        node_id = queue.popleft()
        order.append(node_id)
        if node_id in tree.children:
            queue.extend(tree.children[node_id])
    expected = len(tree.children) + len(tree.counts)
    if len(order) != expected:
        raise RuntimeError(f"tree has {expected} nodes but {len(order)} are reachable from the root")
    return order


def _leaf_votes(counts: np.ndarray) -> np.ndarray:
    """Spark's per-tree vote: counts / total, total summed left to right as Scala's Array.sum does;
    an all-zero leaf votes nothing (Spark skips it)."""
    total = np.zeros(counts.shape[0], dtype=np.float64)
    for c in range(counts.shape[1]):
        total = total + counts[:, c]
    votes = np.zeros_like(counts)
    nonzero = total != 0
    votes[nonzero] = counts[nonzero] / total[nonzero, None]
    return votes


def _flatten(trees: list[RawTree], num_classes: int) -> dict[str, np.ndarray]:
    """Concatenate the trees, breadth-first, into the global arrays of the file format."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    counts: list[list[float]] = []
    is_leaf: list[bool] = []
    offsets = [0]
    for tree in trees:
        order = _bfs_order(tree)
        base = offsets[-1]
        position = {node_id: base + i for i, node_id in enumerate(order)}
        for node_id in order:
            if node_id in tree.children:
                l_id, r_id = tree.children[node_id]
                feature.append(tree.feature[node_id])
                threshold.append(tree.threshold[node_id])
                left.append(position[l_id])
                right.append(position[r_id])
                counts.append([0.0] * num_classes)
                is_leaf.append(False)
            else:
                stats = tree.counts[node_id]
                if len(stats) != num_classes:
                    raise RuntimeError(f"leaf has {len(stats)} class counts, model has {num_classes}")
                feature.append(-1)
                threshold.append(0.0)
                left.append(position[node_id])
                right.append(position[node_id])
                counts.append(stats)
                is_leaf.append(True)
        offsets.append(base + len(order))
    counts_arr = np.asarray(counts, dtype=np.float64).reshape(-1, num_classes)
    leaf_mask = np.asarray(is_leaf, dtype=bool)
    leaf_value = np.zeros_like(counts_arr)
    leaf_value[leaf_mask] = _leaf_votes(counts_arr[leaf_mask])
    return {
        "tree_offsets": np.asarray(offsets, dtype=np.int64),
        "feature": np.asarray(feature, dtype=np.int32),
        "threshold": np.asarray(threshold, dtype=np.float64),
        "left": np.asarray(left, dtype=np.int32),
        "right": np.asarray(right, dtype=np.int32),
        "leaf_value": leaf_value,
    }


def _max_depth(arrays: dict[str, np.ndarray]) -> int:
    """Longest root-to-leaf path (edges), level by level."""
    feature, left, right = arrays["feature"], arrays["left"], arrays["right"]
    frontier = arrays["tree_offsets"][:-1]
    depth = -1
    while frontier.size:
        depth += 1
        internal = frontier[feature[frontier] >= 0]
        frontier = np.concatenate([left[internal], right[internal]]).astype(np.int64)
    return depth


def _spark_version() -> str:
    try:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is not None:
            return str(spark.version)
        import pyspark

        return str(pyspark.__version__)
    except ImportError:
        return "unknown"
