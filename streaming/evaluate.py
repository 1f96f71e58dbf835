"""`make evaluate`: incidents against ground truth — precision, recall, F1 per pattern, detection delay.

An injected instance counts as detected when an incident of the same pattern and partition key holds
at least one of the instance's transaction ids in its evidence. An incident is a true positive when it
matches some instance; incidents are scoped to the evaluated run's event-time span. Detection delay
is the time from the event that completed the pattern to the moment the first matching alert was
stored.

    python -m streaming.evaluate [--run-id RUN] [--json]      # default: the latest run
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from patternalarm import config

MATCHES = """
WITH truth AS (
    SELECT * FROM ground_truth WHERE run_id = %(run)s
), span AS (
    SELECT min(first_event_time) AS t0, max(last_event_time) AS t1 FROM truth
), scoped AS (
    SELECT i.* FROM incidents i, span
     WHERE i.first_event_time BETWEEN span.t0 - interval '1 minute' AND span.t1 + interval '1 minute'
), alert_txns AS (
    SELECT a.alert_id, a.incident_id, a.pattern, a.actor_id, a.event_time, a.stored_at, t.txn
      FROM alerts a JOIN scoped s ON s.incident_id = a.incident_id,
           LATERAL jsonb_array_elements_text(a.transaction_ids) AS t(txn)
)
SELECT 'instance' AS kind, g.pattern, g.instance_id AS id,
       min(extract(epoch FROM at.stored_at - at.event_time)) AS delay_s
  FROM truth g
  LEFT JOIN alert_txns at ON at.pattern = g.pattern AND at.actor_id = g.actor_id
                         AND g.transaction_ids ? at.txn
 GROUP BY g.pattern, g.instance_id
UNION ALL
SELECT 'incident', s.pattern, s.incident_id,
       CASE WHEN s.pattern = %(score_only)s THEN
                 -- no pattern of its own: true when any injected instance of the actor overlaps it
                 CASE WHEN EXISTS (SELECT 1 FROM truth g WHERE g.actor_id = s.actor_id
                                      AND g.first_event_time <= s.last_event_time + interval '1 minute'
                                      AND g.last_event_time >= s.first_event_time - interval '1 minute')
                      THEN 1 ELSE 0 END
            WHEN EXISTS (SELECT 1 FROM truth g JOIN alert_txns at ON at.incident_id = s.incident_id
                          WHERE g.pattern = s.pattern AND g.actor_id = s.actor_id AND g.transaction_ids ? at.txn)
            THEN 1 ELSE 0 END
  FROM scoped s
"""


# Incidents the model raised without a rule (a high window score): no injected instance is ever of
# this pattern, so it has a precision (does some instance of the actor explain it?) but no recall.
SCORE_ONLY = "suspicious_activity"


@dataclass
class PatternScore:
    pattern: str
    instances: int
    detected: int
    incidents: int
    true_incidents: int
    precision: float
    recall: float
    f1: float
    delay_p50_s: float | None
    delay_p99_s: float | None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def score(rows: list[tuple[str, str, str, Any]]) -> list[PatternScore]:
    """Per-pattern scores from (kind, pattern, id, value) rows of the MATCHES query."""
    patterns = sorted({r[1] for r in rows})
    result = []
    for p in patterns:
        instances = [r for r in rows if r[0] == "instance" and r[1] == p]
        incidents = [r for r in rows if r[0] == "incident" and r[1] == p]
        delays = [float(r[3]) for r in instances if r[3] is not None]
        detected, true_incidents = len(delays), sum(int(r[3]) for r in incidents)
        precision = true_incidents / len(incidents) if incidents else (1.0 if not instances else 0.0)
        recall = detected / len(instances) if instances else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result.append(PatternScore(p, len(instances), detected, len(incidents), true_incidents,
                                   round(precision, 4), round(recall, 4), round(f1, 4),
                                   _percentile(delays, 0.5), _percentile(delays, 0.99)))
    return result


def evaluate(run_id: str | None = None) -> tuple[str, list[PatternScore]]:
    import psycopg2

    with psycopg2.connect(config.load().db_url()) as conn, conn.cursor() as cur:
        if run_id is None:
            cur.execute("SELECT run_id FROM ground_truth ORDER BY recorded_at DESC LIMIT 1")
            found = cur.fetchone()
            if not found:
                raise SystemExit("evaluate: no ground truth recorded yet; run `make demo` (or the generator) first")
            run_id = found[0]
        cur.execute(MATCHES, {"run": run_id, "score_only": SCORE_ONLY})
        return run_id, score(cur.fetchall())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    run_id, scores = evaluate(args.run_id)
    if args.json:
        print(json.dumps({"run_id": run_id, "patterns": [asdict(s) for s in scores]}))
        return 0
    print(f"run {run_id}")
    print(f"{'pattern':<20} {'inst':>5} {'found':>5} {'incid':>5} {'prec':>6} {'recall':>6} {'F1':>6} "
          f"{'delay p50':>10} {'delay p99':>10}")
    for s in scores:
        p50 = f"{s.delay_p50_s:.2f}s" if s.delay_p50_s is not None else "-"
        p99 = f"{s.delay_p99_s:.2f}s" if s.delay_p99_s is not None else "-"
        recall, f1 = ((f"{'n/a':>6}", f"{'n/a':>6}") if s.pattern == SCORE_ONLY
                      else (f"{s.recall:>6.3f}", f"{s.f1:>6.3f}"))
        print(f"{s.pattern:<20} {s.instances:>5} {s.detected:>5} {s.incidents:>5} {s.precision:>6.3f} "
              f"{recall} {f1} {p50:>10} {p99:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
