"""A small HTTP client for the scoring service's POST /predict/batch, made for a streaming job.

Standard library only (http.client, one keep-alive connection) so the Flink Python worker needs no
extra package. The job must neither block forever nor drop windows while the service is down, so:

* every request has a timeout (PA_SCORING_TIMEOUT_S);
* a failed batch is retried PA_SCORING_ATTEMPTS times in all, waiting PA_SCORING_BACKOFF_MS before
  the first retry and doubling the wait before each further one;
* when a batch has exhausted its tries, a circuit breaker opens: for PA_SCORING_COOLDOWN_S further
  batches come back unscored at once, without a request (an outage then costs the job one batch's
  retries, not every batch's); after the cool-down one request probes the service (no retries) and
  either closes the breaker or opens it for another cool-down.

A failed batch is never an exception for the caller: :meth:`ScoringClient.score` returns a result
whose ``scores`` is None and whose ``error`` says why, and the caller stores its windows as unscored.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence
from urllib.parse import urlsplit

log = logging.getLogger("patternalarm.scoring_client")

PREDICT_BATCH_PATH = "/predict/batch"


class ScoringError(Exception):
    """One failed request: connection refused or reset, timeout, non-200 answer, unreadable body.

    ``retryable`` is False for answers that say the request itself is wrong (4xx other than 408 and
    429): sending it again cannot help, and the service is up, so the breaker stays closed."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class WindowFeatures:
    """One actor window to score: what /predict/batch takes for an actor given window aggregates."""

    actor_id: str
    domain: str
    features: Mapping[str, float]


@dataclass(frozen=True)
class BatchResult:
    """Scores in request order and the model version, or None and the reason."""

    scores: list[float] | None
    model_version: str | None
    attempts: int
    error: str | None = None

    @property
    def scored(self) -> bool:
        return self.scores is not None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.2
    timeout_s: float = 2.0
    cooldown_s: float = 30.0

    def backoff(self, retry: int) -> float:
        """Wait before retry number ``retry`` (1-based): backoff_s, 2 x backoff_s, 4 x ..."""
        return self.backoff_s * (2 ** (retry - 1))


@dataclass
class CircuitBreaker:
    """Closed (requests flow) or open until ``open_until`` (no requests); the first call after the
    cool-down is a probe."""

    cooldown_s: float
    clock: Callable[[], float] = time.monotonic
    open_until: float | None = None
    opened: int = field(default=0)  # how many times it opened: for logs and tests

    def allows_request(self) -> bool:
        return self.open_until is None or self.clock() >= self.open_until

    def probing(self) -> bool:
        """The breaker has opened before and its cool-down is over: this call only probes."""
        return self.open_until is not None and self.clock() >= self.open_until

    def record_success(self) -> None:
        if self.open_until is not None:
            log.info("scoring service answers again: breaker closed")
        self.open_until = None

    def record_failure(self) -> None:
        self.open_until = self.clock() + self.cooldown_s
        self.opened += 1
        log.warning("scoring unavailable: breaker open for %.1f s (windows stored unscored)", self.cooldown_s)


class ScoringClient:
    """Scores micro-batches of windows through POST /predict/batch with retries and a breaker."""

    def __init__(self, base_url: str, api_key: str, policy: RetryPolicy,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"scoring URL {base_url!r} is not http(s)://host[:port]: set PA_SERVING_URL")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._base_path = parts.path.rstrip("/")
        self._api_key = api_key
        self.policy = policy
        self.breaker = CircuitBreaker(policy.cooldown_s, clock)
        self._sleep = sleep
        self._conn: http.client.HTTPConnection | None = None

    def score(self, windows: Sequence[WindowFeatures]) -> BatchResult:
        """Fraud probabilities of ``windows`` in order; never raises for an unavailable service."""
        if not windows:
            return BatchResult([], None, 0)
        if not self.breaker.allows_request():
            return BatchResult(None, None, 0, "breaker open: scoring service failed recently")
        attempts = 1 if self.breaker.probing() else max(1, self.policy.attempts)
        body = json.dumps({"predictions": [
            {"actor_id": w.actor_id, "domain": w.domain, "features": dict(w.features)} for w in windows]})
        error = ""
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self._sleep(self.policy.backoff(attempt - 1))
            try:
                scores, version = self._post(body, len(windows))
            except ScoringError as exc:
                error = str(exc)
                log.info("scoring attempt %d/%d failed: %s", attempt, attempts, error)
                if not exc.retryable:
                    return BatchResult(None, None, attempt, error)
                continue
            self.breaker.record_success()
            return BatchResult(scores, version, attempt)
        self.breaker.record_failure()
        return BatchResult(None, None, attempts, error)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.policy.timeout_s)
        return self._conn

    def _post(self, body: str, expected: int) -> tuple[list[float], str]:
        """One request on the keep-alive connection; any failure drops the connection (a timed-out
        or half-read connection cannot be reused) and becomes a ScoringError."""
        headers = {"Content-Type": "application/json", "X-API-Key": self._api_key}
        try:
            conn = self._connection()
            conn.request("POST", self._base_path + PREDICT_BATCH_PATH, body=body.encode(), headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ScoringError(f"{type(exc).__name__}: {exc}") from exc
        if response.status != 200:
            if response.will_close:
                self.close()
            retryable = response.status >= 500 or response.status in (408, 429)
            raise ScoringError(f"HTTP {response.status}: {payload[:200].decode(errors='replace')}", retryable)
        return _parse(payload, expected)


def _parse(payload: bytes, expected: int) -> tuple[list[float], str]:
    try:
        data = json.loads(payload)
        scores = [float(p["fraud_probability"]) for p in data["predictions"]]
        version = str(data["model_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ScoringError(f"unreadable /predict/batch answer: {exc}") from exc
    if len(scores) != expected:
        raise ScoringError(f"/predict/batch answered {len(scores)} predictions for {expected} windows")
    return scores, version
