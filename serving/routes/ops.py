"""GET /health, GET /metrics, POST /admin/reload."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving import db
from serving.deps import ApiKeyDep, MetricsDep, StoreDep
from serving.schemas import CheckOut, ErrorOut, HealthOut, ReloadOut

router = APIRouter(tags=["operations"])

# Reload outcome -> HTTP status: a refusal is a conflict with what the registry says, an outage of
# the registry is a bad gateway, no model at all leaves the service unavailable.
_RELOAD_STATUS = {"swapped": 200, "unchanged": 200, "refused": 409, "registry_error": 502, "no_model": 503}


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(request: Request, store: StoreDep) -> JSONResponse:
    """200 when the database answers and a model is loaded; 503 naming what is wrong otherwise."""
    db_ok, db_detail = db.ping(request.app.state.engine)
    model = store.current
    model_check = (CheckOut(ok=True, detail=f"{model.name} v{model.version} ({model.alias})") if model
                   else CheckOut(ok=False, detail=store.unavailable_reason()))
    registry_check = CheckOut(ok=store.last_poll_error is None,
                              detail=store.last_poll_error or f"{store.registry.tracking_uri} read at "
                                                              f"{store.last_poll_at}")
    healthy = db_ok and model is not None
    body = HealthOut(status="ok" if healthy else "unhealthy", database=CheckOut(ok=db_ok, detail=db_detail),
                     model=model_check, model_version=model.version if model else None, registry=registry_check)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get("/metrics", response_model=str, response_class=Response)
async def metrics(m: MetricsDep) -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


@router.post("/admin/reload", response_model=ReloadOut,
             responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 409: {"model": ReloadOut},
                        502: {"model": ReloadOut}, 503: {"model": ReloadOut}})
async def reload(_: ApiKeyDep, store: StoreDep, force: bool = False) -> JSONResponse:
    """Re-read the alias now; load, validate and swap in a worker thread (requests keep flowing).
    ``force=true`` retries a version refused before."""
    result = await run_in_threadpool(store.refresh, force)
    body = ReloadOut(outcome=result.outcome, model_version=result.version,
                     previous_version=result.previous_version, detail=result.detail)
    return JSONResponse(body.model_dump(mode="json"), status_code=_RELOAD_STATUS[result.outcome])
