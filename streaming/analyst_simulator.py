"""A simulated fraud analyst: gives verdicts on incidents from the generator's ground truth.

Why: retraining learns from analysts' verdicts (incident_verdicts), so an unattended `make demo` and
the tests need someone to give them. The simulator works like a person at the console would, through
the scoring service's API: it lists open incidents (GET /incidents), waits ``delay`` after it first
saw one (analysts are not instant, and the retraining DAG's label delay exists for that reason),
acknowledges it, reads its evidence (GET /incidents/{id}) and posts a verdict
(POST /incidents/{id}/verdict), which resolves the incident.

The verdict is ``fraud`` when an injected instance of the generator explains the incident: the same
partition key and either a shared transaction id or overlapping event times (one minute of slack,
the feature window). Score-only incidents (suspicious_activity) carry no pattern of their own, so
any instance of the actor counts. Analysts err: with probability ``error_rate`` the verdict is
flipped, decided by a hash of (seed, incident id), so a run is reproducible and a verdict does not
change when the simulator restarts.

Standard library only (urllib, and psql through patternalarm.stack.postgres for the ground truth),
so it runs from any of the project's virtualenvs.

    python -m streaming.analyst_simulator                  # until Ctrl-C, PA_ANALYST_* settings
    python -m streaming.analyst_simulator --once --delay 0 # label everything open now, then exit
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.stack import postgres

log = logging.getLogger("patternalarm.analyst")

ANALYST = "analyst-simulator"
PAGE_SIZE = 200
OVERLAP_SLACK = timedelta(minutes=1)  # the feature window: an alert on a window touching the instance


class ApiError(RuntimeError):
    """The scoring service refused or could not be reached; the message says which and how to fix."""


@dataclass(frozen=True)
class Truth:
    instance_id: str
    pattern: str
    actor_id: str
    transaction_ids: frozenset[str]
    first_event_time: datetime
    last_event_time: datetime


@dataclass
class Decision:
    incident_id: str
    verdict: str  # 'fraud' or 'legit'
    truth: str  # the verdict the ground truth gives
    instance_id: str | None
    flipped: bool


@dataclass
class Tally:
    """What the simulator did, for its log line and for callers (demo, tests)."""

    fraud: int = 0
    legit: int = 0
    flipped: int = 0
    decisions: list[Decision] = field(default_factory=list)

    def add(self, d: Decision) -> None:
        self.decisions.append(d)
        self.fraud += d.verdict == "fraud"
        self.legit += d.verdict == "legit"
        self.flipped += d.flipped


class IncidentApi:
    """The few calls an analyst makes, over plain HTTP with the API key."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                     headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ApiError(f"{method} {path} -> {exc.code}: {detail}") from exc
        except OSError as exc:
            raise ApiError(f"{method} {path}: the scoring service at {self.base_url} is unreachable ({exc}); "
                           "start it with `make up` or set PA_SERVING_URL") from exc

    def open_incidents(self) -> list[dict[str, Any]]:
        """Every incident without a verdict yet (open or acknowledged), all pages."""
        found: list[dict[str, Any]] = []
        for status in ("open", "acknowledged"):
            offset = 0
            while True:
                query = urllib.parse.urlencode({"status": status, "limit": PAGE_SIZE, "offset": offset})
                page = self._call("GET", f"/incidents?{query}")
                found += page["items"]
                offset += len(page["items"])
                if not page["items"] or offset >= page["total"]:
                    break
        return found

    def incident(self, incident_id: str) -> dict[str, Any]:
        return self._call("GET", f"/incidents/{urllib.parse.quote(incident_id, safe='')}")

    def acknowledge(self, incident_id: str) -> None:
        self._call("POST", f"/incidents/{urllib.parse.quote(incident_id, safe='')}/status",
                   {"status": "acknowledged"})

    def verdict(self, incident_id: str, verdict: str, note: str) -> None:
        self._call("POST", f"/incidents/{urllib.parse.quote(incident_id, safe='')}/verdict",
                   {"verdict": verdict, "note": note, "analyst": ANALYST})


def load_truth(settings: Settings, actor_ids: Iterable[str]) -> dict[str, list[Truth]]:
    """Ground-truth instances of these partition keys, by key (one query)."""
    actors = sorted(set(actor_ids))
    if not actors:
        return {}
    rows = postgres.psql(settings, f"""
        SELECT coalesce(json_agg(json_build_object(
                 'instance_id', instance_id, 'pattern', pattern, 'actor_id', actor_id,
                 'transaction_ids', transaction_ids, 'first', first_event_time, 'last', last_event_time)), '[]')
          FROM ground_truth WHERE actor_id IN ({', '.join(postgres.sql_literal(a) for a in actors)})""")
    by_actor: dict[str, list[Truth]] = {}
    for r in json.loads(rows or "[]"):
        by_actor.setdefault(r["actor_id"], []).append(Truth(
            r["instance_id"], r["pattern"], r["actor_id"], frozenset(r["transaction_ids"]),
            datetime.fromisoformat(r["first"]), datetime.fromisoformat(r["last"])))
    return by_actor


def explaining_instance(incident: dict[str, Any], candidates: list[Truth]) -> Truth | None:
    """The injected instance behind the incident, if any: shared transaction or overlapping time."""
    txns = {str(t) for a in incident.get("alerts", []) for t in a.get("transaction_ids", [])}
    first = datetime.fromisoformat(incident["first_event_time"])
    last = datetime.fromisoformat(incident["last_event_time"])
    for truth in candidates:
        if txns & truth.transaction_ids:
            return truth
    for truth in candidates:
        if truth.first_event_time - OVERLAP_SLACK <= last and first <= truth.last_event_time + OVERLAP_SLACK:
            return truth
    return None


def errs(seed: int, incident_id: str, error_rate: float) -> bool:
    """Whether the analyst gets this incident wrong: a stable draw per (seed, incident)."""
    digest = hashlib.sha256(f"{seed}:{incident_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < error_rate


def decide(incident: dict[str, Any], candidates: list[Truth], seed: int, error_rate: float) -> Decision:
    instance = explaining_instance(incident, candidates)
    truth = "fraud" if instance else "legit"
    flipped = errs(seed, incident["incident_id"], error_rate)
    verdict = ("legit" if truth == "fraud" else "fraud") if flipped else truth
    return Decision(incident["incident_id"], verdict, truth, instance.instance_id if instance else None, flipped)


@dataclass
class AnalystSimulator:
    settings: Settings
    api: IncidentApi
    delay_s: float
    error_rate: float
    seed: int
    first_seen: dict[str, float] = field(default_factory=dict)

    def due(self, incidents: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """The incidents this analyst has looked at for at least ``delay_s`` (remembering new ones)."""
        for inc in incidents:
            self.first_seen.setdefault(inc["incident_id"], now)
        return [i for i in incidents if now - self.first_seen[i["incident_id"]] >= self.delay_s]

    def review_once(self) -> Tally:
        """One pass: every due incident gets acknowledged, read and judged."""
        tally = Tally()
        due = self.due(self.api.open_incidents(), time.monotonic())
        truth = load_truth(self.settings, (i["actor_id"] for i in due))
        for summary in due:
            if summary["status"] == "open":
                self.api.acknowledge(summary["incident_id"])
            detail = self.api.incident(summary["incident_id"])
            decision = decide(detail, truth.get(detail["actor_id"], []), self.seed, self.error_rate)
            note = (f"simulated analyst from ground truth (instance {decision.instance_id or 'none'}; "
                    f"error rate {self.error_rate:g})")
            self.api.verdict(decision.incident_id, decision.verdict, note)
            self.first_seen.pop(decision.incident_id, None)
            tally.add(decision)
        return tally


def build(settings: Settings, delay_s: float | None = None, error_rate: float | None = None,
          seed: int | None = None) -> AnalystSimulator:
    rate = settings.analyst_error_rate if error_rate is None else error_rate
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"error rate {rate} must be between 0 and 1 (PA_ANALYST_ERROR_RATE, e.g. 0.05)")
    delay = settings.analyst_delay_s if delay_s is None else delay_s
    if delay < 0:
        raise ValueError(f"delay {delay} s must not be negative (PA_ANALYST_DELAY_S)")
    return AnalystSimulator(settings, IncidentApi(settings.resolved_serving_url(), settings.api_key),
                            delay, rate, settings.generator_seed if seed is None else seed)


def run(sim: AnalystSimulator, poll_s: float, once: bool) -> Tally:
    total = Tally()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    while True:
        try:
            tally = sim.review_once()
        except ApiError as exc:
            if once:
                raise
            log.warning("%s; retrying in %.0f s", exc, poll_s)
            tally = Tally()
        for d in tally.decisions:
            total.add(d)
        if tally.decisions:
            log.info("verdicts: %d fraud, %d legit (%d deliberately wrong)", tally.fraud, tally.legit, tally.flipped)
        if once or stop["now"]:
            return total
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=None, help="seconds before judging a new incident")
    parser.add_argument("--error-rate", type=float, default=None, help="share of verdicts given wrong (0-1)")
    parser.add_argument("--seed", type=int, default=None, help="seed of which verdicts are wrong")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sim = build(config.load(), args.delay, args.error_rate, args.seed)
        total = run(sim, args.poll, args.once)
    except (ValueError, ApiError) as exc:
        print(f"analyst simulator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    print(json.dumps({"fraud": total.fraud, "legit": total.legit, "deliberately_wrong": total.flipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
