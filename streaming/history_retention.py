"""Retention of the history store: scored windows older than PA_HISTORY_RETENTION_DAYS go.

    python -m streaming.history_retention [--days 38] [--batch 5000] [--max-batches N]
    make prune-history                                    # the same, with the configured retention

Every window the scorer stores stays in ``actor_windows`` with its features document (~1.5 KB):
at NORMAL (~6,000 windows a minute) that is ~13 GB a day, at CRISIS and above far more, so a stack
left running fills its disk unless the store forgets. What may go: windows no longer inside any
history range a live window reads (the longest horizon plus the label delay,
patternalarm/history_features.py) and no longer inside the retrain's extraction (its
``lookback_days``, 30 by default: spark_jobs/retrain.py). The default (38 days) covers both; a
retention shorter than the history ranges is refused, since it would silently change the features
of the windows being scored.

Windows are deleted oldest first, in batches of one transaction each, through the table's own
delete triggers (migration 020), so the rollups and the counterparty fraud rows stay equal to a
recount of what is left, and a batch holds its locks briefly (the live scorer writes the current
hour's rollup rows, the retention only old hours'). Rollup rows left at zero by the deletes, in hours
wholly before the cutoff, are removed at the end. Alerts, incidents and verdicts are the analysts'
record and are not touched. ``max_batches`` bounds one run; the next run goes on where it stopped.
Run daily by the ``history_store_retention`` DAG.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.history_features import COVERAGE_CAP_MIN

DELETE_BATCH = """
DELETE FROM actor_windows w
 USING (SELECT actor_id, window_start FROM actor_windows
         WHERE window_start < %(cutoff)s ORDER BY window_start LIMIT %(limit)s) old
 WHERE w.actor_id = old.actor_id AND w.window_start = old.window_start"""

# Rollup rows the deletes left at zero, in the hours (minutes) wholly before the cutoff: a missing
# row reads as zero, so they only take space. windows (an exact count) decides, not the float sums.
PRUNE_ROLLUPS = (
    ("actor_hours", "DELETE FROM actor_hours WHERE hour < date_trunc('hour', %(cutoff)s, 'UTC') AND windows = 0"),
    ("actor_counterparty_hours", "DELETE FROM actor_counterparty_hours"
                                 " WHERE hour < date_trunc('hour', %(cutoff)s, 'UTC') AND windows = 0"),
    ("counterparty_hours", "DELETE FROM counterparty_hours"
                           " WHERE hour < date_trunc('hour', %(cutoff)s, 'UTC') AND windows = 0"),
    ("counterparty_minutes", "DELETE FROM counterparty_minutes WHERE window_start < %(cutoff)s AND windows = 0"),
)


class RetentionTooShort(ValueError):
    """A retention that would remove windows the live history features still read."""


@dataclass(frozen=True)
class RetentionResult:
    cutoff: str                       # windows starting before this were removed (ISO 8601, UTC)
    windows_deleted: int
    batches: int
    done: bool                        # False: max_batches stopped the run with older windows left
    rollup_rows_pruned: dict[str, int]
    seconds: float


def minimum_days(label_delay_min: int) -> float:
    """The shortest retention that keeps every window a live history range reads."""
    return (COVERAGE_CAP_MIN + label_delay_min + 1) / (24 * 60)


def cutoff_for(now: datetime, days: float, label_delay_min: int) -> datetime:
    shortest = minimum_days(label_delay_min)
    if days < shortest:
        raise RetentionTooShort(
            f"a retention of {days:g} days would delete windows the history features of live windows still "
            f"read (the 7-day horizon plus PA_LABEL_DELAY_MIN={label_delay_min}); set "
            f"PA_HISTORY_RETENTION_DAYS (or --days) to at least {shortest:.2f}")
    return now - timedelta(days=days)


def prune_history(settings: Settings, days: float | None = None, now: datetime | None = None,
                  batch: int = 5000, max_batches: int | None = None) -> RetentionResult:
    """Delete the windows starting before ``now - days`` (PA_HISTORY_RETENTION_DAYS by default)."""
    import psycopg2

    if batch < 1:
        raise ValueError(f"batch={batch}: use 1 or more windows a transaction")
    started = time.monotonic()
    cutoff = cutoff_for(now or datetime.now(timezone.utc),
                        settings.history_retention_days if days is None else days, settings.label_delay_min)
    deleted, batches, done = 0, 0, False
    conn = psycopg2.connect(settings.db_url(), application_name="patternalarm-history-retention")
    try:
        while max_batches is None or batches < max_batches:
            with conn, conn.cursor() as cur:  # one transaction a batch
                cur.execute(DELETE_BATCH, {"cutoff": cutoff, "limit": batch})
                count = cur.rowcount
            batches += 1
            deleted += count
            if count < batch:
                done = True
                break
        pruned = _prune_rollups(conn, cutoff) if done else {}
    finally:
        conn.close()
    return RetentionResult(cutoff.isoformat(), deleted, batches, done, pruned, round(time.monotonic() - started, 3))


def _prune_rollups(conn: Any, cutoff: datetime) -> dict[str, int]:
    pruned = {}
    for table, statement in PRUNE_ROLLUPS:
        with conn, conn.cursor() as cur:
            cur.execute(statement, {"cutoff": cutoff})
            pruned[table] = cur.rowcount
    return pruned


def main(argv: list[str] | None = None) -> int:
    settings = config.load()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=settings.history_retention_days,
                        help="keep windows that started within this many days (PA_HISTORY_RETENTION_DAYS)")
    parser.add_argument("--batch", type=int, default=5000, help="windows deleted per transaction")
    parser.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    args = parser.parse_args(argv)
    try:
        result = prune_history(settings, days=args.days, batch=args.batch, max_batches=args.max_batches)
    except RetentionTooShort as exc:
        parser.error(str(exc))
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
