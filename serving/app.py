"""The FastAPI application: factory, lifespan (engine, registry, first load, poller), middleware."""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from serving.db import make_engine
from serving.limits import BodyLimitMiddleware
from serving.metrics import Metrics, MetricsMiddleware
from serving.model_store import ModelStore, Poller
from serving.pipeline_metrics import PipelineCollector
from serving.registry import Registry, limit_http_retries
from serving.routes import incidents, ops, predict
from serving.scoring import ScoringPolicy
from serving.settings import ServingSettings

log = logging.getLogger("serving")


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts (uvicorn, or a TestClient block)."""
    settings = settings or ServingSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_http_retries(settings.registry_timeout_s)
        engine = make_engine(settings)
        registry = Registry(settings.resolved_mlflow_url(), settings.model_name, settings.model_alias)
        store = ModelStore(registry, settings.resolved_model_dir(), metrics)
        app.state.engine, app.state.store = engine, store
        poller = Poller(store, settings.model_poll_s)
        poller.start()  # its first refresh runs now: serve from the first request if we can
        bound = 3 * settings.registry_timeout_s
        if not await anyio.to_thread.run_sync(poller.first_done.wait, bound):
            log.warning("no answer from the registry within %d s; starting without a model", bound)
        # Everything imported so far (FastAPI, MLflow, numpy: ~100k objects) lives as long as the
        # process; frozen, the collector stops rescanning it, and a full collection drops from
        # ~45 ms (a p99 spike on the scoring path) to almost nothing.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(poller.stop)
            engine.dispose()

    app = FastAPI(title="PatternAlarm scoring service", version="1.0", lifespan=lifespan,
                  description="Fraud probability per actor from a Spark-trained forest evaluated in numpy; "
                              "alerts and incidents for analysts.")
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.engine = None
    metrics.registry.register(PipelineCollector(lambda: app.state.engine))
    app.state.policy = ScoringPolicy(threshold=settings.fraud_threshold, top_k=settings.top_features,
                                     max_batch=settings.max_batch_size)
    app.include_router(predict.router)
    app.include_router(incidents.router)
    app.include_router(ops.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own handler echoes the offending input, and a NaN, an inf or undecodable bytes
        there make the JSON encoder raise: the client's mistake would become a 500. Same body, with
        those values as text."""
        return JSONResponse({"detail": jsonable_encoder(_printable(exc.errors()))}, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(DBAPIError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """The database being down is not the client's fault, nor a bug: 503 with the cause."""
        log.warning("database error on %s: %s", request.url.path, exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JSONResponse({"detail": f"database unavailable: {first}"}, status_code=503)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    # Outermost last: metrics time everything, including bodies refused for size.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       on_reject=metrics.body_rejections.inc)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request models it cannot see (bodies parsed in serving.deps)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in predict.REQUEST_MODELS:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        app.openapi_schema = schema
    return app.openapi_schema


def _printable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:200]).decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value
