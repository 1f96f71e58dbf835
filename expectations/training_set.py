"""The ``fraud_training_set`` suite and the checkpoint the retraining DAG runs on each extracted set.

What a training set must be before Spark spends minutes on it (spark_jobs/retrain.py writes it):

* schema: exactly spark_jobs.retrain.COLUMNS, in order;
* nulls: none anywhere (a window missing a feature cannot be scored, so it cannot be trained on);
* value ranges: label and the domain flags 0/1, shares in [0, 1], counts, amounts and durations >= 0,
  source one of reviewed/sample;
* label balance: the positive share between ``min_positive_share`` and ``max_positive_share`` (too
  few and the forest learns nothing; too many and the set is not what production looks like);
* minimum rows: ``min_rows``.

The context is a file context under var/gx (git-ignored): the suite, the checkpoint and every
validation result are kept there, and the Data Docs site is rebuilt after each run at
var/gx/gx/uncommitted/data_docs/local_site/index.html. A failed checkpoint raises
:class:`TrainingSetInvalid` naming the failed expectations and the Data Docs page.

Importing this module does not import great_expectations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patternalarm import features, history_features

SUITE = "fraud_training_set"
CHECKPOINT = "fraud_training_set"
SHARE_FEATURES = [n for n in features.FEATURE_NAMES if n.endswith("_share")]
FLAG_FEATURES = [n for n in features.FEATURE_NAMES if n.startswith("domain_")]
# Features that are features.MISSING (-1) when their inputs are absent (no session lengths in
# fintech and IoT windows): at least MISSING, not at least 0.
MAY_BE_MISSING = ["session_mean"]
NON_NEGATIVE = [n for n in features.FEATURE_NAMES if n not in SHARE_FEATURES + FLAG_FEATURES + MAY_BE_MISSING
                and n not in ("amount_min", "amount_max", "amount_mean", "amount_sum", "amount_std")]
# History (patternalarm/history_features.py): counts and the store's coverage are >= 0; a fraud rate is a share or MISSING (no
# labelled earlier window); amount means are unbounded (IoT readings can be negative).
NON_NEGATIVE += [n for n in history_features.HISTORY_FEATURE_NAMES if "_count_" in n or n == history_features.COVERAGE]
RATE_OR_MISSING = [n for n in history_features.HISTORY_FEATURE_NAMES if "_fraud_rate_" in n]


class TrainingSetInvalid(RuntimeError):
    """The checkpoint failed; the message lists what and where the report is."""


@dataclass(frozen=True)
class Thresholds:
    min_rows: int = 200
    min_positive_share: float = 0.01
    max_positive_share: float = 0.6


def expectations(columns: list[str], t: Thresholds) -> list[dict[str, Any]]:
    """The suite as (expectation_type, kwargs) dicts: easy to read, to diff and to test."""
    exp: list[dict[str, Any]] = [
        {"expectation_type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": columns}},
        {"expectation_type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": t.min_rows}},
        {"expectation_type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "label", "value_set": [0.0, 1.0]}},
        {"expectation_type": "expect_column_mean_to_be_between",
         "kwargs": {"column": "label", "min_value": t.min_positive_share, "max_value": t.max_positive_share}},
        {"expectation_type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "source", "value_set": ["reviewed", "sample"]}},
    ]
    exp += [{"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": c}} for c in columns]
    exp += [{"expectation_type": "expect_column_values_to_be_between",
             "kwargs": {"column": c, "min_value": 0.0, "max_value": 1.0}} for c in SHARE_FEATURES]
    exp += [{"expectation_type": "expect_column_values_to_be_in_set",
             "kwargs": {"column": c, "value_set": [0.0, 1.0]}} for c in FLAG_FEATURES]
    exp += [{"expectation_type": "expect_column_values_to_be_between",
             "kwargs": {"column": c, "min_value": 0.0}} for c in NON_NEGATIVE]
    exp += [{"expectation_type": "expect_column_values_to_be_between",
             "kwargs": {"column": c, "min_value": features.MISSING}} for c in MAY_BE_MISSING]
    exp += [{"expectation_type": "expect_column_values_to_be_between",
             "kwargs": {"column": c, "min_value": features.MISSING, "max_value": 1.0}} for c in RATE_OR_MISSING]
    return exp


def context_root(var_dir: Path) -> Path:
    return var_dir / "gx"


def data_docs_index(var_dir: Path) -> Path:
    return context_root(var_dir) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def run_checkpoint(csv_path: Path, var_dir: Path, run_name: str, t: Thresholds = Thresholds()) -> dict[str, Any]:
    """Validate the CSV against the suite, rebuild Data Docs; raise TrainingSetInvalid on failure.

    Returns a small summary (success, evaluated/failed counts, the Data Docs index) for XCom.
    """
    import great_expectations as gx
    from great_expectations.core.expectation_configuration import ExpectationConfiguration

    from spark_jobs.retrain import COLUMNS

    root = context_root(var_dir)
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(project_root_dir=str(root))
    datasource = context.sources.add_or_update_pandas("retrain_extracts")
    asset = datasource.add_csv_asset(name="training_set", filepath_or_buffer=csv_path)
    suite = context.add_or_update_expectation_suite(expectation_suite_name=SUITE)
    suite.expectations = []
    for e in expectations(list(COLUMNS), t):
        suite.add_expectation(ExpectationConfiguration(**e))
    context.add_or_update_expectation_suite(expectation_suite=suite)
    checkpoint = context.add_or_update_checkpoint(
        name=CHECKPOINT, validations=[{"batch_request": asset.build_batch_request(), "expectation_suite_name": SUITE}])
    result = checkpoint.run(run_name=run_name)
    context.build_data_docs()
    failed: list[str] = []
    evaluated = 0
    for validation in result.run_results.values():
        for r in validation["validation_result"].results:
            evaluated += 1
            if not r.success:
                cfg = r.expectation_config
                failed.append(f"{cfg.expectation_type}({cfg.kwargs.get('column', '')})")
    summary = {"success": bool(result.success), "evaluated": evaluated, "failed": failed,
               "data_docs": str(data_docs_index(var_dir)), "file": str(csv_path)}
    if not result.success:
        raise TrainingSetInvalid(f"training set {csv_path} failed {len(failed)} expectation(s): {failed}; "
                                 f"report: {summary['data_docs']}")
    return summary
