"""Evaluate an exported Spark RandomForest with numpy alone (no pyspark in the serving venv).

The file comes from ``spark_jobs/forest_export.py`` (its docstring is the format spec). The result
equals Spark's ``probability[1]`` from ``model.transform`` to the last bit in our parity test
(tests/model/test_forest_parity.py; the contract is |diff| <= 1e-9) because it does the same IEEE
operations in the same order:

* a split sends a row left iff ``x[feature] <= threshold`` (doubles, as Spark compares them);
* each tree votes its leaf's class counts / their sum (precomputed at export);
* votes are summed over trees in tree order, then divided by their sum over classes.

How it is fast (numbers: serving/bench_forest.py):

* Spark bins continuous features (maxBins), so a whole forest uses only a few hundred distinct
  (feature, threshold) predicates however many nodes it has. Each chunk of rows evaluates all of
  them once: ``outcome[row, p] = x[row, feature_p] > threshold_p``.
* All (tree, row) pairs of the chunk then descend together. Nodes are breadth-first so children
  are adjacent, and a leaf is its own left child with a never-true predicate, so one step for
  every pair is ``node = left[node] + outcome[row, predicate[node]]``: one gather of a 4-byte
  packed (left, predicate) record -- the only access that misses the cache, hence the packing --
  one outcome gather and a few integer ops, repeated max_depth times.
* Rows go in chunks of a few hundred, so the working arrays stay in a core's L2 cache while enough
  rows share each cached tree node. Optionally chunks run on several threads (numpy releases the
  GIL in take and the ufuncs).

Dropping pairs that already reached a leaf was tried and measured slower on a depth-16 forest:
most leaves sit within three levels of the bottom, and compaction costs more than those steps.

Inputs: an (n, num_features) array, converted to float64, columns in ``feature_names`` order (the
VectorAssembler inputCols order at training). NaN is rejected (Spark would silently route it right
at every split; see the exporter's docstring); +/-inf are accepted and handled as Spark does.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "patternalarm-forest"
SUPPORTED_FORMAT_VERSIONS = (1,)
REQUIRED_KEYS = ("metadata", "tree_offsets", "feature", "threshold", "left", "right", "leaf_value",
                 "tree_weights", "feature_importances")
# Rows per chunk: about this many (tree, row) pairs and this many outcome-table bytes. Measured on a
# 150-tree depth-16 forest with 1000 distinct rows: 200-600 rows per chunk are equally fast, 100
# is ~25% slower (fewer rows share each cached tree node), 1000 slightly slower (working arrays
# spill out of L2).
_CHUNK_PAIRS = 32768
_CHUNK_OUTCOME_BYTES = 262144


class ForestFormatError(ValueError):
    """The file is not a forest this evaluator understands."""


@dataclass(frozen=True)
class _Arrays:
    """Evaluation layout derived from the file at load time."""

    roots: np.ndarray      # (T,) intp, root node of each tree
    step: np.ndarray       # (N,) uint32 (int64 for huge forests): left child << pred_bits |
                           # predicate index; right child = left + 1. A leaf has the last
                           # predicate, (0, +inf), never true, and left = itself
    pred_bits: int
    pred_feature: np.ndarray    # (P,) intp, feature tested by each distinct predicate
    pred_threshold: np.ndarray  # (P,) float64, its threshold: go right iff x > threshold
    root_predicate: np.ndarray  # (T,) predicate of each root
    root_left: np.ndarray       # (T,) left child of each root
    votes: np.ndarray      # (N,) complex128 for 2 classes (real=class 0, imag=class 1): one gather
                           # fetches both votes and complex addition adds them independently
    max_depth: int         # longest root-to-leaf path, derived from the nodes


class ForestModel:
    """A loaded forest; thread-safe (immutable arrays, no shared scratch buffers)."""

    def __init__(self, metadata: dict[str, Any], arrays: dict[str, np.ndarray], threads: int = 1) -> None:
        self.metadata = metadata
        self.feature_names: list[str] = list(metadata["feature_names"])
        self.num_features = int(metadata["num_features"])
        self.num_classes = int(metadata["num_classes"])
        self.num_trees = int(metadata["num_trees"])
        self.feature_importances: np.ndarray = arrays["feature_importances"]
        self._a = _build_layout(arrays, self.num_features, self.num_classes)
        # Derived from the nodes, not trusted from metadata: the descent stops after this many steps.
        self.max_depth = self._a.max_depth
        if self.max_depth != int(metadata["max_depth"]):
            raise ForestFormatError(f"metadata says max_depth {metadata['max_depth']} but the trees "
                                    f"are {self.max_depth} deep; the file is inconsistent")
        pairs_budget = _CHUNK_PAIRS // max(1, self.num_trees)
        outcome_budget = _CHUNK_OUTCOME_BYTES // self._a.pred_threshold.shape[0]
        self._chunk_rows = max(1, min(pairs_budget, outcome_budget))
        self.num_predicates = int(self._a.pred_threshold.shape[0] - 1)
        if threads < 1:
            raise ValueError(f"threads={threads}; use 1 (evaluate in the caller's thread) or more")
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # --- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str], threads: int = 1) -> "ForestModel":
        """Read and validate a file written by ``spark_jobs.forest_export.save_forest``.

        ``threads`` > 1 spreads batches of more than one chunk (~100 rows) over that many threads;
        keep 1 where requests are already scored concurrently on every core.
        """
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                missing = [k for k in REQUIRED_KEYS if k not in data.files]
                if missing:
                    raise ForestFormatError(f"{path}: missing arrays {missing}; re-export with "
                                            "spark_jobs/forest_export.py")
                arrays = {k: data[k] for k in REQUIRED_KEYS if k != "metadata"}
                metadata = json.loads(str(data["metadata"]))
        except (OSError, ValueError) as exc:
            if isinstance(exc, ForestFormatError):
                raise
            raise ForestFormatError(f"{path}: not a readable forest .npz ({exc})") from exc
        _check_metadata(metadata, path)
        return cls(metadata, arrays, threads=threads)

    def close(self) -> None:
        """Stop the worker threads (if any) now rather than when the model is garbage-collected."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    # --- prediction ------------------------------------------------------------------------------

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of class 1 (fraud) for each row of ``X`` (n, num_features) -> (n,) float64."""
        votes = self._votes(self._validated(X))
        return votes[:, 1] / self._vote_totals(votes)

    def predict_proba_all(self, X: np.ndarray) -> np.ndarray:
        """Spark's whole ``probability`` vector per row: (n, num_classes)."""
        votes = self._votes(self._validated(X))
        return votes / self._vote_totals(votes)[:, None]

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Global index of the leaf each tree reaches: (num_trees, n). For explanations/debugging."""
        return self._descend(self._validated(X))

    # --- internals -------------------------------------------------------------------------------

    def _validated(self, X: np.ndarray) -> np.ndarray:
        arr = np.asarray(X)
        if arr.ndim != 2 or arr.shape[1] != self.num_features:
            raise ValueError(f"expected an array of shape (n, {self.num_features}) with columns "
                             f"{self.feature_names}; got shape {arr.shape}")
        if arr.dtype.kind not in "fiub":
            raise ValueError(f"features must be numeric, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        nan_rows, nan_cols = np.nonzero(np.isnan(arr))
        if nan_rows.size:
            where = ", ".join(f"row {r} {self.feature_names[c]}"
                              for r, c in zip(nan_rows[:5].tolist(), nan_cols[:5].tolist()))
            raise ValueError(f"NaN feature values ({nan_rows.size}; first: {where}); the model was "
                             "trained without NaN (VectorAssembler rejects it): impute or reject "
                             "the request upstream")
        return arr

    def _vote_totals(self, votes: np.ndarray) -> np.ndarray:
        """Sum over classes left to right, as Spark normalizes (Scala Array.sum)."""
        total = votes[:, 0].copy()
        for c in range(1, votes.shape[1]):
            total += votes[:, c]
        if np.any(total <= 0):
            raise ArithmeticError("a row got no votes from any tree (all reached weightless leaves); "
                                  "Spark fails the same way: 'Can't normalize the 0-vector'")
        return total

    def _votes(self, X: np.ndarray) -> np.ndarray:
        """(n, num_classes) sum of leaf votes over trees, in tree order."""
        chunks = [X[i:i + self._chunk_rows] for i in range(0, X.shape[0], self._chunk_rows)]
        if not chunks:
            return np.zeros((0, self.num_classes))
        if len(chunks) == 1 or self.threads == 1:
            parts = [self._chunk_votes(chunk) for chunk in chunks]
        else:
            parts = list(self._executor().map(self._chunk_votes, chunks))
        return np.concatenate(parts, axis=0)

    def _chunk_votes(self, X: np.ndarray) -> np.ndarray:
        leaves = self._descend_chunk(X)
        rows = leaves.shape[1]
        if rows == 1:
            # Summing over axis 0 of a (T, rows) array adds whole rows one after the other (tree 0
            # + tree 1 + ..., Spark's order) -- except when it is a single contiguous column, which
            # numpy sums pairwise (different last bit). Two identical columns keep it sequential.
            leaves = np.repeat(leaves, 2, axis=1)
        if self._a.votes.dtype == np.complex128:
            summed = self._a.votes.take(leaves).sum(axis=0)[:rows]
            return np.stack([summed.real, summed.imag], axis=1)
        return self._a.votes.take(leaves, axis=0).sum(axis=0)[:rows]

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="forest")
            return self._pool

    def _descend(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached by every (tree, row) pair: (T, n) intp."""
        final = np.empty((self.num_trees, X.shape[0]), dtype=np.intp)
        for start in range(0, X.shape[0], self._chunk_rows):
            chunk = X[start:start + self._chunk_rows]
            final[:, start:start + chunk.shape[0]] = self._descend_chunk(chunk)
        return final

    def _descend_chunk(self, X: np.ndarray) -> np.ndarray:
        """Leaves reached by one chunk of rows: (T, rows). See the module docstring."""
        a = self._a
        rows = X.shape[0]
        n_pred = a.pred_threshold.shape[0]
        outcome = np.take(X, a.pred_feature, axis=1) > a.pred_threshold   # (rows, n_pred) bool
        # Every root is at depth 0 for all rows: take its step with a column gather.
        node = (a.root_left[:, None] + outcome[:, a.root_predicate].T).ravel()  # tree-major pairs
        # All arithmetic stays in the record's unsigned type (uint32 normally): no casting passes,
        # and numpy accepts those arrays as gather indices directly (measured ~13% faster than intp).
        kind = a.step.dtype.type
        outcome_flat = outcome.ravel().view(np.uint8)
        row_base = np.tile(np.arange(rows, dtype=a.step.dtype) * kind(n_pred), self.num_trees)
        mask, shift = kind((1 << a.pred_bits) - 1), kind(a.pred_bits)
        for _ in range(self.max_depth - 1):
            step = a.step.take(node)   # the one gather that misses the cache, hence 4-byte records
            index = step & mask
            index += row_base
            node = step >> shift
            node += outcome_flat.take(index)
        return node.reshape(self.num_trees, rows)


def _check_metadata(metadata: dict[str, Any], path: str | os.PathLike[str]) -> None:
    if metadata.get("format") != FORMAT_NAME:
        raise ForestFormatError(f"{path}: format {metadata.get('format')!r}, expected {FORMAT_NAME!r}")
    version = metadata.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ForestFormatError(f"{path}: format_version {version} not supported (this evaluator "
                                f"reads {SUPPORTED_FORMAT_VERSIONS}); upgrade serving or re-export")
    for key in ("feature_names", "num_features", "num_classes", "num_trees", "max_depth"):
        if key not in metadata:
            raise ForestFormatError(f"{path}: metadata lacks {key!r}")
    if len(metadata["feature_names"]) != metadata["num_features"]:
        raise ForestFormatError(f"{path}: {len(metadata['feature_names'])} feature names for "
                                f"{metadata['num_features']} features")


def _build_layout(arrays: dict[str, np.ndarray], num_features: int, num_classes: int) -> _Arrays:
    """Validate the node arrays and derive the evaluation layout.

    Checks what the descent loop relies on, so a corrupt file fails here rather than returning
    wrong scores: indices in range, children inside their own tree and after their parent (so the
    walk terminates within max_depth steps), right == left + 1, leaves pointing to themselves.
    """
    offsets = arrays["tree_offsets"].astype(np.intp)
    feature = arrays["feature"].astype(np.intp)
    threshold = arrays["threshold"].astype(np.float64)
    left = arrays["left"].astype(np.intp)
    right = arrays["right"].astype(np.intp)
    leaf_value = arrays["leaf_value"].astype(np.float64)
    n_nodes = feature.shape[0]
    num_trees = offsets.shape[0] - 1
    if num_trees < 1 or offsets[0] != 0 or offsets[-1] != n_nodes or np.any(np.diff(offsets) < 1):
        raise ForestFormatError("tree_offsets do not partition the node arrays")
    if any(arr.shape != (n_nodes,) for arr in (threshold, left, right)) or \
            leaf_value.shape != (n_nodes, num_classes):
        raise ForestFormatError("node arrays have inconsistent shapes")
    if arrays["feature_importances"].shape != (num_features,):
        raise ForestFormatError("feature_importances length differs from num_features")
    index = np.arange(n_nodes, dtype=np.intp)
    tree_of = np.repeat(np.arange(num_trees), np.diff(offsets))
    leaf = feature < 0
    internal = ~leaf
    if np.any(feature[internal] >= num_features):
        raise ForestFormatError("a split tests a feature index >= num_features")
    if not np.all(np.isfinite(threshold[internal])):
        raise ForestFormatError("a split has a non-finite threshold")
    if np.any(left[leaf] != index[leaf]) or np.any(right[leaf] != index[leaf]):
        raise ForestFormatError("leaves must point to themselves")
    li, ri = left[internal], right[internal]
    if np.any(ri != li + 1):
        raise ForestFormatError("children are not adjacent (right != left + 1); re-export with "
                                "spark_jobs/forest_export.py, which writes breadth-first order")
    if np.any(li <= index[internal]) or np.any(ri >= n_nodes) or \
            np.any(tree_of[np.minimum(ri, n_nodes - 1)] != tree_of[internal]):
        raise ForestFormatError("a child index points outside its tree or before its parent")
    if np.any(leaf_value[internal] != 0) or np.any(leaf_value < 0):
        raise ForestFormatError("leaf_value must be >= 0 on leaves and 0 on internal nodes")
    votes: np.ndarray
    if num_classes == 2:
        votes = np.ascontiguousarray(leaf_value).view(np.complex128).reshape(n_nodes)
    else:
        votes = np.ascontiguousarray(leaf_value)
    pred_feature, pred_threshold, predicate = _distinct_predicates(feature, threshold, internal)
    roots = offsets[:-1].copy()
    max_depth = _tree_depth(roots, left, internal)
    # Pack (left, predicate) into one small integer: the per-step gather of this array is the
    # only one that misses the cache, so halving its footprint (vs two int32) was measured faster.
    pred_bits = max(1, int(pred_threshold.shape[0] - 1).bit_length())
    fits_32 = (n_nodes << pred_bits) < 2**32 and _CHUNK_OUTCOME_BYTES < 2**32
    step = (left.astype(np.uint64) << np.uint64(pred_bits)) | predicate.astype(np.uint64)
    return _Arrays(
        roots=roots,
        step=step.astype(np.uint32) if fits_32 else step.astype(np.int64),  # take refuses uint64 indices
        pred_bits=pred_bits,
        root_predicate=predicate[roots],
        root_left=left[roots],
        pred_feature=pred_feature,
        pred_threshold=pred_threshold,
        votes=votes,
        max_depth=max_depth,
    )


def _distinct_predicates(feature: np.ndarray, threshold: np.ndarray,
                         internal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (feature, threshold) pairs of the internal nodes, plus a final never-true one for
    leaves; returns (pred_feature, pred_threshold, predicate index per node)."""
    features: list[np.ndarray] = []
    thresholds: list[np.ndarray] = []
    predicate = np.empty(feature.shape[0], dtype=np.intp)
    count = 0
    for f in np.unique(feature[internal]):
        nodes = np.nonzero(feature == f)[0]
        values, inverse = np.unique(threshold[nodes], return_inverse=True)
        predicate[nodes] = count + inverse.reshape(-1)
        features.append(np.full(values.shape[0], f, dtype=np.intp))
        thresholds.append(values)
        count += values.shape[0]
    predicate[~internal] = count
    features.append(np.zeros(1, dtype=np.intp))
    thresholds.append(np.full(1, np.inf))
    return np.concatenate(features), np.concatenate(thresholds), predicate


def _tree_depth(roots: np.ndarray, left: np.ndarray, internal: np.ndarray) -> int:
    """Longest root-to-leaf path, level by level; also checks every node is reached exactly once
    (no node shared between parents, none orphaned)."""
    n_nodes = left.shape[0]
    frontier = roots
    depth, seen = -1, 0
    while frontier.size:
        depth += 1
        seen += frontier.size
        if seen > n_nodes:
            raise ForestFormatError("a node is reachable along more than one path")
        children = left[frontier[internal[frontier]]]
        frontier = np.concatenate([children, children + 1])
    if seen != n_nodes:
        raise ForestFormatError(f"{n_nodes - seen} nodes are unreachable from the roots")
    return depth
