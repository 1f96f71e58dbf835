"""A real scoring service for tests of other components: `python -m serving` in the serving venv,
serving a real Spark-trained forest registered in MLflow under a throw-away model name.

Standard library only on the caller's side, so the streaming tests (streaming venv, no FastAPI or
MLflow) can use it: registering and deleting the model run as a subprocess in the serving venv,
reusing tests/serving/factories.py (the forests it builds and caches, ``register_version``).

    with registered_model(mlflow_url) as (name, version):
        with scoring_service(settings, mlflow_url, name, log_path) as service:
            ...service.url...; service.stop(); service.start()   # an outage and a recovery

Run as a script (serving venv): ``register MLFLOW_URL NAME FOREST`` prints the version;
``delete MLFLOW_URL NAME`` removes the model.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from patternalarm.config import REPO_ROOT, Settings

TEST_API_KEY = "test-key-for-stream-scoring"


def venv_python(component: str) -> str:
    out = subprocess.run(["python3", str(REPO_ROOT / "scripts" / "envs.py"), "python", component],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mlflow_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _serving_venv(*args: str, timeout_s: float = 900) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([venv_python("serving"), "-m", "tests.support.scoring_service", *args],
                          capture_output=True, text=True, env=env, timeout=timeout_s, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"tests.support.scoring_service {args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip()


@contextmanager
def registered_model(mlflow_url: str, forest: str = "v_a") -> Iterator[tuple[str, str]]:
    """A fresh registered model whose `champion` is the test forest ``forest``; deleted afterwards."""
    name = f"pa-test-stream-{uuid.uuid4().hex[:10]}"
    version = _serving_venv("register", mlflow_url, name, forest)
    try:
        yield name, version
    finally:
        _serving_venv("delete", mlflow_url, name, timeout_s=120)


class ScoringService:
    """`python -m serving` as a child process (own process group), stoppable and restartable on the
    same port so a client sees an outage and a recovery."""

    def __init__(self, settings: Settings, mlflow_url: str, model_name: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC", "PA_ENV": "test",
                    "PA_API_KEY": TEST_API_KEY, "PA_SERVING_HOST": "127.0.0.1", "PA_SERVING_PORT": str(self.port),
                    "PA_MLFLOW_URL": mlflow_url, "PA_MODEL_NAME": model_name, "PA_MODEL_ALIAS": "champion",
                    "PA_PG_DATABASE": settings.pg_database, "PA_MODEL_DIR": str(log.parent / "models"),
                    "PA_SERVING_URL": ""}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([venv_python("serving"), "-m", "serving"], stdout=out,
                                     stderr=subprocess.STDOUT, env=self.env, cwd=REPO_ROOT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self.model_loaded():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"scoring service did not load its model; log: {self.log}")
            time.sleep(0.3)

    def model_loaded(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/predict/health", timeout=2) as resp:
                return resp.status == 200 and bool(json.loads(resp.read()).get("loaded"))
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


@contextmanager
def scoring_service(settings: Settings, mlflow_url: str, model_name: str, log: Path) -> Iterator[ScoringService]:
    service = ScoringService(settings, mlflow_url, model_name, log)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def _register(mlflow_url: str, name: str, forest: str) -> str:
    from mlflow.tracking import MlflowClient

    from tests.serving import factories

    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    try:
        return factories.register_version(client, name, factories.forest_files()[forest],
                                          experiment="stream-scoring-tests")
    finally:
        factories.CREATED_RUNS.clear()  # _delete removes the runs with the model


def _delete(mlflow_url: str, name: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    for mv in client.search_model_versions(f"name='{name}'"):
        if mv.run_id:
            client.delete_run(mv.run_id)
    client.delete_registered_model(name)


def main(argv: list[str]) -> int:
    if argv[:1] == ["register"] and len(argv) == 4:
        print(_register(argv[1], argv[2], argv[3]))
        return 0
    if argv[:1] == ["delete"] and len(argv) == 3:
        _delete(argv[1], argv[2])
        return 0
    print("usage: register MLFLOW_URL NAME FOREST | delete MLFLOW_URL NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
