"""POST /predict, POST /predict/batch, GET /predict/health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from serving import scoring
from serving.deps import BatchBody, MetricsDep, ModelDep, PolicyDep, PredictBody, StoreDep
from serving.schemas import BatchIn, BatchOut, ErrorOut, ModelHealthOut, PredictIn, PredictOut

router = APIRouter(tags=["scoring"])

# Bodies are parsed by serving.deps (pydantic-core JSON validation), so FastAPI does not see them as
# body parameters: declare them here; serving.app adds their schemas to the OpenAPI components.
REQUEST_MODELS = (PredictIn, BatchIn)


def _body_doc(model: type[BaseModel]) -> dict[str, object]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "no model loaded (none registered, or refused)"}}


def _json(model: BaseModel) -> Response:
    """Serialize once with pydantic-core; returning a Response skips FastAPI's re-validation of
    the output, which costs more than scoring a batch (the values are built by serving.scoring)."""
    return Response(content=model.model_dump_json(), media_type="application/json")


@router.post("/predict", response_model=PredictOut, responses=_ERRORS, openapi_extra=_body_doc(PredictIn))
async def predict(item: PredictBody, model: ModelDep, policy: PolicyDep, metrics: MetricsDep) -> Response:
    """Fraud probability of one actor from its recent transactions or its window aggregates."""
    out = scoring.predict_one(model, item, policy)
    metrics.observe_predictions("predict", [out.is_fraud], out.inference_time_ms)
    return _json(out)


@router.post("/predict/batch", response_model=BatchOut, openapi_extra=_body_doc(BatchIn),
             responses={**_ERRORS, 400: {"model": ErrorOut, "description": "batch over PA_MAX_BATCH_SIZE"}})
async def predict_batch(batch: BatchBody, model: ModelDep, policy: PolicyDep, metrics: MetricsDep) -> Response:
    """Many actors, one vectorized predict_proba call."""
    try:
        out = scoring.predict_batch(model, batch.predictions, policy, batch.request_id)
    except scoring.BatchTooLarge as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    metrics.batch_size.observe(out.actors_analyzed)
    metrics.observe_predictions("batch", [p.is_fraud for p in out.predictions], out.total_inference_time_ms)
    return _json(out)


@router.get("/predict/health", response_model=ModelHealthOut, responses={503: {"model": ModelHealthOut}})
async def model_health(store: StoreDep) -> JSONResponse:
    """What is serving, from where, since when, and the last version refused (if any)."""
    body = store.describe()
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.loaded else 503)
