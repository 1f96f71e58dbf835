"""Scoring of per-actor feature windows inside the detection job: a vectorized (pandas) Python UDF.

    score_window(actor_id, domain, <every feature of patternalarm.features, in FEATURE_NAMES order>)
      -> ROW<score DOUBLE, score_status STRING, model_version STRING, suspicious BOOLEAN,
             scored_at_ms BIGINT>

Why a pandas UDF: Flink hands it Arrow batches of rows, which is exactly the micro-batch the scoring
service wants. The batch is bounded by ``python.fn-execution.arrow.batch.size`` (PA_SCORING_BATCH_SIZE)
and a partial batch is flushed when the bundle ends, at the latest after ``python.fn-execution.bundle.time``
(PA_SCORING_MAX_WAIT_MS) and at every checkpoint (:func:`python_options`). One call = one
POST /predict/batch through streaming/scoring_client.py (retries, backoff, circuit breaker).

score_status per window: ``scored`` (score and model_version set), ``unscored`` (service unavailable
after the retries, breaker open, or a feature not finite), ``not_applicable`` (iot: the model is
trained for payments and gaming, so those windows are never sent). ``suspicious`` is
score >= PA_SUSPICIOUS_THRESHOLD; the database turns such a window into a suspicious_activity alert
when no rule alert of the actor covers it (sql/migrations/004_window_scoring.sql).
Only the rows of this operator cross into Python: one per actor and minute, not one per event.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from patternalarm.config import Settings
from patternalarm.features import FEATURE_NAMES
from streaming.scoring_client import BatchResult, RetryPolicy, ScoringClient, WindowFeatures

if TYPE_CHECKING:
    import pandas as pd
    from pyflink.table import TableEnvironment

log = logging.getLogger("patternalarm.window_scoring")

FUNCTION_NAME = "score_window"
SCORED, UNSCORED, NOT_APPLICABLE = "scored", "unscored", "not_applicable"
UNSCORED_DOMAINS = frozenset({"iot"})  # the model learned payments and gaming fraud only
RESULT_FIELDS = ("score", "score_status", "model_version", "suspicious", "scored_at_ms")


def python_options(settings: Settings, python_executable: str) -> dict[str, str]:
    """Flink options that make the Python operator's Arrow batches the scoring micro-batches.

    arrow.batch.size caps rows per pandas call (= per request); bundle.size must not be smaller
    (Flink requires it); bundle.time flushes a partial batch after the maximum wait. The worker runs
    the job's own interpreter (the streaming venv), not whatever `python` is on PATH."""
    size = max(1, settings.scoring_batch_size)
    return {
        "python.executable": python_executable,
        "python.client.executable": python_executable,
        "python.fn-execution.arrow.batch.size": str(size),
        "python.fn-execution.bundle.size": str(size),
        "python.fn-execution.bundle.time": str(max(1, settings.scoring_max_wait_ms)),
    }


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(attempts=settings.scoring_attempts, backoff_s=settings.scoring_backoff_ms / 1000.0,
                       timeout_s=settings.scoring_timeout_s, cooldown_s=settings.scoring_cooldown_s)


def _finite(values: list[float]) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def score_rows(client: ScoringClient, rows: list[tuple[str, str, list[float]]],
               threshold: float) -> list[tuple[float | None, str, str | None, bool, int]]:
    """The UDF's logic without pandas: (score, status, model_version, suspicious, scored_at_ms) per
    row. Sends only the rows the model applies to, all in one request."""
    sendable = [i for i, (_, domain, values) in enumerate(rows)
                if domain not in UNSCORED_DOMAINS and _finite(values)]
    windows = [WindowFeatures(rows[i][0], rows[i][1], dict(zip(FEATURE_NAMES, rows[i][2]))) for i in sendable]
    result = client.score(windows) if windows else BatchResult([], None, 0)
    now_ms = int(time.time() * 1000)
    out: list[tuple[float | None, str, str | None, bool, int]] = [
        (None, NOT_APPLICABLE if domain in UNSCORED_DOMAINS else UNSCORED, None, False, now_ms)
        for _, domain, _ in rows]
    if result.scores is not None:
        for i, score in zip(sendable, result.scores):
            out[i] = (score, SCORED, result.model_version, score >= threshold, now_ms)
    elif windows:
        log.warning("%d windows stored unscored: %s", len(windows), result.error)
    return out


def _column(values: Any, length: int) -> list[Any]:
    """A pandas Series as a list; Flink passes a constant argument as a plain scalar instead."""
    import pandas as pd

    return values.tolist() if isinstance(values, pd.Series) else [values] * length


def _make_function(settings: Settings) -> Any:
    """The ScalarFunction class is built here so this module imports without pyflink (unit tests,
    the driver's config code); the worker unpickles it with pyflink present."""
    from pyflink.table import ScalarFunction

    class ScoreWindows(ScalarFunction):  # type: ignore[misc]
        def __init__(self) -> None:
            self.settings = settings
            self.client: ScoringClient | None = None

        def open(self, function_context: Any) -> None:
            self.client = ScoringClient(self.settings.resolved_serving_url(), self.settings.api_key,
                                        retry_policy(self.settings))

        def eval(self, actor_id: "pd.Series", domain: "pd.Series", *features: "pd.Series") -> "pd.DataFrame":
            import pandas as pd

            assert self.client is not None, "open() was not called"
            length = max((len(v) for v in (actor_id, domain, *features) if isinstance(v, pd.Series)), default=1)
            actors, domains = _column(actor_id, length), _column(domain, length)
            columns = [_column(f, length) for f in features]
            rows = [(a, d, [math.nan if c[i] is None else float(c[i]) for c in columns])
                    for i, (a, d) in enumerate(zip(actors, domains))]
            result = score_rows(self.client, rows, self.settings.suspicious_threshold)
            frame = pd.DataFrame(result, columns=list(RESULT_FIELDS))
            frame["score"] = frame["score"].astype("float64")
            frame["scored_at_ms"] = frame["scored_at_ms"].astype("int64")
            return frame

        def close(self) -> None:
            if self.client is not None:
                self.client.close()

    return ScoreWindows()


def register(t_env: "TableEnvironment", settings: Settings) -> None:
    """Declare score_window in the job's table environment."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    result_type = DataTypes.ROW([
        DataTypes.FIELD("score", DataTypes.DOUBLE()),
        DataTypes.FIELD("score_status", DataTypes.STRING()),
        DataTypes.FIELD("model_version", DataTypes.STRING()),
        DataTypes.FIELD("suspicious", DataTypes.BOOLEAN()),
        DataTypes.FIELD("scored_at_ms", DataTypes.BIGINT()),
    ])
    function = udf(_make_function(settings), result_type=result_type, func_type="pandas")
    t_env.create_temporary_function(FUNCTION_NAME, function)


def call_sql(actor: str = "actor_id", domain: str = "domain") -> str:
    """``score_window(actor_id, domain, <features>)`` over the feature columns of the window query."""
    return f"{FUNCTION_NAME}({actor}, {domain}, {', '.join(FEATURE_NAMES)})"
