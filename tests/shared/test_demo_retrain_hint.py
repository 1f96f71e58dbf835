"""What `make demo` tells the user when its retrain fails: the remedy of the expectation that failed,
read from the DAG run's log (the validate task raises expectations.training_set.TrainingSetInvalid)."""

from __future__ import annotations

from patternalarm.stack.demo import retrain_failure_hint

LOG_HEAD = "INFO - [DAG TEST] running task <TaskInstance: fraud_model_retrain.validate>\n"


def invalid(failed: str) -> str:
    return (LOG_HEAD + "expectations.training_set.TrainingSetInvalid: training set /var/retrain/run/training_set.csv "
            f"failed 1 expectation(s): {failed}; report: /var/gx/index.html\n")


def test_a_refused_training_set_names_the_failed_expectations_and_the_remedy() -> None:
    for failed in ("['expect_column_mean_to_be_between(label)']", "['expect_table_row_count_to_be_between']"):
        hint = retrain_failure_hint(invalid(failed))
        assert failed in hint
        assert "min_positive_share" in hint and "DURATION=5m" in hint


def test_a_failure_that_is_not_the_training_set_points_at_the_task_logs() -> None:
    hint = retrain_failure_hint(LOG_HEAD + "ERROR - Task failed with exception\nsparkSubmit exited 1\n")
    assert "log" in hint and "Great Expectations" not in hint
