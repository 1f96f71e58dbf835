"""Retention of the history store (streaming/history_retention.py) against a real PostgreSQL: old
windows go, oldest first and in bounded batches, the rollups stay equal to a recount of what is
left, zero rows of the removed hours go too, and the history features of live windows do not
change. A retention shorter than the history ranges is refused before anything is deleted.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Iterator

import psycopg2
import pytest

from patternalarm import config
from patternalarm.history_features import HistoryKey, reference
from streaming.history_lookup import history_features
from streaming.history_retention import RetentionTooShort, minimum_days, prune_history
from tests.streaming.test_history_lookup import assert_rollups_recount, assert_same, random_windows, store
from tests.support import history_cases as cases
from tests.support.databases import scratch_database

NOW = cases.T0 + timedelta(days=2)  # random_windows span T0 - 8 days .. T0
DAYS = 7.1                          # the cutoff falls 5.1 days before T0, inside an hour


@pytest.fixture()
def db() -> Iterator[tuple[Any, Any]]:
    with scratch_database("pa_retention") as settings:
        conn = psycopg2.connect(settings.db_url(settings.pg_database))
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                yield settings, cursor
        finally:
            conn.close()


def window_starts(cur: Any) -> list[datetime]:
    cur.execute("SELECT window_start FROM actor_windows ORDER BY 1")
    return [r[0] for r in cur.fetchall()]


def test_old_windows_go_and_the_rest_reads_as_before(db: tuple[Any, Any]) -> None:
    settings, cur = db
    windows = random_windows(random.Random(21), 600)
    store(cur, windows)
    cutoff = NOW - timedelta(days=DAYS)
    kept = [w for w in windows if w.window_start >= cutoff]
    assert 0 < len(kept) < len(windows)

    result = prune_history(settings, days=DAYS, now=NOW, batch=50)

    assert result.done and result.windows_deleted == len(windows) - len(kept)
    assert window_starts(cur) == sorted(w.window_start for w in kept)
    assert_rollups_recount(cur)
    for table, column in (("actor_hours", "hour"), ("actor_counterparty_hours", "hour"),
                          ("counterparty_hours", "hour"), ("counterparty_minutes", "window_start")):
        cur.execute(f"SELECT count(*) FROM {table} WHERE {column} < date_trunc('hour', %s, 'UTC')", (cutoff,))
        assert cur.fetchone()[0] == 0, f"{table} keeps rows of the removed hours"
    assert sum(result.rollup_rows_pruned.values()) > 0

    # a live window's history: the same from what is left as from everything
    delay = settings.label_delay_min
    keys = [HistoryKey(f"r{i}", NOW - timedelta(minutes=17 * i), (f"c{i % 4}", f"c{(i + 1) % 4}")) for i in range(6)]
    for key, row in zip(keys, history_features(cur, keys, label_delay_min=delay), strict=True):
        assert reference(kept, key, delay) == reference(windows, key, delay)
        assert_same(row, reference(windows, key, delay), key)


def test_a_bounded_run_stops_and_the_next_goes_on(db: tuple[Any, Any]) -> None:
    settings, cur = db
    windows = random_windows(random.Random(22), 300)
    store(cur, windows)
    cutoff = NOW - timedelta(days=DAYS)
    old = sorted(w.window_start for w in windows if w.window_start < cutoff)
    assert len(old) > 21

    first = prune_history(settings, days=DAYS, now=NOW, batch=7, max_batches=3)
    assert (first.windows_deleted, first.batches, first.done, first.rollup_rows_pruned) == (21, 3, False, {})
    assert window_starts(cur)[0] == old[21]  # oldest first
    assert_rollups_recount(cur)  # consistent between runs too

    second = prune_history(settings, days=DAYS, now=NOW, batch=7)
    assert second.done and second.windows_deleted == len(old) - 21
    assert window_starts(cur)[0] >= cutoff
    assert_rollups_recount(cur)


def test_a_retention_shorter_than_the_history_ranges_is_refused(db: tuple[Any, Any]) -> None:
    settings, cur = db
    store(cur, random_windows(random.Random(23), 50))
    shortest = minimum_days(settings.label_delay_min)
    assert shortest > 7  # the 7-day horizon plus the label delay
    with pytest.raises(RetentionTooShort, match="PA_HISTORY_RETENTION_DAYS"):
        prune_history(settings, days=7.0, now=NOW)
    assert len(window_starts(cur)) == 50


def test_the_default_retention_keeps_the_history_ranges() -> None:
    assert config.load().history_retention_days >= minimum_days(config.load().label_delay_min)
