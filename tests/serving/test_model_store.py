"""Hot swap through the real registry: alias moves, reloads under load, refusals, the poller."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from serving.forest_model import ForestModel
from serving.settings import ServingSettings
from tests.serving import factories
from tests.serving.factories import expected_features
from tests.serving.utils import API_KEY, live_server, wait_for

pytestmark = pytest.mark.integration  # real PostgreSQL and MLflow

AUTH = {"X-API-Key": API_KEY}
BODIES = [factories.card_testing_actor("user-ct"), factories.shopper_actor("user-s"), factories.fintech_actor("acct-f")]
BATCH = {"predictions": BODIES * 4}


def _expected_by_version(files: dict[str, Path]) -> dict[str, list[float]]:
    """Version -> the probabilities its forest gives BODIES: what any response must match exactly."""
    X = np.asarray([expected_features(b) for b in BODIES])
    return {version: ForestModel.load(path).predict_proba(X).tolist() for version, path in files.items()}


class Load:
    """Threads firing /predict and /predict/batch until stopped; every response is checked later."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.seen: list[tuple[str, list[float]]] = []  # (model_version, probabilities of BODIES)
        self.pool = ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self._fire, i) for i in range(threads)]

    def _fire(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    if (n + worker) % 2:
                        resp = http.post("/predict/batch", json=BATCH)
                        body = resp.json()
                        versions = {p["model_version"] for p in body["predictions"]} | {body["model_version"]}
                        if len(versions) != 1:
                            raise AssertionError(f"one batch served by several versions: {versions}")
                        record = (body["model_version"], [p["fraud_probability"] for p in body["predictions"][:3]])
                    else:
                        i = n % len(BODIES)
                        resp = http.post("/predict", json=BODIES[i])
                        body = resp.json()
                        record = (body["model_version"], [body["fraud_probability"]], i)  # type: ignore[assignment]
                    if resp.status_code != 200:
                        raise AssertionError(f"HTTP {resp.status_code}: {resp.text[:200]}")
                except Exception as exc:  # every kind of failure counts
                    with self.lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self.lock:
                    self.seen.append(record)  # type: ignore[arg-type]

    def versions(self) -> set[str]:
        with self.lock:
            return {r[0] for r in self.seen}

    def count(self, version: str) -> int:
        with self.lock:
            return sum(1 for r in self.seen if r[0] == version)

    def finish(self) -> None:
        self.stop.set()
        for f in self.futures:
            f.result()
        self.pool.shutdown()


def test_hot_swap_under_concurrent_load(champion: str, clean_db: Any, mlflow_client: MlflowClient,
                                        model_name: str, forests: dict[str, Path],
                                        make_settings: Callable[..., ServingSettings]) -> None:
    files = {champion: forests["v_a"]}
    with live_server(make_settings()) as url:
        load = Load(url)
        try:
            wait_for(lambda: load.count(champion) >= 20, "traffic on the first version")
            for name in ("v_b", "v_c", "v_d"):
                version = factories.register_version(mlflow_client, model_name, forests[name])
                files[version] = forests[name]
                resp = httpx.post(f"{url}/admin/reload", headers=AUTH, timeout=120)
                assert resp.status_code == 200, resp.text
                assert resp.json()["outcome"] == "swapped" and resp.json()["model_version"] == version
                wait_for(lambda v=version: load.count(v) >= 20, f"traffic on v{version}")  # type: ignore[misc]
            # A broken version: valid file, wrong feature count. Refused; the last good one keeps serving.
            broken = factories.register_version(mlflow_client, model_name, forests["wrong_features"])
            resp = httpx.post(f"{url}/admin/reload", headers=AUTH, timeout=120)
            assert resp.status_code == 409, resp.text
            assert resp.json()["outcome"] == "refused" and "features" in resp.json()["detail"]
            last_good = max(files, key=int)
            assert resp.json()["model_version"] == last_good
            before = load.count(last_good)
            wait_for(lambda: load.count(last_good) >= before + 20, "traffic after the refusal")
        finally:
            load.finish()
        health = httpx.get(f"{url}/predict/health").json()
        metrics = httpx.get(f"{url}/metrics").text

    assert load.failures == [], load.failures[:5]
    assert load.versions() == set(files), "every registered good version served, the broken one never"
    assert broken not in load.versions()
    assert health["model_version"] == last_good and health["last_refusal"]["version"] == broken
    assert health["swaps"] == 4 and health["refusals"] == 1
    assert 'pa_model_swaps_total{result="refused"} 1.0' in metrics
    # Each response carries the probabilities of the version it names: no request mixed two models.
    expected = _expected_by_version(files)
    for record in load.seen:
        version, probs = record[0], record[1]
        if len(record) == 3:  # single /predict of BODIES[i]
            assert probs == [expected[version][record[2]]]  # type: ignore[misc]
        else:
            assert probs == expected[version]


def test_refused_version_is_not_retried_until_forced(champion: str, clean_db: Any, mlflow_client: MlflowClient,
                                                     model_name: str, forests: dict[str, Path],
                                                     make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    broken = factories.register_version(mlflow_client, model_name, forests["wrong_features"])
    first = client.post("/admin/reload", headers=AUTH)
    assert first.status_code == 409 and first.json()["model_version"] == champion
    again = client.post("/admin/reload", headers=AUTH)
    assert again.status_code == 409 and "was refused" in again.json()["detail"]
    assert client.get("/predict/health").json()["refusals"] == 1  # remembered, not re-downloaded
    forced = client.post("/admin/reload", headers=AUTH, params={"force": "true"})
    assert forced.status_code == 409 and client.get("/predict/health").json()["refusals"] == 2
    assert client.post("/predict", json=factories.shopper_actor()).json()["model_version"] == champion
    assert client.get("/health").status_code == 200
    assert broken == str(int(champion) + 1)


def test_version_without_serving_artifact_is_refused(champion: str, clean_db: Any, mlflow_client: MlflowClient,
                                                     model_name: str, forests: dict[str, Path],
                                                     make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    factories.register_version(mlflow_client, model_name, forests["v_b"], artifact_name="model.npz")
    resp = client.post("/admin/reload", headers=AUTH)
    assert resp.status_code == 409 and "serving_model/forest.npz" in resp.json()["detail"]
    assert client.post("/predict", json=factories.shopper_actor()).json()["model_version"] == champion


def test_corrupt_file_is_refused(champion: str, clean_db: Any, mlflow_client: MlflowClient, model_name: str,
                                 tmp_path: Path, make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    factories.register_version(mlflow_client, model_name, junk)
    resp = client.post("/admin/reload", headers=AUTH)
    assert resp.status_code == 409 and client.get("/predict/health").json()["model_version"] == champion


def test_no_model_then_registration_is_served_after_reload(clean_db: Any, mlflow_client: MlflowClient,
                                                          model_name: str, forests: dict[str, Path],
                                                          make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    assert client.post("/admin/reload", headers=AUTH).status_code == 503
    version = factories.register_version(mlflow_client, model_name, forests["v_c"])
    resp = client.post("/admin/reload", headers=AUTH)
    assert resp.status_code == 200 and resp.json()["outcome"] == "swapped"
    assert client.post("/predict", json=factories.shopper_actor()).json()["model_version"] == version
    assert client.post("/admin/reload", headers=AUTH).json()["outcome"] == "unchanged"


def test_poller_follows_the_alias(champion: str, clean_db: Any, mlflow_client: MlflowClient, model_name: str,
                                  forests: dict[str, Path], make_client: Callable[..., TestClient]) -> None:
    client = make_client(model_poll_s=0.2)
    newer = factories.register_version(mlflow_client, model_name, forests["v_d"])
    wait_for(lambda: client.get("/predict/health").json()["model_version"] == newer, "the poller to swap")
    # Moving the alias back is a change too.
    mlflow_client.set_registered_model_alias(model_name, "champion", champion)
    wait_for(lambda: client.get("/predict/health").json()["model_version"] == champion, "the swap back")
    broken = factories.register_version(mlflow_client, model_name, forests["wrong_features"])
    wait_for(lambda: (client.get("/predict/health").json()["last_refusal"] or {}).get("version") == broken,
              "the poller to refuse")
    polls_before = client.get("/predict/health").json()["last_poll_at"]
    wait_for(lambda: client.get("/predict/health").json()["last_poll_at"] != polls_before, "another poll")
    health = client.get("/predict/health").json()
    assert health["refusals"] == 1 and health["model_version"] == champion


@pytest.mark.parametrize("removed", ["alias"])
def test_alias_removed_keeps_serving(champion: str, clean_db: Any, mlflow_client: MlflowClient, model_name: str,
                                     make_client: Callable[..., TestClient], removed: str) -> None:
    client = make_client()
    mlflow_client.delete_registered_model_alias(model_name, "champion")
    resp = client.post("/admin/reload", headers=AUTH)
    assert resp.status_code == 200 and resp.json()["outcome"] == "unchanged"
    assert "still serving" in resp.json()["detail"]
    assert client.post("/predict", json=factories.shopper_actor()).status_code == 200
