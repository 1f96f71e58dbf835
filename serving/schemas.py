"""Request, stored and public models of the scoring service.

Request models (``*In``) say what clients may send and reject everything else with a 422 that names
the field; stored models (``*Record``) are rows as PostgreSQL holds them; public models (``*Public``,
``*Out``) are what the API promises to return. Keeping the three apart lets the schema grow without
leaking internal columns and lets the API evolve without touching the tables.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from patternalarm.events import DOMAINS
from patternalarm.features import FEATURE_NAMES
from patternalarm.history_features import HISTORY_FEATURE_NAMES

Domain = Literal[DOMAINS]  # type: ignore[valid-type]
Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
Status = Literal["open", "acknowledged", "resolved"]
VerdictValue = Literal["fraud", "legit"]

# Finite and bounded: NaN, +/-inf and amounts whose sums overflow are client mistakes (422), and the
# evaluator refuses NaN rather than guessing which branch it would take.
Amount = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
FeatureValue = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
OptionalText = Annotated[str | None, Field(default=None, max_length=200)]


# --- scoring: requests ---------------------------------------------------------------------------

class TransactionIn(BaseModel):
    """One transaction of the actor, in the field names of the event contract where they exist."""

    transaction_id: ShortText
    amount: Amount
    currency: Annotated[str, Field(min_length=1, max_length=16)]
    timestamp: datetime = Field(description="ISO-8601; a time without offset is taken as UTC")
    domain: Domain
    payment_method: OptionalText = None
    session_length_sec: Annotated[float | None, Field(allow_inf_nan=False, ge=0.0, le=1e9)] = None
    country_from: OptionalText = None
    country_to: OptionalText = None
    counterparty_id: OptionalText = None
    device_id: OptionalText = None

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Naive and aware times must not meet in one subtraction, so naive ones become UTC."""
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class PredictIn(BaseModel):
    """One actor: its recent transactions, or the window aggregates the stream already computed."""

    actor_id: ShortText
    domain: Domain
    transactions: Annotated[list[TransactionIn] | None, Field(default=None, min_length=1)] = None
    features: dict[str, FeatureValue] | None = Field(
        default=None, description=f"the window aggregates: exactly these keys: {', '.join(FEATURE_NAMES)}; "
                                  "optionally also every history feature (then leave out 'history')")
    history: dict[str, FeatureValue] | None = Field(
        default=None, description="the actor's history features (what streaming/history_lookup.py computes), "
                                  f"exactly these keys: {', '.join(HISTORY_FEATURE_NAMES)}. Absent: the actor "
                                  "is scored as seen for the first time (counts 0, means and rates -1)")
    request_id: OptionalText = None

    @model_validator(mode="after")
    def _one_source(self) -> PredictIn:
        if (self.transactions is None) == (self.features is None):
            raise ValueError("send either 'transactions' (a non-empty list) or 'features' (the window "
                             "aggregates), not both and not neither")
        if self.features is not None:
            window = set(FEATURE_NAMES)
            given_history = set(self.features) & set(HISTORY_FEATURE_NAMES)
            allowed = window | (set(HISTORY_FEATURE_NAMES) if given_history else set())
            missing = [n for n in FEATURE_NAMES if n not in self.features]
            missing += [n for n in HISTORY_FEATURE_NAMES if given_history and n not in self.features]
            unknown = sorted(set(self.features) - allowed)
            if missing or unknown:
                raise ValueError(f"'features' must have exactly the window feature names, plus all history "
                                 f"feature names or none; missing: {missing or 'none'}; unknown: {unknown or 'none'}")
            if given_history and self.history is not None:
                raise ValueError("history features came both in 'features' and in 'history': send them once")
        if self.history is not None and set(self.history) != set(HISTORY_FEATURE_NAMES):
            missing = [n for n in HISTORY_FEATURE_NAMES if n not in self.history]
            unknown = sorted(set(self.history) - set(HISTORY_FEATURE_NAMES))
            raise ValueError(f"'history' must have exactly the history feature names; missing: {missing or 'none'}; "
                             f"unknown: {unknown or 'none'}")
        return self


class BatchIn(BaseModel):
    predictions: Annotated[list[PredictIn], Field(min_length=1)]
    request_id: OptionalText = None


# --- scoring: public -----------------------------------------------------------------------------

class FeatureReason(BaseModel):
    feature: str
    value: float
    importance: float = Field(description="the model's (Spark) feature importance, summing to 1")


class PredictOut(BaseModel):
    request_id: str | None = None
    actor_id: str
    fraud_probability: float = Field(description="probability of class 1 (fraud)")
    is_fraud: bool
    fraud_type: str | None = Field(description="most likely pattern when is_fraud (heuristic, see "
                                               "serving.scoring.fraud_type), else null")
    top_features: list[FeatureReason]
    transactions_analyzed: int
    total_amount: float
    time_window_sec: float
    model_name: str
    model_version: str
    inference_time_ms: float = Field(description="feature building plus predict_proba; in a batch, this "
                                                 "actor's equal share of the batch's time")


class BatchOut(BaseModel):
    request_id: str | None = None
    predictions: list[PredictOut]
    model_version: str
    total_inference_time_ms: float
    actors_analyzed: int


# --- model and service state ---------------------------------------------------------------------

class Refusal(BaseModel):
    version: str
    run_id: str | None
    reason: str
    at: datetime


class ModelHealthOut(BaseModel):
    loaded: bool
    model_name: str
    registry_alias: str
    registry_uri: str
    model_version: str | None = None
    run_id: str | None = None
    classes: list[int] = Field(default_factory=list)
    feature_names: list[str] = Field(default_factory=list)
    num_trees: int | None = None
    loaded_at: datetime | None = None
    load_seconds: float | None = None
    last_poll_at: datetime | None = None
    last_poll_error: str | None = None
    last_refusal: Refusal | None = None
    swaps: int = 0
    refusals: int = 0
    detail: str | None = None


class CheckOut(BaseModel):
    ok: bool
    detail: str


class HealthOut(BaseModel):
    status: Literal["ok", "unhealthy"]
    database: CheckOut
    model: CheckOut
    model_version: str | None
    registry: CheckOut


class ReloadOut(BaseModel):
    outcome: Literal["swapped", "unchanged", "refused", "no_model", "registry_error"]
    model_version: str | None = Field(description="the version serving after the reload")
    previous_version: str | None
    detail: str


# --- alerts and incidents: requests ----------------------------------------------------------------

class VerdictIn(BaseModel):
    verdict: VerdictValue
    note: Annotated[str | None, Field(default=None, max_length=2000)] = None
    analyst: Annotated[str, Field(min_length=1, max_length=100)]


class StatusIn(BaseModel):
    status: Status


# --- alerts and incidents: stored ------------------------------------------------------------------

class AlertRecord(BaseModel):
    """A row of ``alerts`` as the Flink sink wrote it."""

    model_config = ConfigDict(from_attributes=True)

    alert_id: str
    pattern: str
    domain: str
    actor_id: str
    severity: str
    score: float | None
    score_status: str
    model_version: str | None
    first_event_time: datetime
    event_time: datetime
    emitted_at: datetime
    stored_at: datetime
    transaction_ids: list[Any]
    measures: dict[str, Any]
    incident_id: str | None


class IncidentRecord(BaseModel):
    """A row of ``incidents`` as the grouping trigger and the verdict endpoint maintain it."""

    model_config = ConfigDict(from_attributes=True)

    incident_id: str
    pattern: str
    domain: str
    actor_id: str
    severity: str
    score: float | None
    first_event_time: datetime
    last_event_time: datetime
    alert_count: int
    evidence: list[Any]
    status: str
    verdict: str | None
    verdict_note: str | None
    verdict_by: str | None
    verdict_at: datetime | None
    created_at: datetime
    updated_at: datetime


class VerdictRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    verdict_id: int
    incident_id: str
    verdict: str
    note: str | None
    analyst: str
    created_at: datetime


# --- alerts and incidents: public ------------------------------------------------------------------

class AlertPublic(BaseModel):
    alert_id: str
    pattern: str
    domain: str
    actor_id: str
    severity: Severity
    score: float | None
    score_status: str
    model_version: str | None
    first_event_time: datetime
    event_time: datetime
    transaction_ids: list[Any]
    measures: dict[str, Any]
    incident_id: str | None


class IncidentPublic(BaseModel):
    """An incident in a list: what an analyst triages on, without the evidence payload."""

    incident_id: str
    pattern: str
    domain: str
    actor_id: str
    severity: Severity
    score: float | None
    first_event_time: datetime
    last_event_time: datetime
    alert_count: int
    status: Status
    verdict: VerdictValue | None
    verdict_note: str | None
    verdict_by: str | None
    verdict_at: datetime | None
    updated_at: datetime


class VerdictPublic(BaseModel):
    verdict: VerdictValue
    note: str | None
    analyst: str
    created_at: datetime


class IncidentDetailPublic(IncidentPublic):
    evidence: list[Any]
    alerts: list[AlertPublic]
    verdicts: list[VerdictPublic] = Field(description="every verdict given, oldest first")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="rows matching the filters, ignoring limit and offset")
    limit: int
    offset: int


class ErrorOut(BaseModel):
    detail: str
