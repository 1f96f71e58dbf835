"""Actor windows scored from the stream: the real job, its window scorer (streaming/window_scorer.py),
a real scoring service (`python -m serving` serving a Spark-trained forest registered in MLflow) and a
real PostgreSQL.

One job runs three phases in simulated event time, each with the same case (new actor ids):
a card tester (rule alert), a near miss with the same behaviour (no rule alert: suspicious_activity),
an ordinary shopper and an iot sensor.

1. service up: windows and the alert are scored with the model's version, severity per the rule;
   the near miss becomes exactly one suspicious_activity alert;
2. service stopped: the job keeps running, windows and the alert are stored `unscored`, as many as
   in phase 1 (nothing lost);
3. service started again: after the breaker's cool-down new windows are scored again, and the
   windows stored unscored in phase 2 are scored by the scorer's rescoring pass, their alert too.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.events import format_timestamp
from streaming import behaviours
from streaming.kafka_io import EventProducer
from tests.streaming.conftest import scored_run
from tests.streaming.job_process import DetectionJob
from tests.streaming.pattern_harness import SIM_START
from tests.support.scoring_service import ScoringService

COOLDOWN_S = 3
RESCORE_INTERVAL_S = 2
# The service's own is_fraud threshold; the test forests score card-testing bursts above it.
THRESHOLD = 0.5
PHASES = {"up": SIM_START, "outage": SIM_START + timedelta(days=10), "back": SIM_START + timedelta(days=20)}
WAIT_S = 240.0  # only ends a hang; the phases normally take seconds


def actors(phase_index: int) -> dict[str, int]:
    base = 8_100_000 + 10 * phase_index
    return {"tester": base + 1, "near_miss": base + 2, "shopper": base + 3, "sensor": base + 4}


def purchase(actor: int, moment: datetime, amount: float, session: float) -> dict[str, Any]:
    event = behaviours.ecommerce(random.Random(f"{actor}-{moment}"), actor, moment)
    event["cart_items"] = [{"product_id": "p-1", "category": "gift_cards", "price": amount, "quantity": 1}]
    event.update(amount=amount, session_duration_sec=session, timestamp=format_timestamp(moment))
    return event


def case_events(phase_index: int, start: datetime) -> list[dict[str, Any]]:
    ids = actors(phase_index)
    tiny = [(start + timedelta(seconds=5 + 8 * i), 0.5 + 0.7 * i) for i in range(5)]
    events = [purchase(ids["tester"], t, amount, 20.0) for t, amount in tiny]  # card_testing: 5 in a row
    events += [purchase(ids["near_miss"], t, amount, 20.0) for t, amount in tiny[:4]]  # one short of it
    events.append(purchase(ids["shopper"], start + timedelta(seconds=12), 64.90, 700.0))
    rng = random.Random(phase_index)
    for i in range(3):
        moment = start + timedelta(seconds=10 + 10 * i)
        events.append({**behaviours.iot(rng, ids["sensor"], moment), "timestamp": format_timestamp(moment)})
    return sorted(events, key=lambda e: e["timestamp"])


def flush_events(after: datetime) -> list[dict[str, Any]]:
    """Ordinary purchases a day later from many actors: every partition's watermark passes the case."""
    rng = random.Random(99)
    return [behaviours.ecommerce(rng, 9_800_000 + i, after + timedelta(seconds=i)) for i in range(64)]


@dataclass
class PhaseResult:
    windows: dict[str, tuple[float | None, str, str | None, bool]]  # role -> score, status, version, suspicious
    alerts: dict[str, list[tuple[str, float | None, str, str | None, str, str]]]  # role -> alerts
    open_suspicious: dict[str, int]  # role -> open suspicious_activity incidents
    job_alive: bool


def read_phase(settings: Settings, phase_index: int) -> PhaseResult:
    roles = {behaviours.actor_id("iot" if role == "sensor" else "ecommerce", n): role
             for role, n in actors(phase_index).items()}
    with psycopg2.connect(settings.db_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT actor_id, score, score_status, model_version, suspicious FROM actor_windows "
                    "WHERE actor_id = ANY(%s)", (list(roles),))
        windows = {roles[a]: (s, st, v, sus) for a, s, st, v, sus in cur.fetchall()}
        cur.execute("SELECT actor_id, pattern, score, score_status, model_version, severity, rule_severity "
                    "FROM alerts WHERE actor_id = ANY(%s) ORDER BY alert_id", (list(roles),))
        alerts: dict[str, list[Any]] = {}
        for actor, *rest in cur.fetchall():
            alerts.setdefault(roles[actor], []).append(tuple(rest))
        cur.execute("SELECT actor_id, count(*) FROM incidents WHERE actor_id = ANY(%s) "
                    "AND pattern = 'suspicious_activity' AND status = 'open' GROUP BY actor_id", (list(roles),))
        open_suspicious = {roles[a]: n for a, n in cur.fetchall()}
    return PhaseResult(windows, alerts, open_suspicious, job_alive=False)


def settled(result: PhaseResult, expect_scored: bool) -> bool:
    """Every case window is stored (and scored, when expected) and the card-testing alert is there
    with its final status."""
    if len(result.windows) < 4 or not any(a[0] == "card_testing" for a in result.alerts.get("tester", [])):
        return False
    tester_alert = next(a for a in result.alerts["tester"] if a[0] == "card_testing")
    if expect_scored:
        return tester_alert[2] == "scored" and "near_miss" in result.alerts
    return tester_alert[2] == "unscored"


def run_phase(producer: EventProducer, settings: Settings, job: DetectionJob, phase_index: int,
              start: datetime, expect_scored: bool) -> PhaseResult:
    for event in case_events(phase_index, start):
        producer.send(event)
    for round_ in range(2):
        for event in flush_events(start + timedelta(days=1, minutes=round_)):
            producer.send(event)
        producer.flush_now()
        time.sleep(2)
    deadline = time.monotonic() + WAIT_S
    result = read_phase(settings, phase_index)
    while not settled(result, expect_scored) and time.monotonic() < deadline:
        time.sleep(1)
        result = read_phase(settings, phase_index)
    time.sleep(2)  # a duplicate suspicious_activity or a late rule alert would show up now
    result = read_phase(settings, phase_index)
    result.job_alive = all(p is not None and p.poll() is None for p in (job.proc, job.scorer))
    return result


def wait_for_rescoring(settings: Settings, phase_index: int) -> PhaseResult:
    """Phase ``phase_index``'s windows once the rescoring pass has scored the tester's window."""
    deadline = time.monotonic() + WAIT_S
    result = read_phase(settings, phase_index)
    while not settled(result, expect_scored=True) and time.monotonic() < deadline:
        time.sleep(1)
        result = read_phase(settings, phase_index)
    time.sleep(2)  # a duplicate suspicious_activity would show up now
    return read_phase(settings, phase_index)


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PhaseResult | str]]:
    var_dir = tmp_path_factory.mktemp("scoring")
    with scored_run(var_dir) as (settings, service, version):
        # the job's settings on top of the scored run's
        os.environ.update(PA_IDLE_TIMEOUT_S="0", PA_SCORING_COOLDOWN_S=str(COOLDOWN_S),
                          PA_SUSPICIOUS_THRESHOLD=str(THRESHOLD), PA_RESCORE_INTERVAL_S=str(RESCORE_INTERVAL_S))
        settings = config.load()
        job = DetectionJob(settings, var_dir / "job.log")
        job.start(resume=False)
        producer = EventProducer(settings)
        try:
            results: dict[str, PhaseResult | str] = {"version": version}
            results["up"] = run_phase(producer, settings, job, 0, PHASES["up"], expect_scored=True)
            service.stop()
            results["outage"] = run_phase(producer, settings, job, 1, PHASES["outage"], expect_scored=False)
            restart(service)
            results["back"] = run_phase(producer, settings, job, 2, PHASES["back"], expect_scored=True)
            results["rescored"] = wait_for_rescoring(settings, 1)
            yield results
        finally:
            producer.close()
            job.kill()


def restart(service: ScoringService) -> None:
    service.start()
    time.sleep(COOLDOWN_S + 1)  # the breaker opened during the outage probes again after its cool-down


def phase(phases: dict[str, Any], name: str) -> PhaseResult:
    result = phases[name]
    assert isinstance(result, PhaseResult)
    return result


def test_windows_and_alerts_are_scored_with_the_model_version(phases: dict[str, Any]) -> None:
    up, version = phase(phases, "up"), phases["version"]
    for role in ("tester", "near_miss", "shopper"):
        score, status, model_version, _ = up.windows[role]
        assert (status, model_version) == ("scored", version), f"{role}: {up.windows[role]}"
        assert 0.0 <= score <= 1.0
    assert up.windows["sensor"][:3] == (None, "not_applicable", None)
    [card] = [a for a in up.alerts["tester"] if a[0] == "card_testing"]
    _, score, status, model_version, severity, rule_severity = card
    assert (score, status, model_version) == (up.windows["tester"][0], "scored", version)
    expected = "CRITICAL" if score >= 0.9 else "MEDIUM" if score < 0.1 else "HIGH"  # docs/patterns.md, Severity
    assert (rule_severity, severity) == ("HIGH", expected)


def test_a_high_score_without_a_rule_alert_is_one_suspicious_activity_alert(phases: dict[str, Any]) -> None:
    up = phase(phases, "up")
    score, _, _, suspicious = up.windows["near_miss"]
    assert score >= THRESHOLD and suspicious, f"the test forest scored the near miss {score}; the case needs >= {THRESHOLD}"
    assert [a[0] for a in up.alerts["near_miss"]] == ["suspicious_activity"]
    assert up.alerts["near_miss"][0][1:4] == (score, "scored", phases["version"])
    assert up.open_suspicious.get("near_miss") == 1
    assert up.open_suspicious.get("tester") is None  # its rule alert explains the score
    assert "shopper" not in up.alerts and not up.windows["shopper"][3]


def test_an_outage_neither_blocks_nor_drops_windows_and_alerts(phases: dict[str, Any]) -> None:
    up, outage = phase(phases, "up"), phase(phases, "outage")
    assert outage.job_alive
    assert set(outage.windows) == set(up.windows)  # every window stored
    assert {r: w[1] for r, w in outage.windows.items()} == {
        "tester": "unscored", "near_miss": "unscored", "shopper": "unscored", "sensor": "not_applicable"}
    assert [(a[0], a[1], a[2], a[4]) for a in outage.alerts["tester"]] == [("card_testing", None, "unscored", "HIGH")]
    rule_alerts = {r: [a[0] for a in v if a[0] != "suspicious_activity"] for r, v in up.alerts.items()}
    assert {r: [a[0] for a in v] for r, v in outage.alerts.items()} == {r: v for r, v in rule_alerts.items() if v}


def test_windows_are_scored_again_once_the_service_is_back(phases: dict[str, Any]) -> None:
    back = phase(phases, "back")
    assert back.job_alive
    assert {r: w[1] for r, w in back.windows.items()} == {
        "tester": "scored", "near_miss": "scored", "shopper": "scored", "sensor": "not_applicable"}
    assert [a[0] for a in back.alerts["near_miss"]] == ["suspicious_activity"]


def test_windows_stored_unscored_are_scored_later_with_their_alerts(phases: dict[str, Any]) -> None:
    """The outage's windows, rescored once the service is back: the same outcome as if it had never
    been down (scores reach the card-testing alert; the near miss becomes suspicious_activity once)."""
    rescored, version = phase(phases, "rescored"), phases["version"]
    assert {r: w[1:3] for r, w in rescored.windows.items()} == {
        "tester": ("scored", version), "near_miss": ("scored", version), "shopper": ("scored", version),
        "sensor": ("not_applicable", None)}
    [card] = [a for a in rescored.alerts["tester"] if a[0] == "card_testing"]
    assert card[1:4] == (rescored.windows["tester"][0], "scored", version)
    assert [a[0] for a in rescored.alerts["near_miss"]] == ["suspicious_activity"]
    assert rescored.open_suspicious.get("near_miss") == 1
