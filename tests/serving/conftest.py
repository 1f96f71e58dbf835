"""Serving test fixtures: a throw-away PostgreSQL database, a real MLflow tracking server, apps.

* Database: ``pa_test_serving_<random>`` is created from sql/migrations through
  ``patternalarm.stack.postgres.migrate`` (tests/support/databases.py) and dropped at the end;
  PA_PG_DATABASE points at it meanwhile.
* MLflow: the stack's server on 127.0.0.1:PA_MLFLOW_PORT when it answers, else our own
  ``mlflow server`` (airflow venv, sqlite backend, proxied artifacts in a temp dir, free port),
  stopped at the end. ``PA_TEST_OWN_MLFLOW=1`` always starts our own. Every test registers under a
  fresh model name, deleted afterwards, so a shared server only sees short-lived test models.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from patternalarm import config
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving import factories
from tests.serving.utils import API_KEY, free_port
from tests.support.databases import scratch_database


@pytest.fixture(scope="session")
def session_env() -> Iterator[pytest.MonkeyPatch]:
    mp = pytest.MonkeyPatch()
    mp.delenv("PA_DATABASE_URL", raising=False)
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def pg_database(session_env: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database migrated from sql/migrations (tests/support/databases.py), dropped afterwards."""
    with scratch_database(prefix="pa_test_serving") as settings:
        yield settings.pg_database


@pytest.fixture(scope="session")
def db_engine(pg_database: str) -> Iterator[Engine]:
    engine = create_engine(config.load().db_url(driver="postgresql+psycopg"))
    yield engine
    engine.dispose()


@pytest.fixture()
def clean_db(db_engine: Engine) -> Engine:
    with db_engine.begin() as conn:
        conn.execute(text("TRUNCATE alerts, incidents, incident_verdicts, actor_windows RESTART IDENTITY"))
    return db_engine


def _mlflow_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    shared = config.load().resolved_mlflow_url()
    if os.environ.get("PA_TEST_OWN_MLFLOW") != "1" and _mlflow_up(shared):
        yield shared
        return
    python = factories._envs("python", "airflow")
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination",
         str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    try:
        deadline = time.monotonic() + 120
        while not _mlflow_up(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start; see {root / 'server.log'}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group: the server and its gunicorn worker
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def forests() -> dict[str, Path]:
    return factories.forest_files()


@pytest.fixture()
def mlflow_client(mlflow_url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)


@pytest.fixture()
def model_name(mlflow_client: MlflowClient) -> Iterator[str]:
    name = f"pa-test-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        mlflow_client.delete_registered_model(name)
    except Exception:  # never registered in this test
        pass
    while factories.CREATED_RUNS:
        mlflow_client.delete_run(factories.CREATED_RUNS.pop())


@pytest.fixture()
def make_settings(pg_database: str, mlflow_url: str, model_name: str,
                  tmp_path: Path) -> Callable[..., ServingSettings]:
    def build(core: dict[str, Any] | None = None, **overrides: Any) -> ServingSettings:
        """``core`` overrides shared settings (patternalarm.config), the rest ServingSettings fields."""
        shared = {"pg_database": pg_database, "mlflow_url": mlflow_url, "model_name": model_name,
                  "api_key": API_KEY, **(core or {})}
        core_settings = dataclasses.replace(config.load(), **shared)
        values: dict[str, Any] = {"env": "test", "model_dir": str(tmp_path / "models"), "model_poll_s": 300.0}
        values.update(overrides)
        return ServingSettings(core=core_settings, **values)
    return build


@pytest.fixture()
def make_client(make_settings: Callable[..., ServingSettings]) -> Iterator[Callable[..., TestClient]]:
    """TestClient(s) with the lifespan running (first load, poller); closed after the test."""
    opened: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture()
def champion(mlflow_client: MlflowClient, model_name: str, forests: dict[str, Path]) -> str:
    """v_a registered and aliased champion; returns its version."""
    return factories.register_version(mlflow_client, model_name, forests["v_a"])


@pytest.fixture()
def client(champion: str, clean_db: Engine, make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture()
def auth() -> dict[str, str]:
    return {"X-API-Key": API_KEY}
