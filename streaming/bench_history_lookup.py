"""Benchmark: the window scorer's history query (streaming/history_lookup.py) on ~1M actor_windows.

    $(python3 scripts/envs.py python streaming) streaming/bench_history_lookup.py [--rows 1000000]

Seeds a scratch database (dropped afterwards) with ``rows`` minute windows over 7 days and 2 hours:
2,000 actors per domain (fintech pays other accounts, gaming plays one of 40 games, ecommerce and iot
have no counterparty), each active in a random ~1/16 of the minutes, 2% of windows with ground
truth; then times batches of 100 windows of the last minute (the scorer's batch) and prints the
per-batch time, then the window scorer's upsert of 100 windows (new, then the same again: what
the label triggers of migration 010 add to a write). Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patternalarm.history_features import HistoryKey  # noqa: E402
from streaming.history_lookup import history_features  # noqa: E402
from tests.support.databases import scratch_database  # noqa: E402

END = datetime(2026, 6, 8, tzinfo=timezone.utc)
MINUTES = 7 * 1440 + 120
ACTORS_PER_DOMAIN = 2000


def actor(domain: str, i: int) -> str:
    return f"{domain}-{i}"


def parties(rng: random.Random, domain: str) -> str:
    if domain == "fintech":
        return "{" + ",".join(f"fintech-{rng.randrange(ACTORS_PER_DOMAIN)}" for _ in range(rng.randint(1, 3))) + "}"
    if domain == "gaming":
        return "{game-" + f"{rng.randrange(40):02d}" + "}"
    return "{}"


def seed(cur: object, rows: int, rng: random.Random) -> tuple[int, int]:
    domains = ("fintech", "gaming", "ecommerce", "iot")
    per_actor = max(1, rows // (len(domains) * ACTORS_PER_DOMAIN))
    windows, truth = io.StringIO(), io.StringIO()
    count = 0
    for d in domains:
        for i in range(ACTORS_PER_DOMAIN):
            for m in sorted(rng.sample(range(MINUTES), per_actor)):
                start = END - timedelta(minutes=MINUTES - m)
                n = rng.randint(1, 5)
                windows.write(f"{actor(d, i)}\t{d}\t{start.isoformat()}\t{(start + timedelta(minutes=1)).isoformat()}"
                              f"\t{n}\t{n * rng.uniform(5, 200):.2f}\t{parties(rng, d)}\n")
                if rng.random() < 0.02:
                    truth.write(f"gt-{count}\tbench\tp\t{d}\t{actor(d, i)}\t[]\t{(start + timedelta(seconds=5)).isoformat()}"
                                f"\t{(start + timedelta(seconds=50)).isoformat()}\n")
                count += 1
    windows.seek(0)
    truth.seek(0)
    cur.copy_from(windows, "actor_windows", columns=("actor_id", "domain", "window_start", "window_end",  # type: ignore[attr-defined]
                                                     "event_count", "amount_sum", "counterparties"))
    cur.copy_from(truth, "ground_truth", columns=("instance_id", "run_id", "pattern", "domain", "actor_id",  # type: ignore[attr-defined]
                                                  "transaction_ids", "first_event_time", "last_event_time"))
    cur.execute("ANALYZE")  # type: ignore[attr-defined]
    return count, per_actor


def report(what: str, timings: list[float]) -> None:
    timings = sorted(timings)
    print(f"{what}: min {timings[0]:.1f} ms .. p50 {statistics.median(timings):.1f} ms, "
          f"p90 {timings[int(len(timings) * 0.9) - 1]:.1f} ms, max {timings[-1]:.1f} ms ({len(timings)} batches)")


def time_upserts(cur: object, rng: random.Random, batches: int) -> list[float]:
    """The window scorer's UPSERT (execute_values, one statement per 100 windows) of windows after
    END: inserts the first time, updates of the same windows (a rescore) when called again."""
    from psycopg2.extras import execute_values

    from streaming.window_scorer import UPSERT

    domains = ("fintech", "gaming", "ecommerce", "iot")
    timings = []
    for b in range(batches):
        start = END + timedelta(minutes=1 + b)
        rows = []
        for i in range(100):
            d = domains[i % 4]
            n = 1 + i % 5
            rows.append((actor(d, i), d, start, start + timedelta(minutes=1), n, n * 10.0, "{}",
                         [p for p in parties(rng, d).strip("{}").split(",") if p], 0.1, "scored", "bench",
                         False, datetime.now(timezone.utc)))
        t0 = time.perf_counter()
        execute_values(cur, UPSERT, rows, page_size=len(rows))
        timings.append((time.perf_counter() - t0) * 1000)
    return timings


def main() -> int:
    import psycopg2

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--delay", type=int, default=60, help="label delay in minutes")
    args = parser.parse_args()
    rng = random.Random(7)
    with scratch_database("pa_bench_history") as settings:
        conn = psycopg2.connect(settings.db_url(settings.pg_database))
        conn.autocommit = True
        cur = conn.cursor()
        started = time.monotonic()
        stored, per_actor = seed(cur, args.rows, rng)
        cur.execute("SELECT count(*) FROM counterparty_windows")
        print(f"seeded {stored:,} actor_windows ({per_actor} per actor), {cur.fetchone()[0]:,} counterparty rows "
              f"in {time.monotonic() - started:.1f} s")
        domains = ("fintech", "gaming", "ecommerce", "iot")
        timings = []
        for b in range(args.batches):
            keys = []
            for _ in range(100):
                d = domains[rng.randrange(4)]
                parts = parties(rng, d).strip("{}")
                keys.append(HistoryKey(actor(d, rng.randrange(ACTORS_PER_DOMAIN)), END,
                                       tuple(p for p in parts.split(",") if p)))
            t0 = time.perf_counter()
            history_features(cur, keys, label_delay_min=args.delay)
            timings.append((time.perf_counter() - t0) * 1000)
        report("history lookup, batches of 100 windows", timings)
        report("scorer upsert of 100 new windows", time_upserts(cur, rng, args.batches))
        report("scorer upsert of 100 stored windows", time_upserts(cur, rng, args.batches))
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
