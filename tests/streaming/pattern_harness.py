"""Positive and near-miss cases of detection patterns, run through the real job in simulated time.

Patterns with hour- or day-long horizons ("first seen 24 h earlier", "within 24 h") cannot wait for
the wall clock, so each test module feeds a fresh, isolated job (own topics, database, checkpoints)
with its cases' events in simulated event time, then a flush of background events far later on every
partition so the watermark passes everything, and reads the incidents per partition key.

    CASES = [PatternCase("structuring-positive", events, expect={"acct-1": "structuring"}),
             PatternCase("structuring-near-miss", events2, expect_none={"acct-2": "structuring"})]

    @pytest.fixture(scope="module")
    def outcome(tmp_path_factory): return run_cases(CASES, tmp_path_factory.mktemp("job"))
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg2

from patternalarm.events import format_timestamp, parse_timestamp
from streaming import behaviours
from streaming.kafka_io import EventProducer
from tests.streaming.conftest import isolated_run
from tests.streaming.job_process import DetectionJob

SIM_START = datetime(2026, 1, 5, tzinfo=timezone.utc)
FLUSH_AFTER = timedelta(days=40)  # beyond every pattern's horizon (30 days is the longest)


@dataclass
class PatternCase:
    name: str
    events: list[dict[str, Any]]
    expect: dict[str, str] = field(default_factory=dict)  # partition key -> pattern that must fire
    expect_none: dict[str, str] = field(default_factory=dict)  # partition key -> pattern that must not


@dataclass
class Outcome:
    incidents: dict[tuple[str, str], list[dict[str, Any]]]  # (actor_id, pattern) -> incidents
    dead_letters: int

    def found(self, key: str, pattern: str) -> list[dict[str, Any]]:
        return self.incidents.get((key, pattern), [])


def at(offset: timedelta, base: datetime = SIM_START) -> datetime:
    """A simulated moment: the base day plus an offset."""
    return base + offset


def stamp(event: dict[str, Any], moment: datetime) -> dict[str, Any]:
    event["timestamp"] = format_timestamp(moment)
    return event


def _flush_events(after: datetime) -> list[dict[str, Any]]:
    """Background purchases far in the future from many actors: every partition moves its watermark."""
    rng = random.Random(99)
    return [behaviours.ecommerce(rng, 9_900_000 + i, after + timedelta(seconds=i)) for i in range(64)]


def run_cases(cases: list[PatternCase], var_dir: Path, timeout_s: float = 240) -> Outcome:
    """Send every case's events in event-time order, flush, and collect incidents once all expected
    ones are there (or the timeout passes: the assertions then say what is missing)."""
    with isolated_run(var_dir) as settings:
        # Every partition gets flush events, so none has to be declared idle; idleness would let the
        # watermark pass a partition the job has not read yet (its events then count as late).
        os.environ["PA_IDLE_TIMEOUT_S"] = "0"  # restored by isolated_run
        job = DetectionJob(settings, var_dir / "job.log")
        job.start(resume=False)
        try:
            events = sorted((e for c in cases for e in c.events), key=lambda e: parse_timestamp(e["timestamp"]))
            last = parse_timestamp(events[-1]["timestamp"]) if events else SIM_START
            producer = EventProducer(settings)
            for event in events:
                producer.send(event)
            # Two flush rounds: the first makes every partition active far ahead, the second (a bit
            # later still) lets the idle-timeout-free watermark pass all of the cases' events.
            for round_ in range(2):
                for event in _flush_events(last + FLUSH_AFTER + timedelta(minutes=round_)):
                    producer.send(event)
                producer.flush_now()
                time.sleep(2)
            assert producer.close() == 0 and producer.failed == 0
            wanted = {(k, p) for c in cases for k, p in c.expect.items()}
            deadline = time.monotonic() + timeout_s
            outcome = _collect(settings)
            while not wanted <= set(outcome.incidents) and time.monotonic() < deadline:
                time.sleep(2)
                outcome = _collect(settings)
            time.sleep(3)  # near misses must have had the same chance to (wrongly) fire
            return _collect(settings)
        finally:
            job.kill()


def assert_case(case: PatternCase, outcome: Outcome) -> None:
    """Exactly one incident where the case expects one, none where it expects a near miss."""
    for partition_key, pattern in case.expect.items():
        found = outcome.found(partition_key, pattern)
        assert len(found) == 1, f"{case.name}: expected one {pattern} incident for {partition_key}, got {found}"
    for partition_key, pattern in case.expect_none.items():
        assert outcome.found(partition_key, pattern) == [], f"{case.name}: {pattern} fired for {partition_key}"
    assert outcome.dead_letters == 0


def _collect(settings: Any) -> Outcome:
    with psycopg2.connect(settings.db_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT actor_id, pattern, incident_id, severity, alert_count, evidence FROM incidents")
        incidents: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for actor, pattern, incident_id, severity, alert_count, evidence in cur.fetchall():
            incidents[(actor, pattern)].append({"incident_id": incident_id, "severity": severity,
                                                "alert_count": alert_count, "evidence": evidence})
        cur.execute("SELECT coalesce(sum(invalid_events), 0) FROM stream_throughput")
        (invalid,) = cur.fetchone()
    return Outcome(dict(incidents), int(invalid))
