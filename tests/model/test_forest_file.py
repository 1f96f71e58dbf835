"""The forest file format and evaluator on a hand-built forest (numpy only: no Spark needed).

Spark parity on real forests is tests/model/test_forest_parity.py; this file pins the arithmetic
on numbers worked out by hand and checks that damaged files are refused instead of scored.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.forest_model import ForestFormatError, ForestModel
from spark_jobs.forest_export import FORMAT_NAME, FORMAT_VERSION, save_forest


def _tiny() -> dict[str, Any]:
    """Tree 0: x0 <= 0.5 ? [3,1] : (x1 <= -1 ? [0,2] : [1,1]).  Tree 1: a single leaf [1,3].
    Stored breadth-first, leaf votes = counts / sum."""
    return {
        "metadata": {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "feature_names": ["a", "b"],
                     "num_features": 2, "num_classes": 2, "num_trees": 2, "num_nodes": 6, "max_depth": 2,
                     "spark_version": "test", "model_uid": "hand-built", "exported_at": "",
                     "decision_rule": "left if x[feature] <= threshold else right"},
        "tree_offsets": np.array([0, 5, 6], dtype=np.int64),
        "feature": np.array([0, -1, 1, -1, -1, -1], dtype=np.int32),
        "threshold": np.array([0.5, 0.0, -1.0, 0.0, 0.0, 0.0]),
        "left": np.array([1, 1, 3, 3, 4, 5], dtype=np.int32),
        "right": np.array([2, 1, 4, 3, 4, 5], dtype=np.int32),
        "leaf_value": np.array([[0, 0], [0.75, 0.25], [0, 0], [0, 1], [0.5, 0.5], [0.25, 0.75]]),
        "tree_weights": np.ones(2),
        "feature_importances": np.array([0.7, 0.3]),
    }


def _load(tmp_path: Path, exported: dict[str, Any], **kwargs: Any) -> ForestModel:
    return ForestModel.load(save_forest(exported, tmp_path / "forest.npz"), **kwargs)


def test_hand_computed_probabilities(tmp_path: Path) -> None:
    forest = _load(tmp_path, _tiny())
    X = np.array([[0.5, 0.0],       # on the root threshold: left -> (0.75+0.25, 0.25+0.75) -> 0.5
                  [0.6, -1.0],      # right, on the second threshold: left -> (0.25, 1.75) -> 0.875
                  [0.6, 0.0],       # right, right -> (0.75, 1.25) -> 0.625
                  [-np.inf, np.inf],
                  [np.inf, -np.inf]])
    np.testing.assert_array_equal(forest.predict_proba(X), [0.5, 0.875, 0.625, 0.5, 0.875])
    np.testing.assert_array_equal(forest.predict_proba_all(X[:1]), [[0.5, 0.5]])
    np.testing.assert_array_equal(forest.leaves(X[:3]), [[1, 3, 4], [5, 5, 5]])
    assert forest.feature_names == ["a", "b"] and forest.max_depth == 2
    np.testing.assert_array_equal(forest.feature_importances, [0.7, 0.3])


def test_threads_and_integer_input_give_the_same_answers(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 2))
    single = _load(tmp_path, _tiny()).predict_proba(X)
    threaded = _load(tmp_path, _tiny(), threads=2)
    np.testing.assert_array_equal(threaded.predict_proba(X), single)
    threaded.close()
    np.testing.assert_array_equal(threaded.predict_proba(np.array([[0, -1], [1, -1]])), [0.5, 0.875])


def test_nan_and_bad_shapes_are_refused(tmp_path: Path) -> None:
    forest = _load(tmp_path, _tiny())
    with pytest.raises(ValueError, match="NaN.*row 1 b"):
        forest.predict_proba(np.array([[0.0, 0.0], [0.0, np.nan]]))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        forest.predict_proba(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="numeric"):
        forest.predict_proba(np.array([["x", "y"]]))


def _damaged(change: str) -> dict[str, Any]:
    exported = copy.deepcopy(_tiny())
    if change == "children not adjacent":
        exported["right"][0] = 3
    elif change == "child before parent":
        exported["left"][2], exported["right"][2] = 0, 1
    elif change == "child in another tree":
        exported["left"][2], exported["right"][2] = 4, 5
    elif change == "vote on internal node":
        exported["leaf_value"][0] = [0.5, 0.5]
    elif change == "depth lies":
        exported["metadata"]["max_depth"] = 7
    elif change == "future version":
        exported["metadata"]["format_version"] = FORMAT_VERSION + 1
    elif change == "feature out of range":
        exported["feature"][2] = 2
    return exported


@pytest.mark.parametrize("change", ["children not adjacent", "child before parent", "child in another tree",
                                    "vote on internal node", "depth lies", "future version",
                                    "feature out of range"])
def test_damaged_files_are_refused(tmp_path: Path, change: str) -> None:
    with pytest.raises(ForestFormatError):
        _load(tmp_path, _damaged(change))


def test_unreadable_or_incomplete_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ForestFormatError, match="not a readable"):
        ForestModel.load(garbage)
    partial = tmp_path / "partial.npz"
    np.savez(partial, feature=np.zeros(1))
    with pytest.raises(ForestFormatError, match="missing arrays"):
        ForestModel.load(partial)


def test_wide_record_layout_gives_the_same_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forests too big for 4-byte (left, predicate) records use 8-byte ones; same results."""
    import serving.forest_model as forest_model

    X = np.random.default_rng(4).normal(size=(300, 2))
    narrow = _load(tmp_path, _tiny())
    monkeypatch.setattr(forest_model, "_CHUNK_OUTCOME_BYTES", 2**32)
    wide = _load(tmp_path, _tiny())
    assert narrow._a.step.dtype == np.uint32 and wide._a.step.dtype == np.int64
    np.testing.assert_array_equal(wide.predict_proba(X), narrow.predict_proba(X))
