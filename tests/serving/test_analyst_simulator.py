"""The analyst simulator against the real service (uvicorn) and PostgreSQL: verdicts from ground truth
through the API, the delay, the error rate, and the labels the retraining DAG reads."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from patternalarm import config
from patternalarm.config import Settings
from serving.settings import ServingSettings
from streaming import analyst_simulator
from tests.serving.factories import T0, alert_row
from tests.serving.utils import API_KEY, insert_alerts, live_server

pytestmark = pytest.mark.integration  # real PostgreSQL, real uvicorn


def _truth(engine: Engine, instance_id: str, pattern: str, actor_id: str, txns: list[str],
           first_min: float, last_min: float) -> None:
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, transaction_ids,
                                      first_event_time, last_event_time)
            VALUES (:i, 'run-1', :p, 'ecommerce', :a, CAST(:t AS jsonb), :f, :l)"""),
            {"i": instance_id, "p": pattern, "a": actor_id, "t": json.dumps(txns),
             "f": T0 + timedelta(minutes=first_min), "l": T0 + timedelta(minutes=last_min)})


@pytest.fixture()
def world(clean_db: Engine) -> Engine:
    """Three incidents: one explained by a shared transaction id, one by overlapping time only (a
    score-only incident carries no injected transaction), one by nothing (a false positive)."""
    with clean_db.begin() as conn:
        conn.execute(text("TRUNCATE ground_truth"))
    insert_alerts(clean_db, [
        alert_row("a1", actor_id="user-1", minutes=0),
        alert_row("a2", actor_id="user-2", minutes=10),
        alert_row("a3", pattern="suspicious_activity", domain="fintech", actor_id="acct-1", minutes=20),
    ])
    _truth(clean_db, "inst-card", "card_testing", "user-1", ["a1-t2", "x-9"], -1, 0)
    _truth(clean_db, "inst-struct", "structuring", "acct-1", ["s-1", "s-2"], 19, 20.5)
    _truth(clean_db, "inst-other-actor", "card_testing", "user-9", ["a2-t1"], 9, 10)  # same txn id, not user-2
    return clean_db


@pytest.fixture()
def service(world: Engine, make_settings: Callable[..., ServingSettings]) -> Iterator[Settings]:
    """Shared settings pointing the simulator at a live service over the test database."""
    serving_settings = make_settings()
    with live_server(serving_settings) as url:
        yield dataclasses.replace(config.load(), serving_url=url, api_key=API_KEY,
                                  pg_database=serving_settings.core.pg_database)


def _verdicts(engine: Engine) -> dict[str, tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT i.actor_id, i.verdict, i.status, v.analyst FROM incidents i
              JOIN incident_verdicts v USING (incident_id)"""))
        return {r.actor_id: (r.verdict, r.status, r.analyst) for r in rows}


def test_verdicts_follow_ground_truth_through_the_api(service: Settings, world: Engine) -> None:
    sim = analyst_simulator.build(service, delay_s=0, error_rate=0.0, seed=7)
    tally = sim.review_once()

    assert (tally.fraud, tally.legit, tally.flipped) == (2, 1, 0)
    assert _verdicts(world) == {"user-1": ("fraud", "resolved", analyst_simulator.ANALYST),
                                "user-2": ("legit", "resolved", analyst_simulator.ANALYST),
                                "acct-1": ("fraud", "resolved", analyst_simulator.ANALYST)}
    by_actor = {d.incident_id.removeprefix("inc-"): d.instance_id for d in tally.decisions}
    assert by_actor == {"a1": "inst-card", "a2": None, "a3": "inst-struct"}
    assert sim.review_once().decisions == []  # resolved incidents are not judged twice


def test_incidents_wait_for_the_delay(service: Settings, world: Engine) -> None:
    sim = analyst_simulator.build(service, delay_s=3600, error_rate=0.0, seed=7)
    assert sim.review_once().decisions == []
    assert _verdicts(world) == {}
    with world.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incidents WHERE status = 'open'")).scalar_one() == 3
    for incident_id in list(sim.first_seen):  # an hour later, as far as the simulator can tell
        sim.first_seen[incident_id] -= 3600
    assert len(sim.review_once().decisions) == 3


def test_an_error_rate_of_one_flips_every_verdict(service: Settings, world: Engine) -> None:
    tally = analyst_simulator.build(service, delay_s=0, error_rate=1.0, seed=7).review_once()
    assert tally.flipped == 3
    assert {a: v[0] for a, v in _verdicts(world).items()} == {"user-1": "legit", "user-2": "fraud",
                                                             "acct-1": "legit"}


def test_errors_are_stable_per_incident_and_near_the_rate() -> None:
    ids = [f"inc-{i}" for i in range(20_000)]
    wrong = [analyst_simulator.errs(3, i, 0.1) for i in ids]
    assert 0.09 < sum(wrong) / len(ids) < 0.11
    assert wrong == [analyst_simulator.errs(3, i, 0.1) for i in ids]
    assert wrong != [analyst_simulator.errs(4, i, 0.1) for i in ids]


@pytest.mark.parametrize("kwargs, message", [({"error_rate": 1.5}, "between 0 and 1"),
                                             ({"delay_s": -1}, "must not be negative")])
def test_bad_settings_name_the_fix(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        analyst_simulator.build(config.load(), **kwargs)


def test_unreachable_service_names_the_fix() -> None:
    settings = dataclasses.replace(config.load(), serving_url="http://127.0.0.1:9", api_key=API_KEY)
    with pytest.raises(analyst_simulator.ApiError, match="make up"):
        analyst_simulator.build(settings, delay_s=0).review_once()
