"""Scoring: request -> feature rows -> one vectorized predict_proba -> explained predictions.

Features come from ``patternalarm.features.compute`` (the definition Spark trains on and Flink
aggregates with) or, when the caller already has the window aggregates, from the request verbatim;
there is no second definition here. The score is the forest's probability of class 1 (fraud).

Hot path discipline (about a millisecond per call): no database, no I/O, one predict_proba per
request whatever the batch size, outputs assembled as plain dicts and validated into the public
models in one pydantic-core pass (several times cheaper than building models one by one), then
serialized once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from patternalarm import features, history_features
from patternalarm.features import FEATURE_NAMES, Txn
from patternalarm.history_features import MODEL_FEATURE_NAMES
from serving.model_store import LoadedModel
from serving.schemas import BatchOut, PredictIn, PredictOut, TransactionIn

_IDX = {name: i for i, name in enumerate(MODEL_FEATURE_NAMES)}
_COUNT, _SUM, _SPAN = _IDX["txn_count"], _IDX["amount_sum"], _IDX["window_span_sec"]


class BatchTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class ScoringPolicy:
    """What the service decides on top of the model's probability."""

    threshold: float
    top_k: int
    max_batch: int


def to_txn(t: TransactionIn) -> Txn:
    """Request transaction -> the shared Txn (contract names -> the feature columns)."""
    return Txn(amount=t.amount, event_time=t.timestamp, domain=t.domain, payment_method=t.payment_method,
               session_sec=t.session_length_sec, country_from=t.country_from, country_to=t.country_to,
               counterparty=t.counterparty_id, device=t.device_id)


def feature_row(item: PredictIn) -> list[float]:
    """MODEL_FEATURE_NAMES-ordered vector: window features computed from transactions or as sent,
    then the history features as sent (in ``history`` or in ``features``), else the empty history
    (history_features.EMPTY: an actor seen for the first time, as training saw first windows)."""
    if item.transactions is not None:
        return history_features.model_row(features.compute([to_txn(t) for t in item.transactions]), item.history)
    assert item.features is not None  # PredictIn guarantees exactly one source
    window = [item.features[name] for name in FEATURE_NAMES]
    if MODEL_FEATURE_NAMES[-1] in item.features:  # PredictIn: all history names or none
        return history_features.model_row(window, item.features)
    return history_features.model_row(window, item.history)


def fraud_type(row: Sequence[float], domain: str) -> str:
    """Most likely pattern, read off the features by fixed rules (first match wins).

    A heuristic, not a second model: it names the pattern whose signature dominates the window so an
    analyst knows where to look. Rules, in order:
      * >= 3 transactions, at least half under SMALL_AMOUNT: ``gold_farming`` in gaming, else
        ``card_testing``;
      * >= 3 distinct devices: ``account_takeover``;
      * >= 5 distinct counterparties: ``mule_fan_out``;
      * >= 2 transactions, at least half at or over LARGE_AMOUNT: ``structuring``;
      * at least half cross-border: ``laundering``;
      * at least half of the sessions short (bots): ``bot_checkout``;
      * >= 3 transactions per minute of activity: ``velocity_burst``;
      * otherwise ``sensor_anomaly`` for iot and ``anomalous_activity`` elsewhere.
    """
    f = row
    if f[_COUNT] >= 3 and f[_IDX["small_amount_share"]] >= 0.5:
        return "gold_farming" if domain == "gaming" else "card_testing"
    if f[_IDX["distinct_devices"]] >= 3:
        return "account_takeover"
    if f[_IDX["distinct_counterparties"]] >= 5:
        return "mule_fan_out"
    if f[_COUNT] >= 2 and f[_IDX["large_amount_share"]] >= 0.5:
        return "structuring"
    if f[_IDX["cross_border_share"]] >= 0.5:
        return "laundering"
    if f[_IDX["short_session_share"]] >= 0.5:
        return "bot_checkout"
    if f[_IDX["velocity_per_min"]] >= 3:
        return "velocity_burst"
    return "sensor_anomaly" if domain == "iot" else "anomalous_activity"


def explain(model: LoadedModel, row: Sequence[float], k: int) -> list[dict[str, Any]]:
    """The k features the forest relies on most (Spark's global importances) with this actor's values.

    Global importance, not a per-row attribution: it says which measurements drove the model overall
    and shows where this actor stands on them; cheap enough for the hot path.
    """
    names, imps = model.feature_names, model.importance_list
    return [{"feature": names[i], "value": row[i], "importance": imps[i]} for i in model.top_order[:k]]


def _prediction(model: LoadedModel, item: PredictIn, row: list[float], p: float, policy: ScoringPolicy,
                elapsed_ms: float) -> dict[str, Any]:
    """One prediction as a plain dict: validated into PredictOut/BatchOut in one pass by the caller
    (pydantic-core validating dicts is several times cheaper than constructing models one by one)."""
    is_fraud = p >= policy.threshold
    return {"request_id": item.request_id, "actor_id": item.actor_id, "fraud_probability": p,
            "is_fraud": is_fraud, "fraud_type": fraud_type(row, item.domain) if is_fraud else None,
            "top_features": explain(model, row, policy.top_k), "transactions_analyzed": int(row[_COUNT]),
            "total_amount": row[_SUM], "time_window_sec": row[_SPAN], "model_name": model.name,
            "model_version": model.version, "inference_time_ms": round(elapsed_ms, 4)}


def predict_one(model: LoadedModel, item: PredictIn, policy: ScoringPolicy) -> PredictOut:
    started = time.perf_counter()
    row = feature_row(item)
    p = float(model.predict_proba(np.asarray([row], dtype=np.float64))[0])
    return PredictOut.model_validate(_prediction(model, item, row, p, policy, (time.perf_counter() - started) * 1000))


def predict_batch(model: LoadedModel, items: list[PredictIn], policy: ScoringPolicy,
                  request_id: str | None = None) -> BatchOut:
    """Features for every actor, then ONE predict_proba over the stacked rows."""
    if len(items) > policy.max_batch:
        raise BatchTooLarge(f"batch of {len(items)} actors exceeds the limit of {policy.max_batch} "
                            "(PA_MAX_BATCH_SIZE); split it into several calls")
    started = time.perf_counter()
    rows = [feature_row(item) for item in items]
    proba = model.predict_proba(np.asarray(rows, dtype=np.float64)).tolist()
    total_ms = (time.perf_counter() - started) * 1000
    share = total_ms / len(items)
    out = [_prediction(model, item, row, p, policy, share)
           for item, row, p in zip(items, rows, proba, strict=True)]
    return BatchOut.model_validate({"request_id": request_id, "predictions": out, "model_version": model.version,
                                    "total_inference_time_ms": round((time.perf_counter() - started) * 1000, 4),
                                    "actors_analyzed": len(items)})
