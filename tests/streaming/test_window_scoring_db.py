"""Migration 004 in a real PostgreSQL: window scores reach alerts whichever arrives first, severity from
rule and score, incidents follow (down too), unscored and not_applicable alerts, replays that change
nothing, and suspicious_activity exactly once (and superseded by a later rule alert).

Rows are written as the job's JDBC sinks write them: upserts of the sink's columns only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2
import psycopg2.errors
import pytest

from patternalarm.history_features import WINDOW_MINUTES
from tests.support.databases import scratch_database

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
ALERT_SINK_COLUMNS = ("alert_id", "pattern", "domain", "actor_id", "severity", "first_event_time", "event_time",
                      "emitted_at", "transaction_ids", "measures")
WINDOW_SINK_COLUMNS = ("actor_id", "domain", "window_start", "window_end", "event_count", "amount_sum", "features",
                       "score", "score_status", "model_version", "suspicious", "scored_at")


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    with scratch_database("pa_test_scoring_sql") as settings:
        yield settings.db_url()


@pytest.fixture(scope="module")
def db(db_url: str) -> Iterator[Any]:
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture()
def cur(db: Any) -> Iterator[Any]:
    with db.cursor() as cur:
        cur.execute("TRUNCATE alerts, incidents, incident_verdicts, actor_windows")
        yield cur


def upsert(cur: Any, table: str, key: str, row: dict[str, Any]) -> None:
    """What Flink's PostgreSQL dialect sends: INSERT ... ON CONFLICT (key) DO UPDATE SET every other column."""
    cols = list(row)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in key.split(", "))
    cur.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}", [row[c] for c in cols])


def alert(cur: Any, alert_id: str, actor: str, minute: float, pattern: str = "card_testing",
          severity: str = "HIGH", domain: str = "ecommerce", span_s: float = 40) -> None:
    last = T0 + timedelta(minutes=minute)
    upsert(cur, "alerts", "alert_id", {
        "alert_id": alert_id, "pattern": pattern, "domain": domain, "actor_id": actor, "severity": severity,
        "first_event_time": last - timedelta(seconds=span_s), "event_time": last, "emitted_at": last,
        "transaction_ids": json.dumps([f"{alert_id}-t"]), "measures": "{}"})


def window(cur: Any, actor: str, minute: int, score: float | None, status: str = "scored",
           suspicious: bool = False, domain: str = "ecommerce") -> None:
    start = T0 + timedelta(minutes=minute)
    upsert(cur, "actor_windows", "actor_id, window_start", {
        "actor_id": actor, "domain": domain, "window_start": start, "window_end": start + timedelta(minutes=1),
        "event_count": 5, "amount_sum": 10.0, "features": json.dumps({"txn_count": 5.0}), "score": score,
        "score_status": status, "model_version": "3" if status == "scored" else None, "suspicious": suspicious,
        "scored_at": start + timedelta(minutes=1, seconds=3)})


def alert_row(cur: Any, alert_id: str) -> dict[str, Any]:
    cur.execute("SELECT score, score_status, model_version, severity, rule_severity, incident_id "
                "FROM alerts WHERE alert_id = %s", (alert_id,))
    names = ("score", "score_status", "model_version", "severity", "rule_severity", "incident_id")
    return dict(zip(names, cur.fetchone()))


def incident(cur: Any, incident_id: str) -> dict[str, Any]:
    cur.execute("SELECT severity, score, status FROM incidents WHERE incident_id = %s", (incident_id,))
    return dict(zip(("severity", "score", "status"), cur.fetchone()))


def suspicious_alerts(cur: Any, actor: str) -> list[tuple[str, str, float]]:
    cur.execute("SELECT alert_id, severity, score FROM alerts WHERE actor_id = %s "
                "AND pattern = 'suspicious_activity'", (actor,))
    return cur.fetchall()


@pytest.mark.parametrize(("score", "severity"), [(0.95, "CRITICAL"), (0.5, "HIGH"), (0.05, "MEDIUM")])
def test_window_first_then_alert_gets_score_and_severity(cur: Any, score: float, severity: str) -> None:
    window(cur, "u-1", 0, score)
    alert(cur, "a-1", "u-1", 0.8)
    row = alert_row(cur, "a-1")
    assert (row["score"], row["score_status"], row["model_version"]) == (score, "scored", "3")
    assert (row["rule_severity"], row["severity"]) == ("HIGH", severity)
    assert incident(cur, row["incident_id"])["severity"] == severity


def test_alert_first_then_window_and_the_incident_follows_downwards(cur: Any) -> None:
    alert(cur, "a-1", "u-1", 0.8)
    pending = alert_row(cur, "a-1")
    assert (pending["score_status"], pending["severity"]) == ("pending", "HIGH")
    window(cur, "u-1", 0, 0.02)
    row = alert_row(cur, "a-1")
    assert (row["score"], row["score_status"], row["severity"]) == (0.02, "scored", "MEDIUM")
    assert incident(cur, row["incident_id"]) == {"severity": "MEDIUM", "score": 0.02, "status": "open"}


def test_an_alert_over_several_windows_takes_the_highest_score(cur: Any) -> None:
    alert(cur, "a-1", "u-1", 2.5, span_s=150)  # 00:00:00 .. 00:02:30 -> windows 0, 1, 2
    for minute, score in ((0, 0.3), (1, 0.92), (2, 0.4), (3, 0.99)):  # window 3 is after the alert
        window(cur, "u-1", minute, score)
    row = alert_row(cur, "a-1")
    assert (row["score"], row["severity"]) == (0.92, "CRITICAL")


def test_unscored_window_makes_the_alert_unscored_until_a_score_arrives(cur: Any) -> None:
    alert(cur, "a-1", "u-1", 0.8)
    window(cur, "u-1", 0, None, status="unscored")
    assert alert_row(cur, "a-1")["score_status"] == "unscored"
    window(cur, "u-1", 0, 0.95)  # rescored later (replay after the outage)
    row = alert_row(cur, "a-1")
    assert (row["score_status"], row["severity"]) == ("scored", "CRITICAL")


def test_replays_change_nothing(cur: Any) -> None:
    window(cur, "u-1", 0, 0.95)
    alert(cur, "a-1", "u-1", 0.8)
    before = alert_row(cur, "a-1")
    alert(cur, "a-1", "u-1", 0.8)  # the sink rewrites severity with the rule's HIGH
    window(cur, "u-1", 0, None, status="unscored")  # a replay during an outage
    assert alert_row(cur, "a-1") == before
    cur.execute("SELECT score, score_status FROM actor_windows WHERE actor_id = 'u-1'")
    assert cur.fetchall() == [(0.95, "scored")]
    cur.execute("SELECT count(*), max(alert_count) FROM incidents")
    assert cur.fetchone() == (1, 1)


@pytest.mark.parametrize(("pattern", "domain"), [("promo_abuse", "ecommerce"), ("spike", "iot")])
def test_alerts_not_keyed_by_an_actor_with_windows_are_not_applicable(cur: Any, pattern: str, domain: str) -> None:
    window(cur, "addr-1", 0, 0.99)
    alert(cur, "a-1", "addr-1", 0.8, pattern=pattern, domain=domain, severity="MEDIUM")
    row = alert_row(cur, "a-1")
    assert (row["score"], row["score_status"], row["severity"]) == (None, "not_applicable", "MEDIUM")


def test_a_high_score_without_a_rule_alert_is_suspicious_activity_once(cur: Any) -> None:
    window(cur, "u-2", 0, 0.93, suspicious=True)
    window(cur, "u-2", 0, 0.93, suspicious=True)  # replayed window
    window(cur, "u-3", 0, 0.6, suspicious=False)  # below the threshold
    found = suspicious_alerts(cur, "u-2")
    assert found == [(f"suspicious_activity-u-2-{T0:%Y%m%dT%H%M%S}", "HIGH", 0.93)]  # MEDIUM raised by 0.93
    assert suspicious_alerts(cur, "u-3") == []
    cur.execute("SELECT count(*) FROM incidents WHERE pattern = 'suspicious_activity'")
    assert cur.fetchone() == (1,)


def test_a_rule_alert_already_there_explains_the_high_score(cur: Any) -> None:
    alert(cur, "a-1", "u-1", 0.8)
    window(cur, "u-1", 0, 0.93, suspicious=True)
    assert suspicious_alerts(cur, "u-1") == []


def test_a_rule_alert_arriving_later_resolves_the_open_suspicious_incident(cur: Any) -> None:
    window(cur, "u-1", 0, 0.93, suspicious=True)
    [(suspicious_id, _, _)] = suspicious_alerts(cur, "u-1")
    alert(cur, "a-1", "u-1", 4.0, span_s=230)  # the pattern completes minutes later
    suspicious_incident = alert_row(cur, suspicious_id)["incident_id"]
    assert incident(cur, suspicious_incident)["status"] == "resolved"
    assert incident(cur, alert_row(cur, "a-1")["incident_id"])["status"] == "open"
    assert alert_row(cur, "a-1")["score"] == 0.93  # the window overlaps the rule alert's span


def _waited(cur: Any, alert_id: str, minutes: float) -> None:
    """As if the alert had been stored that long ago (the settle rule's wall-clock wait)."""
    cur.execute("UPDATE alerts SET stored_at = clock_timestamp() - %s * interval '1 minute' "
                "WHERE alert_id = %s", (minutes, alert_id))


def test_a_pending_alert_settles_as_not_applicable_once_later_windows_are_stored(cur: Any) -> None:
    """A key that never has windows of its own (an account that only receives) stops waiting."""
    alert(cur, "ml", "acct-receiver", 0, pattern="money_laundering", domain="fintech")
    window(cur, "acct-other", 6, 0.5, domain="fintech")  # 7 min later in event time, but just stored
    assert alert_row(cur, "ml")["score_status"] == "pending"  # a watermark jump: its window may be next
    _waited(cur, "ml", 3)
    window(cur, "acct-other", 3, 0.5, domain="fintech")  # waited, but within the event-time margin
    assert alert_row(cur, "ml")["score_status"] == "pending"
    window(cur, "acct-other", 7, 0.5, domain="fintech")  # waited and past the 5-minute margin
    settled = alert_row(cur, "ml")
    assert (settled["score_status"], settled["severity"], settled["score"]) == ("not_applicable", "HIGH", None)
    window(cur, "acct-receiver", 0, 0.95, domain="fintech")  # an old window replayed later changes nothing
    assert alert_row(cur, "ml")["score_status"] == "not_applicable"


def test_a_pending_alert_whose_window_comes_in_time_is_scored(cur: Any) -> None:
    alert(cur, "ct", "user-7", 0)
    window(cur, "user-9", 4, 0.2)
    window(cur, "user-7", 0, 0.95)
    assert alert_row(cur, "ct")["score_status"] == "scored"
    window(cur, "user-9", 20, 0.2)  # settling later leaves scored alerts alone
    assert alert_row(cur, "ct")["score_status"] == "scored"


def test_windows_stored_in_one_statement_follow_the_same_rules(cur: Any) -> None:
    """The window scorer's write (migration 016 attaches per statement): many windows in one
    INSERT ... ON CONFLICT, several covering one alert, an unscored and a scored one covering another,
    high scores with and without a rule alert, and a rewrite in the same statement."""
    from psycopg2.extras import execute_values

    alert(cur, "a-1", "u-1", 2.5, span_s=150)  # windows 0, 1, 2 of u-1
    alert(cur, "a-2", "u-2", 1.5, span_s=80)  # windows 0, 1 of u-2
    alert(cur, "a-3", "u-3", 0.8)
    alert(cur, "a-5", "u-5", 0.5)
    window(cur, "u-6", 0, 0.2)  # stored before: rewritten by the batch

    def row(actor: str, minute: int, score: float | None, status: str = "scored",
            suspicious: bool = False) -> tuple[Any, ...]:
        start = T0 + timedelta(minutes=minute)
        return (actor, "ecommerce", start, start + timedelta(minutes=1), 5, 10.0, json.dumps({"txn_count": 5.0}),
                score, status, "3" if status == "scored" else None, suspicious, start + timedelta(minutes=1, seconds=9))

    execute_values(cur, f"INSERT INTO actor_windows ({', '.join(WINDOW_SINK_COLUMNS)}) VALUES %s "
                        "ON CONFLICT (actor_id, window_start) DO UPDATE SET "
                        + ", ".join(f"{c} = EXCLUDED.{c}" for c in WINDOW_SINK_COLUMNS[2:]),
                   [row("u-1", 0, 0.3), row("u-1", 1, 0.92), row("u-1", 2, 0.4), row("u-1", 3, 0.99),
                    row("u-2", 0, None, "unscored"), row("u-2", 1, 0.5),
                    row("u-3", 0, None, "unscored"),
                    row("u-4", 0, 0.97, suspicious=True), row("u-5", 0, 0.96, suspicious=True),
                    row("u-6", 0, 0.95, suspicious=True)])
    assert (alert_row(cur, "a-1")["score"], alert_row(cur, "a-1")["severity"]) == (0.92, "CRITICAL")
    assert (alert_row(cur, "a-2")["score"], alert_row(cur, "a-2")["score_status"]) == (0.5, "scored")
    assert (alert_row(cur, "a-3")["score"], alert_row(cur, "a-3")["score_status"]) == (None, "unscored")
    assert alert_row(cur, "a-5")["score"] == 0.96  # a rule alert explains u-5's high score
    assert suspicious_alerts(cur, "u-5") == []
    assert suspicious_alerts(cur, "u-4") == [(f"suspicious_activity-u-4-{T0:%Y%m%dT%H%M%S}", "HIGH", 0.97)]
    assert suspicious_alerts(cur, "u-6") == [(f"suspicious_activity-u-6-{T0:%Y%m%dT%H%M%S}", "HIGH", 0.95)]  # MEDIUM raised
    cur.execute("UPDATE actor_windows SET fraud_known_at = window_end WHERE actor_id = 'u-1'")  # a label
    assert alert_row(cur, "a-1")["score"] == 0.92  # an update that leaves the scores alone changes nothing


def _actor_windows_tuples_read(cur: Any) -> int:
    """Tuples read from actor_windows so far, by any index or sequential scan, as flushed by the
    sessions (this one's first; the snapshot is cleared, so this is the current count)."""
    cur.execute("SELECT pg_stat_force_next_flush()")  # flushed before the statement answers
    cur.execute("SELECT pg_stat_clear_snapshot()")
    cur.execute("SELECT coalesce(sum(idx_tup_read), 0) + (SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables "
                "WHERE relname = 'actor_windows') FROM pg_stat_user_indexes WHERE relname = 'actor_windows'")
    return int(cur.fetchone()[0])


def test_an_alert_of_an_actor_with_a_long_history_reads_only_the_windows_near_it(cur: Any, db_url: str) -> None:
    """Migration 017: the lookup is bounded below by the window length, so an actor's week of
    windows is not read for each of its alerts; and the result is the same as unbounded."""
    cur.execute("""
        INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, features, score,
                                   score_status, model_version, scored_at)
        SELECT 'u-old', 'ecommerce', t, t + interval '1 minute', 1, '{}'::jsonb, 0.99, 'scored', '3', t
          FROM generate_series(%(t0)s - interval '3000 minutes', %(t0)s - interval '2 minutes', interval '1 minute') t
        UNION ALL  -- a busy minute after the alert's start, for a scan by window_end to be no shortcut
        SELECT 'busy-' || i, 'ecommerce', %(t0)s + interval '1 minute', %(t0)s + interval '2 minutes', 1, '{}'::jsonb, 0.5,
               'scored', '3', %(t0)s
          FROM generate_series(1, 3000) i""", {"t0": T0})
    window(cur, "u-old", -1, 0.05)  # ends at T0: just outside the span below
    window(cur, "u-old", 0, 0.2)
    cur.execute("ANALYZE actor_windows")
    before = _actor_windows_tuples_read(cur)
    writer = psycopg2.connect(db_url)  # the job's sink, in its own session
    try:
        writer.autocommit = True
        with writer.cursor() as other:
            alert(other, "a-old", "u-old", 0.8, span_s=48)  # T0 .. T0 + 48 s: window 0 only
            other.execute("SELECT pg_stat_force_next_flush()")  # its statistics, before it answers
    finally:
        writer.close()
    assert _actor_windows_tuples_read(cur) - before < 100  # unbounded: the 3,000 earlier windows
    assert (alert_row(cur, "a-old")["score"], alert_row(cur, "a-old")["score_status"]) == (0.2, "scored")


def test_a_window_longer_than_the_jobs_is_refused(cur: Any) -> None:
    """The bound of migration 017 holds because the database refuses what would break it: a window
    of the job's length is stored, a second longer is not (so a change of WINDOW_MINUTES that
    forgets the constraint fails here, not as wrong scores)."""
    start = T0 + timedelta(minutes=5)
    row = {"actor_id": "u-1", "domain": "ecommerce", "window_start": start,
           "window_end": start + timedelta(minutes=WINDOW_MINUTES), "event_count": 1, "features": "{}"}
    upsert(cur, "actor_windows", "actor_id, window_start", row)
    with pytest.raises(psycopg2.errors.CheckViolation, match="actor_windows_at_most_one_minute"):
        upsert(cur, "actor_windows", "actor_id, window_start",
               {**row, "window_end": row["window_end"] + timedelta(seconds=1)})
