"""GET /health, GET /predict/health, GET /metrics; 503 when no model or no database."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patternalarm.config import REPO_ROOT
from patternalarm.history_features import MODEL_FEATURE_NAMES as FEATURE_NAMES
from tests.serving import factories

pytestmark = pytest.mark.integration  # real PostgreSQL and MLflow


def test_health_is_200_with_real_checks(client: TestClient, champion: str) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok" and body["model_version"] == champion
    latest = max(p.stem for p in (REPO_ROOT / "sql" / "migrations").glob("*.sql"))
    assert body["database"]["ok"] and f"schema at {latest}" in body["database"]["detail"]
    assert body["model"]["ok"] and body["registry"]["ok"]


def test_model_health_describes_what_serves(client: TestClient, champion: str, model_name: str) -> None:
    body = client.get("/predict/health").json()
    assert body["loaded"] is True
    assert (body["model_name"], body["model_version"], body["registry_alias"]) == (model_name, champion, "champion")
    assert body["classes"] == [0, 1] and body["feature_names"] == list(FEATURE_NAMES)
    assert body["loaded_at"] and body["load_seconds"] >= 0 and body["num_trees"] == 12
    assert body["last_refusal"] is None and body["swaps"] == 1


def test_no_registered_model_is_503_with_a_clear_message(clean_db: Any, make_client: Callable[..., TestClient],
                                                        model_name: str) -> None:
    client = make_client()  # model_name never registered
    resp = client.post("/predict", json=factories.shopper_actor())
    assert resp.status_code == 503
    assert "no model registered" in resp.json()["detail"] and model_name in resp.json()["detail"]
    assert client.post("/predict/batch", json={"predictions": [factories.shopper_actor()]}).status_code == 503
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["database"]["ok"] is True and health.json()["model"]["ok"] is False
    assert "no model registered" in health.json()["model"]["detail"]
    model = client.get("/predict/health")
    assert model.status_code == 503 and model.json()["loaded"] is False
    # The body is validated first: a malformed request is the client's problem even without a model.
    assert client.post("/predict", json={"actor_id": "a"}).status_code == 422


def test_registry_down_is_503_naming_the_registry(clean_db: Any, make_client: Callable[..., TestClient]) -> None:
    client = make_client(core={"mlflow_url": "http://127.0.0.1:9"}, registry_timeout_s=2)
    resp = client.post("/predict", json=factories.shopper_actor())
    assert resp.status_code == 503 and "127.0.0.1:9" in resp.json()["detail"]
    health = client.get("/health").json()
    assert health["registry"]["ok"] is False and health["model"]["ok"] is False


def test_database_down_is_503_not_500(champion: str, make_client: Callable[..., TestClient]) -> None:
    client = make_client(core={"pg_port": 9}, db_timeout_s=1)
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["database"]["ok"] is False and health.json()["model"]["ok"] is True
    alerts = client.get("/alerts")
    assert alerts.status_code == 503 and "database unavailable" in alerts.json()["detail"]
    # Scoring never touches the database.
    assert client.post("/predict", json=factories.shopper_actor()).status_code == 200


def test_metrics_count_routes_predictions_and_swaps(client: TestClient, champion: str) -> None:
    client.post("/predict", json=factories.card_testing_actor())
    client.post("/predict", json=factories.shopper_actor())
    client.post("/predict/batch", json={"predictions": [factories.shopper_actor()] * 3})
    client.get("/incidents/inc-missing")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    lines = set(text.splitlines())
    assert 'pa_http_requests_total{method="POST",route="/predict",status="200"} 2.0' in lines
    assert 'pa_http_requests_total{method="POST",route="/predict/batch",status="200"} 1.0' in lines
    assert 'pa_http_requests_total{method="GET",route="/incidents/{incident_id}",status="404"} 1.0' in lines
    assert 'pa_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in lines
    assert 'pa_predictions_total{outcome="fraud"} 1.0' in lines
    assert 'pa_predictions_total{outcome="legit"} 4.0' in lines
    assert f"pa_model_version {float(champion)}" in lines
    assert 'pa_model_swaps_total{result="swapped"} 1.0' in lines
    assert any(line.startswith('pa_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/predict"}')
               for line in lines)


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"PredictIn", "BatchIn", "TransactionIn", "PredictOut", "BatchOut"} <= set(schemas)
    body = paths["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/BatchIn"}
    for path in ("/predict", "/predict/batch", "/predict/health", "/health", "/metrics", "/alerts",
                 "/incidents", "/incidents/{incident_id}", "/incidents/{incident_id}/verdict",
                 "/incidents/{incident_id}/status", "/admin/reload"):
        assert path in paths, path


def test_hanging_registry_does_not_block_startup(clean_db: Any, make_client: Callable[..., TestClient],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that accepts connections and never answers: the service starts without a model
    (after a bounded wait) and says why, instead of never listening."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = make_client(core={"mlflow_url": f"http://127.0.0.1:{port}"}, registry_timeout_s=1)
        resp = client.post("/predict", json=factories.shopper_actor())
        assert resp.status_code == 503 and "has not been read" in resp.json()["detail"]
        assert client.get("/health").status_code == 503


def test_metrics_expose_pipeline_latency_alerts_and_open_incidents(client: TestClient, clean_db: Any) -> None:
    """Read from the tables at scrape time: event->emitted and event->stored quantiles of the rule
    alerts, window->score quantiles."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import text

    from tests.serving.utils import insert_alerts

    now = datetime.now(timezone.utc)
    rows = []
    for i, (emit_s, store_s) in enumerate([(0.4, 0.6), (0.5, 0.7), (0.6, 0.8)]):
        row = factories.alert_row(f"m{i}", actor_id="user-m", severity="HIGH")
        # stored_at defaults to the insert's clock: place the event store_s before it
        row.update(event_time=now - timedelta(seconds=store_s), first_event_time=now - timedelta(seconds=60),
                   emitted_at=now - timedelta(seconds=store_s - emit_s))
        rows.append(row)
    # made by the database from a window's score: the scoring path's latency, not the rule alerts'
    late = factories.alert_row("s0", pattern="suspicious_activity", actor_id="user-s", severity="MEDIUM")
    late.update(event_time=now - timedelta(seconds=30), first_event_time=now - timedelta(seconds=90),
                emitted_at=now - timedelta(seconds=1))
    insert_alerts(clean_db, [*rows, late])
    with clean_db.begin() as conn:  # two windows scored 2 s and 4 s after they ended
        for i, lag in enumerate((2.0, 4.0)):
            conn.execute(text("INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, "
                              "score, score_status, scored_at) VALUES (:a, 'ecommerce', :s, :e, 1, 0.1, 'scored', "
                              ":t)"), {"a": f"w-{i}", "s": now - timedelta(seconds=70), "e": now - timedelta(seconds=10),
                                       "t": now - timedelta(seconds=10 - lag)})
    lines = client.get("/metrics").text.splitlines()

    def value(prefix: str) -> float:
        (line,) = [x for x in lines if x.startswith(prefix)]
        return float(line.rsplit(" ", 1)[1])

    # stored latency: the insert happens a few ms after `now`, so a little above the planted value
    assert 0.7 <= value('pa_alert_latency_seconds{quantile="0.5",stage="stored"}') < 1.5
    assert value('pa_alert_latency_seconds{quantile="0.5",stage="emitted"}') == pytest.approx(0.5, abs=1e-6)
    assert value('pa_alert_latency_seconds{quantile="0.99",stage="emitted"}') == pytest.approx(0.598, abs=1e-6)
    assert value('pa_window_score_latency_seconds{quantile="0.5"}') == pytest.approx(3.0, abs=1e-6)
    assert value('pa_alerts_recent{pattern="card_testing",score_status="pending"}') == 3.0
    assert value('pa_incidents_unresolved{severity="HIGH",status="open"}') == 1.0


def test_metrics_still_answer_without_the_database(champion: str, make_client: Callable[..., TestClient]) -> None:
    client = make_client(core={"pg_port": 9}, db_timeout_s=1)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "pa_http_requests_total" in response.text and "pa_alert_latency_seconds" not in response.text
