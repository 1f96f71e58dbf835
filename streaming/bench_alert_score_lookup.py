"""Benchmark: storing an alert of an actor with a long history, as the job's alert sink does.

    $(python3 scripts/envs.py python streaming) streaming/bench_alert_score_lookup.py [--actors 50] [--days 7]

Every alert the job stores runs score_alert_on_write (BEFORE INSERT on alerts), which looks up the
actor's windows overlapping the alert's span. 004's version of that lookup was bounded above only,
so it read the actor's whole history; 017's stops a minute before the span (a window lasts at most a
minute). This seeds a scratch database (dropped afterwards) with ``actors`` actors that had a window
every minute for ``days`` days, plus a busy last minute of other actors, then stores alerts of those
actors at the last minute, one statement each as the sink does, alternating rounds between 004's
function (the baseline, re-created from its migration in the same database) and the current one.
Prints per-alert times and their ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streaming.bench_job import machine  # noqa: E402
from tests.support.databases import scratch_database  # noqa: E402

MIGRATIONS = Path(__file__).resolve().parents[1] / "sql" / "migrations"
LAST_MINUTE = datetime(2026, 6, 8, tzinfo=timezone.utc)
FUNCTION = re.compile(r"CREATE (?:OR REPLACE )?FUNCTION score_alert_on_write\(\).*?\n\$\$;", re.S)


def lookup_function(migration: str) -> str:
    """score_alert_on_write as that migration defines it, as a CREATE OR REPLACE statement."""
    found = FUNCTION.search((MIGRATIONS / migration).read_text())
    if found is None:
        raise SystemExit(f"score_alert_on_write not found in {migration}: update this benchmark's pattern")
    return found.group(0).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def current_migration() -> str:
    """The latest migration that defines score_alert_on_write."""
    return max(p.name for p in MIGRATIONS.glob("*.sql") if FUNCTION.search(p.read_text()))


def seed(cur: Any, actors: int, days: int, busy: int) -> int:
    cur.execute("""
        INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, features, score,
                                   score_status, model_version, scored_at)
        SELECT 'old-' || a, 'ecommerce', t, t + interval '1 minute', 3, '{}'::jsonb, 0.1, 'scored', 'bench', t
          FROM generate_series(1, %(actors)s) a,
               generate_series(%(last)s - make_interval(days => %(days)s), %(last)s, interval '1 minute') t
        UNION ALL
        SELECT 'busy-' || i, 'ecommerce', %(last)s, %(last)s + interval '1 minute', 1, '{}'::jsonb, 0.1, 'scored',
               'bench', %(last)s
          FROM generate_series(1, %(busy)s) i""", {"actors": actors, "days": days, "last": LAST_MINUTE, "busy": busy})
    cur.execute("ANALYZE")
    cur.execute("SELECT count(*) FROM actor_windows")
    return int(cur.fetchone()[0])


def store_alerts(cur: Any, actors: int, prefix: str) -> list[float]:
    """One alert per actor, each its own INSERT (the sink's upsert, autocommit); ms per alert."""
    timings = []
    for a in range(1, actors + 1):
        started = time.perf_counter()
        cur.execute("""
            INSERT INTO alerts (alert_id, pattern, domain, actor_id, severity, first_event_time, event_time,
                                emitted_at, transaction_ids, measures)
            VALUES (%s, 'card_testing', 'ecommerce', %s, 'HIGH', %s, %s, %s, '[]', '{}')
            ON CONFLICT (alert_id) DO UPDATE SET severity = EXCLUDED.severity""",
                    (f"{prefix}-{a}", f"old-{a}", LAST_MINUTE + timedelta(seconds=5),
                     LAST_MINUTE + timedelta(seconds=50), LAST_MINUTE + timedelta(seconds=51)))
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    import psycopg2

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=50, help="actors with a long history (one alert each a round)")
    parser.add_argument("--days", type=int, default=7, help="days of windows, one a minute, per actor")
    parser.add_argument("--busy", type=int, default=20_000, help="other actors' windows in the last minute")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    host = machine()
    print(f"machine: {host['nproc']} cores, {host['cpu']}, Python {host['python']}, "
          f"load average {host['loadavg_1m_at_start']:.2f}")
    versions = {"004 (unbounded, baseline)": lookup_function("004_window_scoring.sql"),
                f"{current_migration()[:3]} (current)": lookup_function(current_migration())}
    with scratch_database("pa_bench_alert_lookup") as settings:
        conn = psycopg2.connect(settings.db_url(settings.pg_database))
        conn.autocommit = True
        cur = conn.cursor()
        started = time.monotonic()
        rows = seed(cur, args.actors, args.days, args.busy)
        print(f"seeded {rows:,} actor_windows ({args.days * 1440 + 1:,} per long-lived actor) "
              f"in {time.monotonic() - started:.1f} s")
        timings: dict[str, list[float]] = {name: [] for name in versions}
        for round_no in range(args.rounds):
            for v, (name, function) in enumerate(versions.items()):
                cur.execute(function)
                timings[name] += store_alerts(cur, args.actors, f"bench-{round_no}-{v}")
        cur.execute("SELECT count(*) FILTER (WHERE score_status = 'scored'), count(*) FROM alerts")
        scored, stored = cur.fetchone()
        conn.close()
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, values in timings.items():
        values = sorted(values)
        print(f"alert insert, lookup of {name}: p50 {medians[name]:.3f} ms, "
              f"p90 {values[int(len(values) * 0.9) - 1]:.3f} ms ({len(values)} alerts)")
    base, *_, current = medians.values()
    print(f"ratio baseline / current (p50): {base / current:.1f}x; {scored} of {stored} alerts scored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
