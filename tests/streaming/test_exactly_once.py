"""Exactly-once in effect: kill -9 the job mid-stream, restart it from its last checkpoint, and find
every injected instance as exactly one incident and every closed window's count exact."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from patternalarm.events import parse_timestamp
from streaming.generator import EventStream, run
from streaming.kafka_io import EventProducer
from tests.streaming.conftest import isolated_run
from tests.streaming.job_process import DetectionJob

pytestmark = pytest.mark.integration

RATE_PER_MIN = 9_000
MAIN_PHASE_S = 40
KILL_AFTER_S = 20


def query(settings: Any, sql: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(settings.db_url()) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_kill_and_restart_loses_and_doubles_nothing(tmp_path: Path, request: pytest.FixtureRequest,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The kill comes KILL_AFTER_S into the run, the job's start included: checkpoints every 5 s (the
    # default's 15 s is for throughput) give it several to restore from, with patterns mid-match.
    monkeypatch.setenv("PA_FLINK_CHECKPOINT_MS", "5000")
    with isolated_run(tmp_path) as settings:
        job = DetectionJob(settings, tmp_path / "job.log")
        request.addfinalizer(job.kill)  # whatever fails, no job outlives the test
        job.start(resume=False)
        producer = EventProducer(settings)
        sent: list[dict[str, Any]] = []
        truth: list[dict[str, Any]] = []

        def send(event: dict[str, Any]) -> None:
            sent.append(event)
            producer.send(event)

        stream = EventStream(seed=11, fraud_rate=0.004, run_id="exactly-once", patterns=("card_testing",))
        generator = threading.Thread(target=run, args=(stream, send, truth.append, str(RATE_PER_MIN), MAIN_PHASE_S),
                                     kwargs={"tail_s": 75.0}, daemon=True)
        generator.start()
        time.sleep(KILL_AFTER_S)
        job.kill()  # SIGKILL to the whole process group: no clean shutdown, no final flush
        checkpoints = list((tmp_path / "flink" / "checkpoints").rglob("chk-*/_metadata"))
        assert checkpoints, "the job took no checkpoint before the kill"
        job.start(resume=True)
        generator.join(timeout=400)
        assert not generator.is_alive()
        assert producer.close() == 0 and producer.failed == 0
        assert len(truth) >= 3, "the run should inject several card-testing instances"

        expected = {t["actor_id"] for t in truth}
        deadline = time.monotonic() + 300  # a bound for a loaded machine, not a latency assertion
        found: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline:
            found = query(settings, "SELECT actor_id, count(*) FROM incidents WHERE pattern = 'card_testing' "
                                    "GROUP BY actor_id")
            if {a for a, _ in found} >= expected:
                break
            time.sleep(2)

        incidents = dict(found)
        processed = query(settings, "SELECT coalesce(sum(valid_events), 0) FROM stream_throughput")[0][0]
        assert set(incidents) == expected, (f"lost or invented incidents: {len(expected - set(incidents))} missing, "
                                            f"{len(set(incidents) - expected)} extra of {len(expected)}; "
                                            f"{len(sent)} events sent, {processed} processed (counts restarts twice)")
        assert all(n == 1 for n in incidents.values()), f"doubled incidents: {incidents}"
        alerts = query(settings, "SELECT actor_id, count(*) FROM alerts GROUP BY actor_id")
        expected_alerts = Counter({t["actor_id"]: len(t["transaction_ids"]) // 5 for t in truth})
        assert dict(alerts) == dict(expected_alerts)

        # Windows the watermark has passed (background ran on for tail_s after the last instance, so
        # every window ending 10 s before the last event is closed): their counts must be exact.
        last = max(parse_timestamp(e["timestamp"]) for e in sent)
        horizon = (last - timedelta(seconds=10)).replace(second=0, microsecond=0)
        produced = Counter()
        for event in sent:
            ts = parse_timestamp(event["timestamp"])
            if ts < horizon:
                produced[(event["actor_id"], ts.replace(second=0, microsecond=0))] += 1
        assert sum(produced.values()) > 1000

        def stored() -> dict[tuple[str, Any], int]:
            rows = query(settings, "SELECT actor_id, window_start, event_count FROM actor_windows "
                                   f"WHERE window_end <= '{horizon.isoformat()}'")
            return {(a, w.astimezone(timezone.utc)): n for a, w, n in rows}

        deadline = time.monotonic() + 120  # the job may still be flushing the last windows
        windows = stored()
        while windows != dict(produced) and time.monotonic() < deadline:
            time.sleep(2)
            windows = stored()
        assert windows == dict(produced)
