"""History features from PostgreSQL (streaming/history_lookup.py, the window scorer's query) equal
``patternalarm.history_features.reference`` on the same windows (tests/support/history_cases.py; the
Spark side is tests/model/test_history_features.py), and look at nothing after the window's start:
later windows and labels, and labels known less than the delay before it, change nothing.
"""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any, Iterator, Sequence

import psycopg2
import pytest

from patternalarm.history_features import (COVERAGE, COVERAGE_CAP_MIN, EMPTY, HISTORY_FEATURE_NAMES, HistoryKey,
                                           PastWindow, reference)
from streaming.history_lookup import history_features
from tests.support import history_cases as cases
from tests.support.databases import scratch_database


@pytest.fixture()
def cur() -> Iterator[Any]:
    with scratch_database("pa_history") as settings:
        conn = psycopg2.connect(settings.db_url(settings.pg_database))
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                yield cursor
        finally:
            conn.close()


def store(cur: Any, windows: Sequence[PastWindow]) -> None:
    """actor_windows rows as the scorer writes them, ground truth for fraud windows known at their end."""
    for w in windows:
        cur.execute("INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, amount_sum, "
                    "counterparties) VALUES (%s, 'fintech', %s, %s, %s, %s, %s)",
                    (w.actor_id, w.window_start, w.window_start + timedelta(minutes=1), int(w.txn_count),
                     w.amount_sum, list(w.counterparties)))
        if w.fraud_known_at is not None:
            cur.execute("INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, transaction_ids, "
                        "first_event_time, last_event_time) VALUES (%s, 't', 'p', 'fintech', %s, '[]', %s, %s)",
                        (f"gt-{w.actor_id}-{w.window_start.isoformat()}", w.actor_id,
                         w.window_start + timedelta(seconds=5), w.window_start + timedelta(seconds=50)))


def assert_same(got: dict[str, float], want: dict[str, float], key: HistoryKey) -> None:
    assert list(got) == list(HISTORY_FEATURE_NAMES)
    for name in HISTORY_FEATURE_NAMES:
        assert math.isclose(got[name], want[name], rel_tol=1e-9, abs_tol=1e-9), (key, name, got[name], want[name])


def test_postgres_equals_the_reference(cur: Any) -> None:
    store(cur, cases.windows())
    keys = cases.keys()
    got = history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN)
    assert len(got) == len(keys)
    for key, row in zip(keys, got, strict=True):
        assert_same(row, reference(cases.windows(), key, cases.LABEL_DELAY_MIN), key)
    informative = [r for r in got if r["actor_fraud_rate_1d"] not in (-1.0, 0.0) and r["cp_fraud_rate_1h"] > 0]
    assert informative, "the cases should exercise non-trivial fraud rates"


def test_with_no_delay_the_label_ranges_follow_the_windows(cur: Any) -> None:
    store(cur, cases.windows())
    keys = cases.keys()
    for key, row in zip(keys, history_features(cur, keys, label_delay_min=0), strict=True):
        assert_same(row, reference(cases.windows(), key, 0), key)


def test_later_windows_and_labels_change_nothing(cur: Any) -> None:
    store(cur, cases.windows())
    keys = cases.keys()
    before = history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN)
    store(cur, cases.later_windows())
    assert history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN) == before


def test_a_verdict_counts_only_once_known_the_delay_before_the_window(cur: Any) -> None:
    store(cur, cases.windows())
    key = HistoryKey("a1", cases.T0, ("m1", "m2"))
    legit = cases.T0 - timedelta(minutes=119)  # a1's legit window, inside the 1 h fraud-rate range
    before = history_features(cur, [key], label_delay_min=cases.LABEL_DELAY_MIN)[0]
    cur.execute("INSERT INTO incidents (incident_id, pattern, domain, actor_id, severity, first_event_time, "
                "last_event_time, verdict, verdict_at) VALUES ('inc-late', 'p', 'fintech', 'a1', 'HIGH', %s, %s, "
                "'fraud', %s)", (legit + timedelta(seconds=1), legit + timedelta(seconds=2),
                                 cases.T0 - timedelta(minutes=30)))
    assert history_features(cur, [key], label_delay_min=cases.LABEL_DELAY_MIN)[0] == before  # known too late
    cur.execute("UPDATE incidents SET verdict_at = %s WHERE incident_id = 'inc-late'",
                (cases.T0 - timedelta(minutes=61),))
    after = history_features(cur, [key], label_delay_min=cases.LABEL_DELAY_MIN)[0]
    relabelled = [w if w.window_start != legit or w.actor_id != "a1" else
                  PastWindow(w.actor_id, w.window_start, w.txn_count, w.amount_sum, w.counterparties,
                             cases.T0 - timedelta(minutes=61)) for w in cases.windows()]
    assert_same(after, reference(relabelled, key, cases.LABEL_DELAY_MIN), key)
    assert after["actor_fraud_rate_1h"] > before["actor_fraud_rate_1h"]


def test_an_unknown_actor_has_the_empty_history_and_order_is_kept(cur: Any) -> None:
    store(cur, cases.windows())
    keys = [HistoryKey("nobody", cases.T0, ()), HistoryKey("a1", cases.T0, ("m1",)), HistoryKey("nobody", cases.T0, ())]
    got = history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN)
    assert got[0] == got[2] == {**EMPTY, COVERAGE: float(COVERAGE_CAP_MIN)}  # new actor, old store
    assert_same(got[1], reference(cases.windows(), keys[1], cases.LABEL_DELAY_MIN), keys[1])
    assert history_features(cur, [], label_delay_min=0) == []


# The counterparty rows the fraud windows should have (migration 018): one per distinct counterparty
# of every window whose fraud_known_at is set, carrying it.
WANTED_FRAUD_ROWS = ("SELECT DISTINCT p, w.window_start, w.actor_id, w.fraud_known_at "
                     "FROM actor_windows w, unnest(w.counterparties) p "
                     "WHERE p IS NOT NULL AND w.fraud_known_at IS NOT NULL")


def stale_labels(cur: Any) -> int:
    """Windows whose stored fraud_known_at (migration 010) is not what the labels say now
    (pa_fraud_known_at), plus counterparty_fraud_windows rows missing, left over or differing from
    their window's (018)."""
    cur.execute("SELECT (SELECT count(*) FROM actor_windows "
                "         WHERE fraud_known_at IS DISTINCT FROM pa_fraud_known_at(actor_id, window_start)) "
                f"     + (SELECT count(*) FROM ({WANTED_FRAUD_ROWS}) want FULL JOIN counterparty_fraud_windows c "
                "         ON (c.counterparty, c.window_start, c.actor_id, c.fraud_known_at) "
                "          = (want.p, want.window_start, want.actor_id, want.fraud_known_at) "
                "         WHERE c.counterparty IS NULL OR want.p IS NULL)")
    return int(cur.fetchone()[0])


def test_labels_stored_before_their_windows_reach_them(cur: Any) -> None:
    truth_first = [w for w in cases.windows() if w.fraud_known_at is not None]
    for w in truth_first:  # ground truth first, the windows after (a window closes after its events)
        cur.execute("INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, transaction_ids, "
                    "first_event_time, last_event_time) VALUES (%s, 't', 'p', 'fintech', %s, '[]', %s, %s)",
                    (f"early-{w.actor_id}-{w.window_start.isoformat()}", w.actor_id,
                     w.window_start + timedelta(seconds=5), w.window_start + timedelta(seconds=50)))
    store(cur, [PastWindow(w.actor_id, w.window_start, w.txn_count, w.amount_sum, w.counterparties)
                for w in cases.windows()])
    cur.execute("SELECT count(*) FROM actor_windows WHERE fraud_known_at IS NOT NULL")
    assert cur.fetchone()[0] == len(truth_first)
    assert stale_labels(cur) == 0
    keys = cases.keys()
    for key, row in zip(keys, history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN), strict=True):
        assert_same(row, reference(cases.windows(), key, cases.LABEL_DELAY_MIN), key)


def test_withdrawn_labels_and_moved_verdicts_are_undone(cur: Any) -> None:
    store(cur, cases.windows())
    keys = cases.keys()
    before = history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN)
    legit = cases.T0 - timedelta(minutes=119)  # a1's legit window, inside the 1 h fraud-rate range
    cur.execute("INSERT INTO incidents (incident_id, pattern, domain, actor_id, severity, first_event_time, "
                "last_event_time, verdict, verdict_at) VALUES ('inc', 'p', 'fintech', 'a1', 'HIGH', %s, %s, "
                "'fraud', %s)", (legit + timedelta(seconds=1), legit + timedelta(seconds=2),
                                 cases.T0 - timedelta(minutes=90)))
    assert stale_labels(cur) == 0
    assert history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN) != before
    cur.execute("UPDATE incidents SET verdict_at = %s WHERE incident_id = 'inc'", (cases.T0 - timedelta(minutes=10),))
    assert stale_labels(cur) == 0  # a verdict recorded later than first stored: the label moves later
    cur.execute("UPDATE incidents SET verdict = 'legit' WHERE incident_id = 'inc'")
    assert stale_labels(cur) == 0
    assert history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN) == before
    cur.execute("DELETE FROM ground_truth WHERE actor_id = 'a2'")
    assert stale_labels(cur) == 0
    unlabelled = [w if w.actor_id != "a2" else PastWindow(w.actor_id, w.window_start, w.txn_count, w.amount_sum,
                                                           w.counterparties) for w in cases.windows()]
    for key, row in zip(keys, history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN), strict=True):
        assert_same(row, reference(unlabelled, key, cases.LABEL_DELAY_MIN), key)


def random_windows(rng: random.Random, count: int) -> list[PastWindow]:
    """Windows at random minutes over 8 days: ranges start and end anywhere inside an hour, so the
    query's whole hours (counterparty_hours) and partial-hour edges are both exercised."""
    seen: dict[tuple[str, object], PastWindow] = {}
    for _ in range(count):
        actor = f"r{rng.randrange(6)}"
        start = cases.T0 - timedelta(minutes=rng.randrange(8 * 1440))
        parties = tuple(sorted({f"c{rng.randrange(4)}" for _ in range(rng.randint(0, 2))}))
        fraud = start + timedelta(minutes=1) if rng.random() < 0.2 else None
        seen[(actor, start)] = PastWindow(actor, start, float(rng.randint(1, 5)), round(rng.uniform(-5, 300), 2),
                                          parties, fraud)
    return list(seen.values())


def test_postgres_equals_the_reference_on_random_windows(cur: Any) -> None:
    rng = random.Random(5)
    windows = random_windows(rng, 600)
    store(cur, windows)
    keys = [HistoryKey(w.actor_id, w.window_start, w.counterparties) for w in rng.sample(windows, 60)]
    keys += [HistoryKey(f"r{rng.randrange(7)}", cases.T0 - timedelta(minutes=rng.randrange(8 * 1440)),
                        (f"c{rng.randrange(4)}", f"c{rng.randrange(5)}")) for _ in range(40)]
    for delay in (cases.LABEL_DELAY_MIN, 0, 97):
        for key, row in zip(keys, history_features(cur, keys, label_delay_min=delay), strict=True):
            assert_same(row, reference(windows, key, delay), key)


def test_a_popular_counterparty_rolled_up_per_minute_equals_the_reference(cur: Any) -> None:
    """Many actors sharing a counterparty in the same minutes (a game of a live stream): the edge
    hours read counterparty_minutes rows that add up several actors, the key's own included (taken
    out again), at ranges ending and starting inside those hours."""
    rng = random.Random(11)
    windows = []
    for a in range(25):
        for minute in rng.sample(range(8 * 1440), 40) + list(range(0, 180, 7)):
            fraud = cases.T0 - timedelta(minutes=minute - 1) if rng.random() < 0.1 else None
            windows.append(PastWindow(f"p{a}", cases.T0 - timedelta(minutes=minute), float(rng.randint(1, 4)),
                                      round(rng.uniform(1, 90), 2), ("game-0",) if a % 5 else ("game-0", "c1"),
                                      fraud))
    windows = list({(w.actor_id, w.window_start): w for w in windows}.values())
    store(cur, windows)
    cur.execute("SELECT max(windows) FROM counterparty_minutes WHERE counterparty = 'game-0'")
    assert cur.fetchone()[0] > 5  # rows of the rollup do add up several actors
    keys = [HistoryKey(f"p{rng.randrange(26)}", cases.T0 - timedelta(minutes=m), ("game-0",))
            for m in (0, 1, 13, 59, 61, 95, 1441, 1500)]
    for delay in (cases.LABEL_DELAY_MIN, 0):
        for key, row in zip(keys, history_features(cur, keys, label_delay_min=delay), strict=True):
            assert_same(row, reference(windows, key, delay), key)


def test_counterparty_rollups_follow_rewritten_and_deleted_windows(cur: Any) -> None:
    rng = random.Random(9)
    windows = random_windows(rng, 300)
    store(cur, windows)
    rewritten = {(w.actor_id, w.window_start): PastWindow(w.actor_id, w.window_start, w.txn_count + 1, w.amount_sum * 2,
                                                          tuple(sorted({*w.counterparties[1:], "c9"})), w.fraud_known_at)
                 for w in rng.sample(windows, 80)}
    for w in rewritten.values():  # the scorer's upsert path (a replayed window): counterparties change
        cur.execute("INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, amount_sum, "
                    "counterparties) VALUES (%s, 'fintech', %s, %s, %s, %s, %s) ON CONFLICT (actor_id, window_start) "
                    "DO UPDATE SET event_count = EXCLUDED.event_count, amount_sum = EXCLUDED.amount_sum, "
                    "counterparties = EXCLUDED.counterparties",
                    (w.actor_id, w.window_start, w.window_start + timedelta(minutes=1), int(w.txn_count),
                     w.amount_sum, list(w.counterparties)))
    deleted = rng.sample([w for w in windows if (w.actor_id, w.window_start) not in rewritten], 40)
    for w in deleted:
        cur.execute("DELETE FROM actor_windows WHERE actor_id = %s AND window_start = %s", (w.actor_id, w.window_start))
    gone = {(w.actor_id, w.window_start) for w in deleted}
    now = [rewritten.get((w.actor_id, w.window_start), w) for w in windows if (w.actor_id, w.window_start) not in gone]
    assert_rollups_recount(cur)
    keys = [HistoryKey(w.actor_id, w.window_start, w.counterparties) for w in rng.sample(now, 50)]
    for key, row in zip(keys, history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN), strict=True):
        assert_same(row, reference(now, key, cases.LABEL_DELAY_MIN), key)


# Every rollup the history query reads, as (table, its key columns, a recount of actor_windows keyed the
# same way): counterparties per hour (011) and per minute (014), the actor per hour and per
# counterparty and hour (019). A window counts once per distinct counterparty.
_PARTIES = ("(SELECT DISTINCT p AS counterparty, w.actor_id, w.window_start, w.event_count, w.amount_sum "
            "FROM actor_windows w, unnest(w.counterparties) p WHERE p IS NOT NULL) w")
_HOUR = "date_trunc('hour', w.window_start, 'UTC')"
_SUMS = "count(*), sum(w.event_count)::float8, sum(w.amount_sum), count(w.amount_sum)"
ROLLUPS = (
    ("counterparty_hours", "counterparty, hour",
     f"SELECT counterparty, {_HOUR}, {_SUMS} FROM {_PARTIES} GROUP BY 1, 2"),
    ("counterparty_minutes", "counterparty, window_start",
     f"SELECT counterparty, window_start, {_SUMS} FROM {_PARTIES} GROUP BY 1, 2"),
    ("actor_hours", "actor_id, hour", f"SELECT actor_id, {_HOUR}, {_SUMS} FROM actor_windows w GROUP BY 1, 2"),
    ("actor_counterparty_hours", "actor_id, counterparty, hour",
     f"SELECT actor_id, counterparty, {_HOUR}, {_SUMS} FROM {_PARTIES} GROUP BY 1, 2, 3"),
)


def assert_rollups_recount(cur: Any, rollups: tuple[tuple[str, str, str], ...] = ROLLUPS) -> None:
    """counterparty_fraud_windows holds exactly the fraud windows' counterparty rows, and every
    rollup equals a recount of the stored windows (rows left at zero by deletes count as absent)."""
    assert stale_labels(cur) == 0, "labels or counterparty_fraud_windows differ from the windows"
    for rollup, key, recount in rollups:
        width = key.count(",") + 1
        cur.execute(f"SELECT {key}, windows, txns, amount, amounts FROM {rollup}")
        rolled = {tuple(r[:width]): r[width:] for r in cur.fetchall()}
        cur.execute(recount)
        recounted = {tuple(r[:width]): r[width:] for r in cur.fetchall()}
        assert {k for k, v in rolled.items() if v[0] > 0} == set(recounted), rollup
        for k, (n, t, a, m) in rolled.items():
            want = recounted.get(k, (0, 0.0, 0.0, 0))
            assert (n, t, m) == (want[0], want[1], want[3]) \
                and math.isclose(a or 0.0, want[2] or 0.0, rel_tol=1e-9, abs_tol=1e-9), (rollup, k, (n, t, a, m), want)


def test_rollups_follow_batched_statements(cur: Any) -> None:
    """The scorer's shape of write (migration 015 keeps the rows per statement): many windows per
    INSERT ... ON CONFLICT, inserts and rewrites mixed in one statement, one counterparty many times
    in a statement, a rescore that changes nothing history reads, a label arriving (fraud_known_at
    only), and a multi-row DELETE."""
    from psycopg2.extras import execute_values

    rng = random.Random(13)
    upsert = ("INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, amount_sum, "
              "counterparties, score, score_status) VALUES %s ON CONFLICT (actor_id, window_start) DO UPDATE SET "
              "event_count = EXCLUDED.event_count, amount_sum = EXCLUDED.amount_sum, "
              "counterparties = EXCLUDED.counterparties, score = EXCLUDED.score, score_status = EXCLUDED.score_status")

    def batch(windows: Sequence[PastWindow], score: float = 0.5) -> None:
        values = [(w.actor_id, "fintech", w.window_start, w.window_start + timedelta(minutes=1), int(w.txn_count),
                   w.amount_sum, list(w.counterparties), score, "scored") for w in windows]
        execute_values(cur, upsert, values, page_size=len(values))

    windows = random_windows(rng, 400)
    games = [("game-0", "game-0", None) if i % 2 else ("game-0",) for i in range(60)]  # repeated, and a NULL
    windows += [PastWindow(f"g{i}", cases.T0 - timedelta(minutes=i % 3), 2.0, None if i % 4 == 0 else 20.0,
                           parties) for i, parties in enumerate(games)]  # type: ignore[arg-type]
    rng.shuffle(windows)
    for i in range(0, len(windows), 100):
        batch(windows[i:i + 100])
    assert_rollups_recount(cur)
    cur.execute("SELECT windows FROM counterparty_minutes WHERE counterparty = 'game-0' AND window_start = %s",
                (cases.T0,))
    assert cur.fetchone()[0] == 20  # twenty windows of one statement summed into one rollup row

    def label(name: str, w: PastWindow) -> None:
        cur.execute("INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, transaction_ids, "
                    "first_event_time, last_event_time) VALUES (%s, 't', 'p', 'fintech', %s, '[]', %s, %s)",
                    (name, w.actor_id, w.window_start, w.window_start + timedelta(seconds=30)))

    def fraud_rows() -> int:
        cur.execute("SELECT count(*) FROM counterparty_fraud_windows")
        return int(cur.fetchone()[0])

    assert fraud_rows() == 0  # nothing labelled yet: no counterparty rows at all (migration 018)
    labelled = [w for w in windows if w.counterparties][:12]
    for j, w in enumerate(labelled):
        label(f"gt-first-{j}", w)
    assert fraud_rows() >= len(labelled)
    assert_rollups_recount(cur)

    sample = {(w.actor_id, w.window_start): w for w in labelled[:6] + rng.sample(windows, 114)}
    changed = [PastWindow(w.actor_id, w.window_start, w.txn_count + 1, (w.amount_sum or 0) + 1,
                          tuple(sorted({*w.counterparties[:1], "c7"} - {None})))  # type: ignore[arg-type]
               for w in sample.values()]
    fresh = [PastWindow(f"n{i}", cases.T0 - timedelta(minutes=i), 1.0, 5.0, ("game-0", "c1")) for i in range(30)]
    batch(changed + fresh)  # rewrites and new windows in one statement
    assert_rollups_recount(cur)
    batch(rng.sample(changed, 50), score=0.9)  # rescored: nothing the history reads changes
    assert_rollups_recount(cur)

    cur.execute("SELECT count(*) FROM counterparty_fraud_windows WHERE counterparty = 'c7'")
    assert cur.fetchone()[0] >= 6  # the labelled windows rewritten to pay c7 carry their label there

    label("gt-batch", rng.choice(changed))
    assert_rollups_recount(cur)
    cur.execute("DELETE FROM ground_truth WHERE instance_id LIKE 'gt-first-%%'")  # labels withdrawn
    assert_rollups_recount(cur)
    cur.execute("DELETE FROM actor_windows WHERE actor_id LIKE 'g%%' OR actor_id LIKE 'n1%%'")
    assert_rollups_recount(cur)
    cur.execute("DELETE FROM ground_truth")
    assert_rollups_recount(cur)
    assert fraud_rows() == 0


def test_truncated_labels_and_windows_leave_nothing_behind(cur: Any) -> None:
    store(cur, cases.windows())
    cur.execute("TRUNCATE ground_truth")
    assert stale_labels(cur) == 0
    unlabelled = [PastWindow(w.actor_id, w.window_start, w.txn_count, w.amount_sum, w.counterparties)
                  for w in cases.windows()]
    keys = cases.keys()
    for key, row in zip(keys, history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN), strict=True):
        assert_same(row, reference(unlabelled, key, cases.LABEL_DELAY_MIN), key)
    cur.execute("TRUNCATE alerts, incidents, incident_verdicts, actor_windows")  # as test_window_scoring_db does
    cur.execute("SELECT (SELECT count(*) FROM counterparty_fraud_windows), "
                + ", ".join(f"(SELECT count(*) FROM {table})" for table, _, _ in ROLLUPS))
    assert cur.fetchone() == (0,) * (1 + len(ROLLUPS))
    assert history_features(cur, keys[:3], label_delay_min=0) == [EMPTY] * 3


def test_history_coverage_counts_from_the_store_first_window_before_the_key(cur: Any) -> None:
    at = {age: cases.T0 - timedelta(minutes=age) for age in (0, 30, 40, 20000)}
    keys = [HistoryKey("k", at[age], ()) for age in (0, 30, 40)]

    def coverage() -> list[float]:
        return [row[COVERAGE] for row in history_features(cur, keys, label_delay_min=cases.LABEL_DELAY_MIN)]

    assert coverage() == [0.0, 0.0, 0.0]  # empty store
    store(cur, [PastWindow("a1", at[30], 1.0, 5.0)])
    assert coverage() == [30.0, 0.0, 0.0]  # its own first window, and a window before the store began
    store(cur, [PastWindow("a2", at[0] + timedelta(minutes=5), 1.0, 5.0)])
    assert coverage() == [30.0, 0.0, 0.0]  # a later window changes nothing
    store(cur, [PastWindow("a3", at[20000], 1.0, 5.0)])
    assert coverage() == [float(COVERAGE_CAP_MIN)] * 3  # capped at the longest horizon
    cur.execute("DELETE FROM actor_windows WHERE actor_id = 'a3'")
    assert coverage() == [30.0, 0.0, 0.0]  # the store's start follows deletes (retention)
    cur.execute("TRUNCATE actor_windows")
    assert coverage() == [0.0, 0.0, 0.0]


def test_the_store_first_window_is_read_through_an_index(cur: Any) -> None:
    """Per batch the query reads min(window_start) of actor_windows: an index descent (migration
    012), never a scan of the table (sequential scans off: without a usable index the plan keeps one)."""
    store(cur, cases.windows())
    cur.execute("SET enable_seqscan = off")
    cur.execute("EXPLAIN SELECT min(w.window_start) AS first FROM actor_windows w")
    plan = "\n".join(r[0] for r in cur.fetchall())
    assert "actor_windows_start_idx" in plan and "Seq Scan" not in plan, plan


def rollup_writers(cursor: Any) -> set[str]:
    """The functions whose body writes the actor's rollups: 019 had a second set of triggers for
    them next to 018's, 020 one function per event for all the derived tables."""
    cursor.execute("SELECT proname FROM pg_proc WHERE prosrc ~ 'INSERT INTO actor_hours'"
                   " OR prosrc ~ 'TRUNCATE[^;]*actor_hours'")
    return {row[0] for row in cursor.fetchall()}


def test_migrations_018_to_020_keep_a_populated_store() -> None:
    """A history store written under 017 (a counterparty row per window and counterparty): 018
    keeps only the labelled windows' rows and leaves the rollups as they were; 019 fills the actor's
    rollups from the stored windows; 020 leaves one trigger function per event writing them; the
    history query then equals the reference, and writes after it keep everything equal to a recount."""
    from patternalarm.stack import postgres

    rng = random.Random(17)
    windows = random_windows(rng, 400)
    with scratch_database("pa_history_018", until="017") as settings:
        conn = psycopg2.connect(settings.db_url(settings.pg_database))
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                store(cursor, windows)
                cursor.execute("SELECT count(*), count(fraud_known_at) FROM counterparty_windows")
                rows, labelled = cursor.fetchone()
                assert rows > labelled > 0
                cursor.execute("SELECT * FROM counterparty_hours ORDER BY 1, 2")
                hours = cursor.fetchall()
                cursor.execute("SELECT * FROM counterparty_minutes ORDER BY 1, 2")
                minutes = cursor.fetchall()

                assert postgres.migrate(settings, until="018") == ["018_counterparty_rows_for_fraud_windows_only"]
                cursor.execute("SELECT count(*) FROM counterparty_fraud_windows")
                assert cursor.fetchone()[0] == labelled
                cursor.execute("SELECT to_regclass('counterparty_windows')")
                assert cursor.fetchone()[0] is None
                cursor.execute("SELECT * FROM counterparty_hours ORDER BY 1, 2")
                assert cursor.fetchall() == hours
                cursor.execute("SELECT * FROM counterparty_minutes ORDER BY 1, 2")
                assert cursor.fetchall() == minutes
                assert_rollups_recount(cursor, ROLLUPS[:2])

                assert postgres.migrate(settings, until="019") == ["019_actor_hours"]
                cursor.execute("SELECT sum(windows) FROM actor_hours")
                assert cursor.fetchone()[0] == len(windows)
                assert_rollups_recount(cursor)

                assert postgres.migrate(settings) == ["020_one_trigger_set_on_actor_windows"]
                assert rollup_writers(cursor) == {
                    "window_history_on_insert", "pa_apply_window_changes", "window_history_truncate"}
                assert_rollups_recount(cursor)
                keys = [HistoryKey(w.actor_id, w.window_start, w.counterparties) for w in rng.sample(windows, 40)]
                for key, row in zip(keys, history_features(cursor, keys, label_delay_min=0), strict=True):
                    assert_same(row, reference(windows, key, 0), key)

                later = [PastWindow(w.actor_id, w.window_start + timedelta(days=9), w.txn_count, w.amount_sum,
                                    w.counterparties, w.fraud_known_at and w.fraud_known_at + timedelta(days=9))
                         for w in windows[:60]]
                store(cursor, later)
                cursor.execute("DELETE FROM actor_windows WHERE actor_id = 'r0'")
                assert_rollups_recount(cursor)
        finally:
            conn.close()
