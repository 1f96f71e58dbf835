"""Benchmark: the window scorer's history query (streaming/history_lookup.py) on ~1M actor_windows.

    $(python3 scripts/envs.py python streaming) streaming/bench_history_lookup.py [--rows 1000000]

Seeds a scratch database (dropped afterwards) with ``rows`` minute windows over 7 days and 2 hours:
2,000 actors per domain (fintech pays other accounts, gaming plays one of 40 games, ecommerce and iot
have no counterparty), each active in a random ~1/16 of the minutes, 2% of windows with ground
truth; then times batches of 100 windows of the last minute (the scorer's batch) and prints the
per-batch time, then the window scorer's upsert of 100 windows (new, then the same again: what
the label triggers of migration 010 add to a write). Each batch size is timed alternately with the
server's JIT settings and as the scorer's session runs it (JIT off, window_scorer.SESSION_SETTINGS).
Prints numbers, asserts nothing.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patternalarm.history_features import HistoryKey  # noqa: E402
from streaming.history_lookup import LOOKUP_SQL, history_features, lookup_parameters  # noqa: E402
from streaming.window_scorer import SESSION_SETTINGS  # noqa: E402
from tests.support.databases import scratch_database  # noqa: E402

END = datetime(2026, 6, 8, tzinfo=timezone.utc)
MINUTES = 7 * 1440 + 120
ACTORS_PER_DOMAIN = 2000


def actor(domain: str, i: int) -> str:
    return f"{domain}-{i}"


def parties(rng: random.Random, domain: str, actors: int = ACTORS_PER_DOMAIN) -> str:
    if domain == "fintech":
        return "{" + ",".join(f"fintech-{rng.randrange(actors)}" for _ in range(rng.randint(1, 3))) + "}"
    if domain == "gaming":
        return "{game-" + f"{rng.randrange(40):02d}" + "}"
    return "{}"


def seed(cur: object, rows: int, rng: random.Random, actors: int = ACTORS_PER_DOMAIN) -> tuple[int, int]:
    domains = ("fintech", "gaming", "ecommerce", "iot")
    per_actor = min(MINUTES, max(1, rows // (len(domains) * actors)))
    windows, truth = io.StringIO(), io.StringIO()
    count = 0
    for d in domains:
        for i in range(actors):
            for m in sorted(rng.sample(range(MINUTES), per_actor)):
                start = END - timedelta(minutes=MINUTES - m)
                n = rng.randint(1, 5)
                windows.write(f"{actor(d, i)}\t{d}\t{start.isoformat()}\t{(start + timedelta(minutes=1)).isoformat()}"
                              f"\t{n}\t{n * rng.uniform(5, 200):.2f}\t{parties(rng, d, actors)}\n")
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


def seed_busy_games(cur: Any, per_min: int, hours: int = 2) -> int:
    """``per_min`` gaming windows a minute over the ``hours`` before END, spread over the 40 games:
    what a live stream leaves in the hours the history ranges only partly cover, where each game is
    touched by hundreds of windows a minute."""
    for m in range(hours * 60):  # a COPY (transaction) a minute, as the scorer stores them: one
        windows = io.StringIO()   # transaction updating a rollup row thousands of times is quadratic
        start = END - timedelta(minutes=hours * 60 - m)
        for j in range(per_min):
            windows.write(f"gaming-busy-{j}\tgaming\t{start.isoformat()}\t{(start + timedelta(minutes=1)).isoformat()}"
                          f"\t2\t20.00\t{{game-{j % 40:02d}}}\n")
        windows.seek(0)
        cur.copy_from(windows, "actor_windows", columns=("actor_id", "domain", "window_start", "window_end",
                                                         "event_count", "amount_sum", "counterparties"))
    cur.execute("ANALYZE")
    return hours * 60 * per_min


def report(what: str, timings: list[float], size: int = 100) -> None:
    timings = sorted(timings)
    print(f"{what}: min {timings[0]:.1f} ms .. p50 {statistics.median(timings):.1f} ms, "
          f"p90 {timings[int(len(timings) * 0.9) - 1]:.1f} ms, max {timings[-1]:.1f} ms ({len(timings)} batches); "
          f"p50 per window {statistics.median(timings) / size:.3f} ms")


def batch_keys(rng: random.Random, size: int, actors: int = ACTORS_PER_DOMAIN) -> list[HistoryKey]:
    """``size`` windows of random actors of every domain, all starting at one random minute of the
    seeded history's last hour (a live batch shares its minute). Not on the hour: there every range
    starts and ends on an hour and the query reads no window, only rollups, which no live minute
    but one in sixty gets. (Until 2026-12-07 the keys started at END, on the hour.)"""
    domains = ("fintech", "gaming", "ecommerce", "iot")
    start = END - timedelta(minutes=rng.randrange(1, 60))
    keys = []
    for _ in range(size):
        d = domains[rng.randrange(4)]
        parts = parties(rng, d, actors).strip("{}")
        keys.append(HistoryKey(actor(d, rng.randrange(actors)), start,
                               tuple(p for p in parts.split(",") if p)))
    return keys


def time_lookup(cur: object, rng: random.Random, size: int, delay: int, actors: int) -> float:
    keys = batch_keys(rng, size, actors)
    t0 = time.perf_counter()
    history_features(cur, keys, label_delay_min=delay)
    return (time.perf_counter() - t0) * 1000


# the scorer's session settings (window_scorer.SESSION_SETTINGS), and the server's defaults for them
SCORER_SESSION = "; ".join(f"SET {name} = {value}" for name, value in SESSION_SETTINGS.items())
SERVER_DEFAULTS = "; ".join(f"RESET {name}" for name in SESSION_SETTINGS)


def compare_jit(cur: Any, rng: random.Random, size: int, batches: int, delay: int,
                actors: int) -> dict[str, list[float]]:
    """Lookups alternately with the server's JIT settings (on above jit_above_cost) and as the
    scorer's session runs them (JIT off), in the same process and on the same data: the history
    query's estimated cost grows faster than its batch, and past jit_above_cost compiling it costs
    more than running it."""
    sessions = {"server default (JIT above jit_above_cost)": SERVER_DEFAULTS, "scorer session (JIT off)": SCORER_SESSION}
    timings: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(batches):
        for name, statement in sessions.items():
            cur.execute(statement)
            timings[name].append(time_lookup(cur, rng, size, delay, actors))
    cur.execute(SERVER_DEFAULTS)
    return timings


def planning_ms(cur: Any, rng: random.Random, size: int, delay: int, actors: int) -> float:
    """Planning time of one batch's query (EXPLAIN (SUMMARY) plans it without running it): the part
    of a lookup that does not grow with the batch."""
    cur.execute("EXPLAIN (SUMMARY) " + LOOKUP_SQL, lookup_parameters(batch_keys(rng, size, actors), delay))
    line = next(r[0] for r in cur.fetchall() if r[0].startswith("Planning Time"))
    return float(line.split(":")[1].split()[0])


def time_upserts(cur: object, rng: random.Random, batches: int, size: int = 100) -> list[float]:
    """The window scorer's UPSERT (execute_values, one statement per batch of ``size`` windows) of
    windows after END: inserts the first time, updates of the same windows (a rescore) when called
    again."""
    from psycopg2.extras import execute_values

    from streaming.window_scorer import UPSERT

    domains = ("fintech", "gaming", "ecommerce", "iot")
    timings = []
    for b in range(batches):
        start = END + timedelta(minutes=1 + b)
        rows = []
        for i in range(size):
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
    parser.add_argument("--actors-per-domain", type=int, default=ACTORS_PER_DOMAIN,
                        help="fewer actors for the same rows: a deeper history per actor (rows = 4 x actors x "
                             f"{MINUTES} is a window every minute, what the generator's fixed population leaves "
                             "at CRISIS and above)")
    parser.add_argument("--delay", type=int, default=60, help="label delay in minutes")
    parser.add_argument("--busy-games-per-min", type=int, default=0,
                        help="also seed the last 2 hours with this many gaming windows a minute (a live stream's "
                             "popular counterparties)")
    parser.add_argument("--batch-sizes", default="100",
                        help="windows per history query, comma-separated (the first also sizes the upserts)")
    args = parser.parse_args()
    rng = random.Random(7)
    with scratch_database("pa_bench_history") as settings:
        conn = psycopg2.connect(settings.db_url(settings.pg_database))
        conn.autocommit = True
        cur = conn.cursor()
        started = time.monotonic()
        stored, per_actor = seed(cur, args.rows, rng, args.actors_per_domain)
        cur.execute("SELECT (SELECT count(*) FROM counterparty_minutes), (SELECT count(*) FROM counterparty_fraud_windows)")
        minutes, fraud = cur.fetchone()
        print(f"seeded {stored:,} actor_windows ({per_actor} per actor), {minutes:,} counterparty minute rows, "
              f"{fraud:,} fraud windows' counterparty rows "
              f"in {time.monotonic() - started:.1f} s")
        if args.busy_games_per_min:
            started = time.monotonic()
            busy = seed_busy_games(cur, args.busy_games_per_min)
            print(f"seeded {busy:,} gaming windows of the last 2 hours ({args.busy_games_per_min} a minute, "
                  f"{args.busy_games_per_min / 40:.0f} per game) in {time.monotonic() - started:.1f} s")
        for size in (int(s) for s in args.batch_sizes.split(",")):
            timings = compare_jit(cur, rng, size, args.batches, args.delay, args.actors_per_domain)
            for session, values in timings.items():
                report(f"history lookup, batches of {size} windows, {session}", values, size)
            planning = planning_ms(cur, rng, size, args.delay, args.actors_per_domain)
            print(f"  of which planning: {planning:.1f} ms per batch")
        cur.execute(SCORER_SESSION)  # the upserts as the scorer runs them
        size = int(args.batch_sizes.split(",")[0])
        report(f"scorer upsert of {size} new windows", time_upserts(cur, rng, args.batches, size), size)
        report(f"scorer upsert of {size} stored windows", time_upserts(cur, rng, args.batches, size), size)
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
