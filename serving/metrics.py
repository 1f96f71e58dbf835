"""Prometheus metrics of one app instance, and the ASGI middleware that times every request.

Each app gets its own CollectorRegistry (tests build several apps in one process; the global
registry would refuse duplicate names). The middleware is plain ASGI rather than Starlette's
BaseHTTPMiddleware, which costs a task and a stream per request on the ~1 ms scoring path.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu seconds, open fds
        self.requests = Counter("pa_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("pa_http_request_duration_seconds",
                                 "Wall time from request start to response end, per route",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("pa_predictions", "Actors scored, by outcome", ["outcome"], registry=r)
        self.inference = Histogram("pa_inference_duration_seconds",
                                   "Feature building plus predict_proba per scoring call",
                                   ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("pa_batch_size", "Actors per /predict/batch call",
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 5000), registry=r)
        self.model_version = Gauge("pa_model_version",
                                   "Registry version number being served (0 = none loaded)", registry=r)
        self.model_info = Gauge("pa_model_info", "1 for the model version being served",
                                ["model_name", "version", "run_id"], registry=r)
        self.swaps = Counter("pa_model_swaps", "Model reload attempts that changed something, by result "
                             "(swapped, refused)", ["result"], registry=r)
        self.registry_errors = Counter("pa_registry_errors", "Polls of the MLflow registry that failed",
                                       registry=r)
        self.body_rejections = Counter("pa_body_too_large", "Requests refused with 413", registry=r)

    def observe_predictions(self, endpoint: str, outcomes: list[bool], inference_ms: float) -> None:
        fraud = sum(outcomes)
        if fraud:
            self.predictions.labels("fraud").inc(fraud)
        if len(outcomes) - fraud:
            self.predictions.labels("legit").inc(len(outcomes) - fraud)
        self.inference.labels(endpoint).observe(inference_ms / 1000)

    def served(self, name: str, version: str, run_id: str | None) -> None:
        """Point the version gauges at the model now serving."""
        self.model_info.clear()
        self.model_info.labels(model_name=name, version=version, run_id=run_id or "").set(1)
        try:
            self.model_version.set(float(version))
        except ValueError:
            self.model_version.set(-1)


class MetricsMiddleware:
    """Counts and times each HTTP request under its route template (``/incidents/{incident_id}``),
    so ids never become label values; unmatched paths share one label."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_label(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status[0])).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
