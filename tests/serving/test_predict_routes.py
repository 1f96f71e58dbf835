"""POST /predict and /predict/batch over HTTP, checked against ForestModel and the feature module."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from patternalarm.features import FEATURE_NAMES
from patternalarm.history_features import EMPTY, HISTORY_FEATURE_NAMES, MODEL_FEATURE_NAMES
from serving.forest_model import ForestModel
from tests.serving import factories
from tests.serving.factories import expected_features

pytestmark = pytest.mark.integration  # real PostgreSQL and MLflow


def test_predict_matches_forest_model(client: TestClient, forests: dict[str, Path], champion: str) -> None:
    forest = ForestModel.load(forests["v_a"])
    for body in (factories.card_testing_actor(), factories.shopper_actor(), factories.fintech_actor()):
        resp = client.post("/predict", json=body)
        assert resp.status_code == 200, resp.text
        out = resp.json()
        row = expected_features(body)
        expected = float(forest.predict_proba(np.asarray([row]))[0])
        assert out["fraud_probability"] == expected
        assert out["is_fraud"] == (expected >= 0.5)
        assert out["model_version"] == champion and out["actor_id"] == body["actor_id"]
        assert out["transactions_analyzed"] == len(body["transactions"])
        assert out["total_amount"] == pytest.approx(sum(t["amount"] for t in body["transactions"]))
        assert out["time_window_sec"] == row[MODEL_FEATURE_NAMES.index("window_span_sec")]
        assert len(out["top_features"]) == 5
        importances = [f["importance"] for f in out["top_features"]]
        assert importances == sorted(importances, reverse=True)
        for reason in out["top_features"]:
            i = MODEL_FEATURE_NAMES.index(reason["feature"])
            assert reason["value"] == row[i] and reason["importance"] == float(forest.feature_importances[i])
        assert out["inference_time_ms"] > 0


def test_card_testing_is_flagged_with_its_pattern(client: TestClient) -> None:
    out = client.post("/predict", json=factories.card_testing_actor()).json()
    assert out["is_fraud"] is True and out["fraud_type"] == "card_testing"
    legit = client.post("/predict", json=factories.shopper_actor()).json()
    assert legit["is_fraud"] is False and legit["fraud_type"] is None


def test_probability_is_class_one_not_winning_confidence(client: TestClient, forests: dict[str, Path]) -> None:
    """A clearly legitimate actor must score near 0, not near 1 (the winning class's confidence)."""
    out = client.post("/predict", json=factories.shopper_actor()).json()
    proba_all = ForestModel.load(forests["v_a"]).predict_proba_all(
        np.asarray([expected_features(factories.shopper_actor())]))[0]
    assert out["fraud_probability"] == float(proba_all[1]) and out["fraud_probability"] < 0.5


def test_precomputed_features_score_like_transactions(client: TestClient) -> None:
    body = factories.card_testing_actor()
    row = expected_features(body)
    by_txns = client.post("/predict", json=body).json()
    by_features = client.post("/predict", json={"actor_id": body["actor_id"], "domain": "ecommerce",
                                                "features": dict(zip(MODEL_FEATURE_NAMES, row, strict=True))}).json()
    window_only = client.post("/predict", json={"actor_id": body["actor_id"], "domain": "ecommerce",
                                                "features": dict(zip(FEATURE_NAMES, row))}).json()
    for key in ("fraud_probability", "is_fraud", "fraud_type", "transactions_analyzed", "total_amount",
                "time_window_sec", "top_features"):
        assert by_features[key] == by_txns[key] == window_only[key], key


def test_history_features_reach_the_model_however_they_are_sent(client: TestClient, forests: dict[str, Path]) -> None:
    """`history` with transactions, `history` with window features, or all in `features`: one row,
    the model's own; without history the actor is scored with the empty history."""
    body = factories.fintech_actor()
    history = {n: (40.0 if "_count_" in n else 0.9 if "_rate_" in n else 250.0) for n in HISTORY_FEATURE_NAMES}
    row = expected_features({**body, "history": history})
    assert row[len(FEATURE_NAMES):] == [history[n] for n in HISTORY_FEATURE_NAMES]
    expected = float(ForestModel.load(forests["v_a"]).predict_proba(np.asarray([row]))[0])
    window = dict(zip(FEATURE_NAMES, row))
    outs = [client.post("/predict", json={**body, "history": history}).json(),
            client.post("/predict", json={"actor_id": "x", "domain": "fintech", "features": window,
                                          "history": history}).json(),
            client.post("/predict", json={"actor_id": "x", "domain": "fintech",
                                          "features": {**window, **history}}).json()]
    assert [o["fraud_probability"] for o in outs] == [expected] * 3
    without = client.post("/predict", json=body).json()
    assert expected_features(body)[len(FEATURE_NAMES):] == [EMPTY[n] for n in HISTORY_FEATURE_NAMES]
    assert without["fraud_probability"] == float(ForestModel.load(forests["v_a"]).predict_proba(
        np.asarray([expected_features(body)]))[0])


def test_optional_fields_may_be_null(client: TestClient) -> None:
    body = factories.shopper_actor()
    for t in body["transactions"]:
        t.update(payment_method=None, session_length_sec=None, country_from=None, country_to=None,
                 counterparty_id=None, device_id=None)
    body["request_id"] = None
    resp = client.post("/predict", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["fraud_probability"] >= 0.0


def test_threshold_is_configurable(champion: str, clean_db: Any, make_client: Callable[..., TestClient]) -> None:
    strict = make_client(fraud_threshold=1.0)
    lenient = make_client(fraud_threshold=0.0)
    body = factories.shopper_actor()
    assert strict.post("/predict", json=body).json()["is_fraud"] is False
    assert lenient.post("/predict", json=body).json()["is_fraud"] is True


def test_batch_is_one_vectorized_call_with_the_same_scores(client: TestClient, forests: dict[str, Path]) -> None:
    actors = [factories.card_testing_actor(f"user-ct-{i}", n=5 + i % 4) for i in range(5)] + \
             [factories.shopper_actor(f"user-s-{i}") for i in range(5)] + [factories.fintech_actor()]
    resp = client.post("/predict/batch", json={"predictions": actors, "request_id": "r-1"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["actors_analyzed"] == len(actors) and out["request_id"] == "r-1"
    expected = ForestModel.load(forests["v_a"]).predict_proba(np.asarray([expected_features(a) for a in actors]))
    assert [p["fraud_probability"] for p in out["predictions"]] == expected.tolist()
    assert [p["actor_id"] for p in out["predictions"]] == [a["actor_id"] for a in actors]
    singles = [client.post("/predict", json=a).json() for a in actors]
    assert [s["fraud_probability"] for s in singles] == [p["fraud_probability"] for p in out["predictions"]]
    assert out["total_inference_time_ms"] > 0


def test_oversize_batch_is_400(champion: str, clean_db: Any, make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_batch_size=3)
    actors = [factories.shopper_actor(f"u{i}") for i in range(4)]
    resp = client.post("/predict/batch", json={"predictions": actors})
    assert resp.status_code == 400
    assert "exceeds the limit of 3" in resp.json()["detail"]
    assert client.post("/predict/batch", json={"predictions": actors[:3]}).status_code == 200


def test_default_batch_limit_is_1000(client: TestClient) -> None:
    actor = factories.shopper_actor()
    assert client.post("/predict/batch", json={"predictions": [actor] * 1000}).status_code == 200
    assert client.post("/predict/batch", json={"predictions": [actor] * 1001}).status_code == 400


def _bad_bodies() -> list[tuple[str, Any]]:
    good = factories.shopper_actor()

    def with_txn(**change: Any) -> dict[str, Any]:
        body = json.loads(json.dumps(good))
        body["transactions"][0].update(change)
        return body

    both = {**good, "features": {n: 0.0 for n in FEATURE_NAMES}}
    short = {"actor_id": "a", "domain": "gaming", "features": {n: 0.0 for n in FEATURE_NAMES[:-1]}}
    partial_history = {"actor_id": "a", "domain": "gaming",
                       "features": {n: 0.0 for n in MODEL_FEATURE_NAMES[:-1]}}
    short_history = {**good, "history": {n: 0.0 for n in HISTORY_FEATURE_NAMES[1:]}}
    twice = {"actor_id": "a", "domain": "gaming", "features": {n: 0.0 for n in MODEL_FEATURE_NAMES},
             "history": dict(EMPTY)}
    return [
        ("missing actor", {k: v for k, v in good.items() if k != "actor_id"}),
        ("unknown domain", {**good, "domain": "crypto"}),
        ("empty transactions", {**good, "transactions": []}),
        ("neither source", {"actor_id": "a", "domain": "gaming"}),
        ("both sources", both),
        ("features missing one", short),
        ("features with part of the history", partial_history),
        ("history missing one", short_history),
        ("history sent twice", twice),
        ("amount string", with_txn(amount="ten")),
        ("amount missing", with_txn(amount=None)),
        ("bad timestamp", with_txn(timestamp="yesterday")),
        ("negative session", with_txn(session_length_sec=-1)),
        ("txn domain", with_txn(domain="crypto")),
        ("not an object", [1, 2, 3]),
    ]


@pytest.mark.parametrize("name,body", _bad_bodies(), ids=[n for n, _ in _bad_bodies()])
def test_bad_fields_are_422_with_details(client: TestClient, name: str, body: Any) -> None:
    resp = client.post("/predict", json=body)
    assert resp.status_code == 422, (name, resp.text)
    assert resp.json()["detail"], name


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_amounts_are_422(client: TestClient, literal: str) -> None:
    body = json.dumps(factories.shopper_actor()).replace('"amount": 120.0', f'"amount": {literal}')
    assert literal in body
    resp = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    feats = json.dumps({"actor_id": "a", "domain": "iot", "features": {n: 0.0 for n in FEATURE_NAMES}})
    feats = feats.replace('"txn_count": 0.0', f'"txn_count": {literal}')
    assert client.post("/predict", content=feats, headers={"content-type": "application/json"}).status_code == 422


def test_malformed_json_is_422_not_500(client: TestClient) -> None:
    resp = client.post("/predict", content=b'{"actor_id": ', headers={"content-type": "application/json"})
    assert resp.status_code == 422
    resp = client.post("/predict/batch", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert client.post("/predict", content=b"").status_code == 422


def test_batch_field_errors_name_the_item(client: TestClient) -> None:
    bad = factories.shopper_actor()
    bad["transactions"][0]["amount"] = "x"
    resp = client.post("/predict/batch", json={"predictions": [factories.shopper_actor(), bad]})
    assert resp.status_code == 422
    assert any(err["loc"][:3] == ["body", "predictions", 1] for err in resp.json()["detail"])


def test_huge_amounts_and_naive_times_do_not_break_scoring(client: TestClient) -> None:
    body = factories.fintech_actor()
    body["transactions"][0]["amount"] = 1e12
    body["transactions"][1]["timestamp"] = "2026-11-29T06:00:30"  # no offset: taken as UTC
    resp = client.post("/predict", json=body)
    assert resp.status_code == 200, resp.text
    assert math.isfinite(resp.json()["fraud_probability"])


@pytest.mark.parametrize("raw", [b"null", b"{}", b"[]", b'"text"', b"12", b'{"predictions": null}',
                                 b'{"predictions": [null]}', b'{"predictions": {"a": 1}}', b"[" * 5000 + b"]" * 5000,
                                 b'{"actor_id": "a", "domain": "iot", "transactions": [{"amount": 1e400}]}',
                                 b'{"actor_id": 5, "domain": ["iot"], "features": "all"}', b"\x00\x01"])
def test_garbage_is_a_client_error_never_500(client: TestClient, raw: bytes) -> None:
    for path in ("/predict", "/predict/batch"):
        resp = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert resp.status_code == 422, (path, raw[:40], resp.text[:200])
