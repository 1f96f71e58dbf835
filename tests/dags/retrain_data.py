"""Synthetic rows for the retraining tests: actor_windows, ground truth, incidents with verdicts.

Fraudulent actors' windows have larger, faster, more varied activity (with noise, so the forest has
something to learn but not a trivial rule); some of them raised incidents (fraud verdicts), some
legit actors raised false-positive incidents (legit verdicts), the rest are only in ground truth.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

from patternalarm import features
from patternalarm.config import Settings

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _features(rng: random.Random, fraud: bool, domain: str) -> dict[str, float]:
    f = {n: rng.random() for n in features.FEATURE_NAMES}
    scale = 3.0 if fraud else 1.0
    f.update(txn_count=float(rng.randint(1, 4) + (rng.randint(2, 8) if fraud else 0)),
             amount_sum=rng.uniform(10, 200) * scale, velocity_per_min=rng.uniform(0, 3) * scale,
             distinct_counterparties=float(rng.randint(1, 3) + (rng.randint(0, 5) if fraud else 0)))
    for d in ("fintech", "ecommerce", "gaming", "iot"):
        f[f"domain_{d}"] = 1.0 if d == domain else 0.0
    return f


def seed(settings: Settings, minutes: int = 60, actors: int = 40, seed_value: int = 1) -> dict[str, int]:
    """Insert the rows; returns counts per kind."""
    import psycopg2

    rng = random.Random(seed_value)
    fraudsters = set(range(0, actors, 5))  # every 5th actor
    windows, truth, incidents = [], [], []
    for a in range(actors):
        actor, domain = f"actor-{a}", ("fintech", "ecommerce", "gaming", "iot")[a % 4]
        for m in range(minutes):
            start = START + timedelta(minutes=m)
            fraud = a in fraudsters and m % 3 == 0  # fraudsters attack every third minute
            windows.append((actor, domain, start, start + timedelta(minutes=1),
                            json.dumps(_features(rng, fraud, domain))))
            if fraud:
                truth.append((f"gt-{a}-{m}", actor, domain, start + timedelta(seconds=5),
                              start + timedelta(seconds=50)))
                if a % 10 == 0:  # half the fraudsters were alerted and confirmed
                    incidents.append((f"inc-{a}-{m}", actor, domain, start + timedelta(seconds=5),
                                      start + timedelta(seconds=50), "fraud"))
            elif a % 7 == 1 and m % 6 == 0:  # false positives, confirmed legit
                incidents.append((f"inc-{a}-{m}", actor, domain, start + timedelta(seconds=5),
                                  start + timedelta(seconds=50), "legit"))
    with psycopg2.connect(settings.db_url(settings.pg_database)) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, "
                        "features) VALUES (%s, %s, %s, %s, 1, %s::jsonb)", windows)
        cur.executemany("INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, "
                        "transaction_ids, first_event_time, last_event_time) "
                        "VALUES (%s, 'test', 'synthetic', %s, %s, '[]', %s, %s)",
                        [(i, d, a, f, l) for i, a, d, f, l in truth])
        cur.executemany("INSERT INTO incidents (incident_id, pattern, domain, actor_id, severity, "
                        "first_event_time, last_event_time, verdict, verdict_by, verdict_at) "
                        "VALUES (%s, 'synthetic', %s, %s, 'HIGH', %s, %s, %s, 'test', now())",
                        [(i, d, a, f, l, v) for i, a, d, f, l, v in incidents])
    return {"windows": len(windows), "truth": len(truth), "incidents": len(incidents)}


def end_of_data(minutes: int = 60) -> str:
    return (START + timedelta(minutes=minutes + 1)).isoformat()
