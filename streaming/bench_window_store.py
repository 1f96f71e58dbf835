"""Benchmark: what storing a scored window costs in PostgreSQL, before a migration and after.

    PYTHONPATH=. TZ=UTC $(python3 scripts/envs.py python streaming) streaming/bench_window_store.py [--minutes 2]

The window scorer stores each micro-batch with one INSERT ... ON CONFLICT into actor_windows, whose
triggers keep the counterparty rollups and rows the history query reads. Before 018 every window
wrote a counterparty_windows row per counterparty, which rolled up into counterparty_hours and
counterparty_minutes; since 018 the rollups are kept from actor_windows directly and only windows
labelled fraud get counterparty rows. Since 019 they also keep the actor's own hourly rollups
(actor_hours, actor_counterparty_hours), so that the history query stops reading every window of
the actor's week; since 020 one trigger function per event keeps all of them (019 had added a
second set of triggers).

Two scratch databases, one migrated up to --before (017 by default: before 018) and one to the
newest migration, receive the same windows in the same micro-batches, alternately (which database
goes first alternates too), each batch stored through the scorer's own WindowStore and upsert (one
statement, one transaction). The
windows are the generator's own stream (streaming/generator.py on a simulated clock at --rate
events a minute, grouped into the job's windows per actor, counterparties and amounts as
features.txn_from_event reads them), and its ground truth is stored first (GroundTruthSink), as the
live stack stores it before the job closes the windows.
Prints the time per window, the rows each schema holds afterwards and their size; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patternalarm.features import txn_from_event  # noqa: E402
from patternalarm.history_features import MODEL_FEATURE_NAMES, WINDOW_MINUTES  # noqa: E402
from streaming.bench_job import machine  # noqa: E402
from streaming.generator import EventStream  # noqa: E402
from streaming.ground_truth import GroundTruthSink  # noqa: E402
from streaming.window_scorer import WindowStore, upsert  # noqa: E402
from tests.support.databases import scratch_database  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class WindowRow:
    actor_id: str
    domain: str
    window_start: datetime
    events: int = 0
    amount: float = 0.0
    parties: set[str] = field(default_factory=set)

    def values(self, scored_at: datetime) -> tuple[Any, ...]:
        """The scorer's UPSERT columns (streaming/window_scorer.py), with a features document of the
        scorer's size (every model input; the values are stand-ins: no trigger reads them)."""
        features = json.dumps({name: float(i + self.events) for i, name in enumerate(MODEL_FEATURE_NAMES)})
        return (self.actor_id, self.domain, self.window_start, self.window_start + timedelta(minutes=WINDOW_MINUTES),
                self.events, round(self.amount, 2), features, sorted(self.parties), 0.1, "scored", "bench", False,
                scored_at)


def stream_windows(rate: float, minutes: float, seed: int) -> tuple[list[WindowRow], list[dict[str, Any]]]:
    """The generator's windows of ``minutes`` at ``rate`` events a minute, in window-close order, and
    its ground truth."""
    stream = EventStream(seed=seed, fraud_rate=0.002, run_id="bench-store", rate_per_min=rate)
    windows: dict[tuple[str, datetime], WindowRow] = {}
    truths: list[dict[str, Any]] = []
    now, step = START, timedelta(seconds=60.0 / rate)
    for _ in range(int(rate * minutes)):
        event, truth = stream.next_event(now)
        if truth:
            truths.append(truth)
        txn = txn_from_event(event, now)
        start = now - timedelta(minutes=now.minute % WINDOW_MINUTES, seconds=now.second, microseconds=now.microsecond)
        row = windows.setdefault((str(event["actor_id"]), start),
                                 WindowRow(str(event["actor_id"]), str(event["domain"]), start))
        row.events += 1
        row.amount += txn.amount
        if txn.counterparty:
            row.parties.add(txn.counterparty)
        now += step
    return sorted(windows.values(), key=lambda w: w.window_start), truths


def store_batch(store: WindowStore, rows: list[tuple[Any, ...]]) -> float:
    """One micro-batch as the scorer stores it (its store, its upsert: one statement, one commit);
    milliseconds."""
    started = time.perf_counter()
    store.transact(lambda cur: upsert(cur, rows))
    return (time.perf_counter() - started) * 1000


def table_report(store: WindowStore) -> str:
    """Rows (as ANALYZE estimates them) and size of the tables a stored window writes."""
    def read(cur: Any) -> list[tuple[str, int, int]]:
        cur.execute("ANALYZE")
        cur.execute("SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
                    "WHERE c.relname IN ('counterparty_windows', 'counterparty_fraud_windows', 'counterparty_hours', "
                    "'counterparty_minutes', 'actor_windows', 'actor_hours', 'actor_counterparty_hours') "
                    "AND c.relkind = 'r' ORDER BY 1")
        return cur.fetchall()
    return ", ".join(f"{name} ~{rows:,} rows {size / 2**20:.1f} MiB" for name, rows, size in store.transact(read))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1_000_000, help="events a minute of the generated stream")
    parser.add_argument("--minutes", type=float, default=2.0, help="minutes of generated stream")
    parser.add_argument("--batch", type=int, default=78, help="windows per micro-batch (a live 1 M/min run's mean)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--before", default="017",
                        help="the schema to compare with the newest: 017 wrote a counterparty row for every window, "
                             "018 kept no actor rollups")
    args = parser.parse_args()

    print(json.dumps({"machine": machine()}))
    started = time.monotonic()
    windows, truths = stream_windows(args.rate, args.minutes, args.seed)
    parties = sum(len(w.parties) for w in windows)
    print(f"generated {len(windows):,} windows ({parties:,} counterparties, {parties / len(windows):.2f} a window), "
          f"{len(truths)} ground truth records in {time.monotonic() - started:.0f} s")
    with scratch_database("pa_bench_store_before", until=args.before) as before, \
            scratch_database("pa_bench_store_after") as after:
        stores = {f"up to {args.before}": WindowStore(before), "newest": WindowStore(after)}
        for settings in (before, after):
            labels = GroundTruthSink(settings)
            for truth in truths:
                labels.record(truth)
            labels.close()
        timings: dict[str, list[float]] = {name: [] for name in stores}
        scored_at = datetime.now(timezone.utc)
        for i, first in enumerate(range(0, len(windows), args.batch)):
            rows = [w.values(scored_at) for w in windows[first:first + args.batch]]
            order = list(stores.items()) if i % 2 == 0 else list(reversed(stores.items()))
            for name, store in order:
                timings[name].append(store_batch(store, rows) / len(rows))
        base = statistics.mean(next(iter(timings.values())))
        for name, values in timings.items():
            values.sort()
            print(f"{name}: per window mean {statistics.mean(values):.3f} ms, p50 {statistics.median(values):.3f}, "
                  f"p90 {values[int(len(values) * 0.9)]:.3f} ms over {len(values)} batches; "
                  f"mean {statistics.mean(values) / base:.2f}x the first")
        for name, store in stores.items():
            print(f"{name}: {table_report(store)}")
            store.close()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
