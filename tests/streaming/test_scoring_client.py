"""The stream's scoring client against a real local HTTP server that fails on purpose: retries with
exponential backoff, the circuit breaker (no requests while open, one probe after the cool-down),
timeouts, keep-alive, and score_windows (what the window scorer does with a batch)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from patternalarm.features import FEATURE_NAMES
from streaming import window_scorer
from streaming.scoring_client import RetryPolicy, ScoringClient, WindowFeatures

FEATURES = {name: 1.0 for name in FEATURE_NAMES}


@dataclass
class Script:
    """What the server answers, request by request: an HTTP status, or 'hang' (answer after the
    client's timeout). Past the end of the list it answers 200."""

    answers: list[int | str] = field(default_factory=list)
    requests: int = 0
    connections: int = 0
    bodies: list[dict] = field(default_factory=list)
    api_keys: list[str | None] = field(default_factory=list)
    hang_s: float = 1.0


@contextmanager
def scoring_server(script: Script) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real service

        def setup(self) -> None:
            super().setup()
            script.connections += 1

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.bodies.append(body)
            script.api_keys.append(self.headers.get("X-API-Key"))
            answer = script.answers[script.requests] if script.requests < len(script.answers) else 200
            script.requests += 1
            if answer == "hang":
                time.sleep(script.hang_s)
                answer = 200
            if answer == 200:
                out = {"model_version": "7", "predictions": [
                    {"actor_id": p["actor_id"], "fraud_probability": 0.1 * (i + 1)}
                    for i, p in enumerate(body["predictions"])]}
            else:
                out = {"detail": f"failing on purpose with {answer}"}
            payload = json.dumps(out).encode()
            self.send_response(int(answer))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class RecordingSleep:
    """Real sleeping, remembered: the test reads the backoff sequence instead of timing it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def windows(n: int) -> list[WindowFeatures]:
    return [WindowFeatures(f"actor-{i}", "ecommerce", FEATURES) for i in range(n)]


def client_for(url: str, sleep: RecordingSleep | None = None, **policy: float) -> ScoringClient:
    values = {"attempts": 3, "backoff_s": 0.05, "timeout_s": 0.5, "cooldown_s": 0.5, **policy}
    return ScoringClient(url, "k-test", RetryPolicy(**values), sleep=sleep or RecordingSleep())  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket closes


def test_scores_in_order_with_the_model_version_on_one_connection() -> None:
    script = Script()
    with scoring_server(script) as url:
        client = client_for(url)
        first, second = client.score(windows(3)), client.score(windows(2))
        client.close()
    assert first.scores == pytest.approx([0.1, 0.2, 0.3]) and first.model_version == "7" and first.attempts == 1
    assert second.scores == pytest.approx([0.1, 0.2])
    assert script.connections == 1  # keep-alive
    assert script.api_keys == ["k-test", "k-test"]
    assert [p["actor_id"] for p in script.bodies[0]["predictions"]] == ["actor-0", "actor-1", "actor-2"]
    assert script.bodies[0]["predictions"][0] == {"actor_id": "actor-0", "domain": "ecommerce", "features": FEATURES}


def test_retries_with_exponential_backoff_until_the_service_answers() -> None:
    script, sleep = Script(answers=[503, 500]), RecordingSleep()
    with scoring_server(script) as url:
        result = client_for(url, sleep, attempts=4).score(windows(2))
    assert result.scored and result.attempts == 3
    assert sleep.waits == pytest.approx([0.05, 0.10])
    assert script.requests == 3


def test_exhausted_retries_leave_the_batch_unscored_and_open_the_breaker() -> None:
    script, sleep = Script(answers=[503] * 3), RecordingSleep()
    with scoring_server(script) as url:
        client = client_for(url, sleep, cooldown_s=60)
        failed = client.score(windows(2))
        during_outage = [client.score(windows(1)) for _ in range(5)]
    assert failed.scores is None and failed.attempts == 3 and "HTTP 503" in (failed.error or "")
    assert sleep.waits == pytest.approx([0.05, 0.10])
    # open breaker: the next batches are unscored without a request and without waiting
    assert all(r.scores is None and r.attempts == 0 and "breaker open" in (r.error or "") for r in during_outage)
    assert script.requests == 3 and client.breaker.opened == 1


def test_after_the_cooldown_one_probe_closes_the_breaker_when_the_service_is_back() -> None:
    script = Script(answers=[503, 503, 503])
    with scoring_server(script) as url:
        client = client_for(url, cooldown_s=0.3)
        assert client.score(windows(1)).scores is None
        time.sleep(0.4)
        probe = client.score(windows(2))
        after = client.score(windows(1))
    assert probe.scored and probe.attempts == 1
    assert after.scored and client.breaker.open_until is None
    assert script.requests == 5


def test_a_failed_probe_reopens_the_breaker_after_one_request() -> None:
    script = Script(answers=[503] * 10)
    with scoring_server(script) as url:
        client = client_for(url, cooldown_s=0.3)
        client.score(windows(1))
        time.sleep(0.4)
        probe = client.score(windows(1))
        right_after = client.score(windows(1))
    assert probe.scores is None and probe.attempts == 1  # a probe is not retried
    assert right_after.attempts == 0 and client.breaker.opened == 2
    assert script.requests == 4


def test_a_hanging_service_times_out_instead_of_blocking() -> None:
    script = Script(answers=["hang", "hang"], hang_s=1.5)
    with scoring_server(script) as url:
        result = client_for(url, attempts=2, timeout_s=0.3).score(windows(1))
    assert result.scores is None and result.attempts == 2
    assert "timed out" in (result.error or "")


def test_a_refused_connection_is_an_unscored_batch_not_an_exception() -> None:
    result = client_for(f"http://127.0.0.1:{closed_port()}", attempts=2).score(windows(3))
    assert result.scores is None and result.attempts == 2 and "ConnectionRefused" in (result.error or "")


def test_a_rejected_request_is_not_retried_and_leaves_the_breaker_closed() -> None:
    script = Script(answers=[422])
    with scoring_server(script) as url:
        client = client_for(url)
        rejected = client.score(windows(1))
        next_batch = client.score(windows(1))
    assert rejected.scores is None and rejected.attempts == 1 and "HTTP 422" in (rejected.error or "")
    assert next_batch.scored and client.breaker.opened == 0


def window(actor_id: str, domain: str, values: list[float]) -> window_scorer.Window:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return window_scorer.Window(actor_id, domain, start, start + timedelta(minutes=1), 1,
                                dict(zip(FEATURE_NAMES, values)), ())


def test_score_windows_sends_only_what_the_model_applies_to() -> None:
    """iot windows are not_applicable and never sent; a non-finite feature is unscored, not sent
    (the service would refuse the whole batch); suspicious is score >= threshold."""
    script = Script()
    finite = [1.0] * len(FEATURE_NAMES)
    rows = [window("a-1", "ecommerce", finite), window("dev-1", "iot", finite), window("a-2", "gaming", finite),
            window("a-3", "fintech", [float("nan")] + finite[1:])]
    with scoring_server(script) as url:
        out = window_scorer.score_windows(client_for(url), rows, [dict(w.features) for w in rows], threshold=0.15)
    assert [p["actor_id"] for p in script.bodies[0]["predictions"]] == ["a-1", "a-2"]
    assert [(o.score, o.status, o.model_version, o.suspicious) for o in out] == [
        (pytest.approx(0.1), "scored", "7", False), (None, "not_applicable", None, False),
        (pytest.approx(0.2), "scored", "7", True), (None, "unscored", None, False)]


def test_score_windows_during_an_outage_marks_the_batch_unscored() -> None:
    finite = [1.0] * len(FEATURE_NAMES)
    rows = [window("a-1", "ecommerce", finite), window("d-1", "iot", finite)]
    out = window_scorer.score_windows(client_for(f"http://127.0.0.1:{closed_port()}", attempts=1),
                                      rows, [dict(w.features) for w in rows], threshold=0.5)
    assert [o.status for o in out] == ["unscored", "not_applicable"]
