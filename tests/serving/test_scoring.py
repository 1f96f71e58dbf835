"""serving.scoring without HTTP: features from the shared module, one predict per batch, the heuristics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from patternalarm.history_features import MODEL_FEATURE_NAMES as FEATURE_NAMES
from serving.forest_model import ForestModel
from serving.model_store import LoadedModel, ModelRefused, canary_matrix, validate
from serving.schemas import PredictIn
from serving.scoring import BatchTooLarge, ScoringPolicy, feature_row, fraud_type, predict_batch, predict_one, to_txn
from tests.serving import factories
from tests.serving.factories import expected_features

POLICY = ScoringPolicy(threshold=0.5, top_k=5, max_batch=1000)


class CountingForest:
    """The real forest, counting predict_proba calls (a wrapper, not a stand-in)."""

    def __init__(self, forest: ForestModel) -> None:
        self.forest = forest
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.forest, name)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        return self.forest.predict_proba(X)


def _loaded(forest: Any) -> LoadedModel:
    order = tuple(int(i) for i in np.argsort(-forest.feature_importances, kind="stable"))
    return LoadedModel(forest=forest, name="m", version="7", run_id="r", alias="champion", path=Path("x"),
                       loaded_at=datetime.now(timezone.utc), load_seconds=0.0, top_order=order)


@pytest.mark.parametrize("make_actor", [factories.card_testing_actor, factories.shopper_actor,
                                        factories.fintech_actor])
def test_features_equal_the_shared_module(make_actor: Callable[[], dict[str, Any]]) -> None:
    body = make_actor()
    assert feature_row(PredictIn.model_validate(body)) == expected_features(body)


def test_request_fields_map_onto_txn_columns() -> None:
    txn = to_txn(PredictIn.model_validate(factories.fintech_actor()).transactions[0])  # type: ignore[index]
    assert (txn.counterparty, txn.country_from, txn.country_to, txn.payment_method) == ("acct-m0", "US", "GB", "WIRE")
    shopper = to_txn(PredictIn.model_validate(factories.card_testing_actor()).transactions[0])  # type: ignore[index]
    assert (shopper.session_sec, shopper.device, shopper.amount) == (20.0, "fp-0", 0.5)


def test_batch_makes_one_predict_call(forests: dict[str, Path]) -> None:
    counting = CountingForest(ForestModel.load(forests["v_b"]))
    items = [PredictIn.model_validate(factories.card_testing_actor(f"u{i}")) for i in range(37)]
    out = predict_batch(_loaded(counting), items, POLICY)
    assert counting.calls == [37] and out.actors_analyzed == 37
    single = predict_one(_loaded(counting), items[0], POLICY)
    assert single.fraud_probability == out.predictions[0].fraud_probability


def test_batch_limit(forests: dict[str, Path]) -> None:
    items = [PredictIn.model_validate(factories.shopper_actor())] * 3
    with pytest.raises(BatchTooLarge, match="limit of 2"):
        predict_batch(_loaded(ForestModel.load(forests["v_a"])), items, ScoringPolicy(0.5, 5, 2))


def test_top_features_follow_importance(forests: dict[str, Path]) -> None:
    forest = ForestModel.load(forests["v_d"])
    out = predict_one(_loaded(forest), PredictIn.model_validate(factories.fintech_actor()),
                      ScoringPolicy(0.5, 3, 10))
    top = sorted(range(len(FEATURE_NAMES)), key=lambda i: -forest.feature_importances[i])[:3]
    assert [f.feature for f in out.top_features] == [FEATURE_NAMES[i] for i in top]


def _row(**values: float) -> list[float]:
    row = {**dict.fromkeys(FEATURE_NAMES, 0.0), "txn_count": 1.0, **values}
    return [row[n] for n in FEATURE_NAMES]


@pytest.mark.parametrize("row,domain,expected", [
    (_row(txn_count=6, small_amount_share=1.0), "ecommerce", "card_testing"),
    (_row(txn_count=6, small_amount_share=1.0), "gaming", "gold_farming"),
    (_row(distinct_devices=4), "ecommerce", "account_takeover"),
    (_row(distinct_counterparties=6), "fintech", "mule_fan_out"),
    (_row(txn_count=3, large_amount_share=1.0), "fintech", "structuring"),
    (_row(cross_border_share=1.0), "fintech", "laundering"),
    (_row(short_session_share=0.8), "ecommerce", "bot_checkout"),
    (_row(velocity_per_min=5), "gaming", "velocity_burst"),
    (_row(), "iot", "sensor_anomaly"),
    (_row(), "fintech", "anomalous_activity"),
])
def test_fraud_type_rules(row: list[float], domain: str, expected: str) -> None:
    assert fraud_type(row, domain) == expected


def test_validation_accepts_trained_forests_and_refuses_others(forests: dict[str, Path]) -> None:
    for name in ("v_a", "v_b", "v_c", "v_d"):
        validate(ForestModel.load(forests[name]))
    with pytest.raises(ModelRefused, match="missing: \\['domain_ecommerce'"):
        validate(ForestModel.load(forests["wrong_features"]))


def test_canary_covers_every_domain_and_is_finite() -> None:
    X = canary_matrix()
    assert X.shape[1] == len(FEATURE_NAMES) and np.all(np.isfinite(X))
    for d in ("fintech", "ecommerce", "gaming", "iot"):
        assert X[:, FEATURE_NAMES.index(f"domain_{d}")].max() == 1.0
