"""The fraud_model_retrain DAG end to end with dag.test(): a scratch database seeded with synthetic
windows, incidents and verdicts, Spark local through spark-submit, and a private MLflow server (the
stack's registry and its scoring service are never touched, so verify_serving is off here).

Runs, in order, on one registry: a set too small for the suite stops the DAG before Spark; the first
model is promoted (no champion yet); a much weaker one (one stump) is not promoted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.models import DagBag
from airflow.utils.state import DagRunState

from patternalarm.config import REPO_ROOT
from patternalarm.stack import postgres
from tests.dags import retrain_data
from tests.model.conftest import mlflow_server  # noqa: F401  (the private registry fixture)
from tests.support.databases import scratch_database


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    previous = os.environ.get("PA_VAR_DIR")
    os.environ["PA_VAR_DIR"] = str(tmp_path_factory.mktemp("var"))
    try:
        with scratch_database("pa_retrain_dag") as settings:
            retrain_data.seed(settings)
            yield settings
    finally:
        if previous is None:
            os.environ.pop("PA_VAR_DIR", None)
        else:
            os.environ["PA_VAR_DIR"] = previous


@pytest.fixture(scope="module")
def dag() -> Any:
    loaded = DagBag(dag_folder=str(REPO_ROOT / "dags"), include_examples=False).get_dag("fraud_model_retrain")
    for t in loaded.tasks:
        t.retries = 0  # a failure must end the test run now, not wait for a retry
    return loaded


def conf(tracking_uri: str, **overrides: Any) -> dict[str, Any]:
    return {"tracking_uri": tracking_uri, "verify_serving": False, "sample_rate": 0.2, "now": retrain_data.end_of_data(),
            "label_delay_hours": 0.0, "num_trees": 10, "max_depth": 5, "triggered_by": "pytest", "min_rows": 200,
            "gate_margin": 0.005, **overrides}  # every varied param explicit: runs in one process share the DAG


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def deployments(settings: Any) -> list[list[str]]:
    out = postgres.psql(settings, "SELECT version, coalesce(alias, ''), decided, triggered_by "
                                  "FROM model_deployments ORDER BY deployment_id")
    return [line.split("|") for line in out.splitlines() if line]


def aliases(tracking_uri: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return {a: str(v) for a, v in client.get_registered_model("patternalarm-fraud").aliases.items()}


def test_too_small_a_training_set_stops_the_dag_before_spark(env: Any, dag: Any, mlflow_server: str) -> None:  # noqa: F811
    run = dag.test(run_conf=conf(mlflow_server, min_rows=100_000))
    assert run.state == DagRunState.FAILED
    got = states(run)
    assert got["extract"] == "success" and got["validate"] == "failed"
    assert got["train"] == "upstream_failed" and got["record"] == "upstream_failed"
    assert deployments(env) == []
    assert list((Path(os.environ["PA_VAR_DIR"]) / "gx").rglob("index.html")), "Data Docs were not built"


def test_first_model_is_promoted_then_a_worse_one_is_only_challenger(env: Any, dag: Any,
                                                                     mlflow_server: str) -> None:  # noqa: F811
    first = dag.test(run_conf=conf(mlflow_server))
    assert first.state == DagRunState.SUCCESS, states(first)
    assert aliases(mlflow_server) == {"champion": "1"}
    assert deployments(env) == [["1", "champion", "promoted", "pytest"]]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    logged = client.get_run(client.get_model_version("patternalarm-fraud", "1").run_id).data
    assert {"roc_auc", "average_precision", "precision_at_budget", "recall_at_budget"} <= set(logged.metrics)
    assert logged.params["alert_budget"] == "1%"  # PA_ALERT_BUDGET's default: the DAG param was empty

    weaker = dag.test(run_conf=conf(mlflow_server, num_trees=1, max_depth=1, gate_margin=0.01))
    assert weaker.state == DagRunState.SUCCESS, states(weaker)
    assert aliases(mlflow_server) == {"champion": "1", "challenger": "2"}
    assert deployments(env)[-1] == ["2", "challenger", "challenger", "pytest"]
    metrics = postgres.psql(env, "SELECT (metrics->'new'->>'average_precision')::float < "
                                 "(metrics->'champion'->>'average_precision')::float FROM model_deployments "
                                 "WHERE version = '2'")
    assert metrics == "t"


@pytest.fixture()
def scoring_service(env: Any, mlflow_server: str, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    """Our own scoring service (serving venv) on a free port, serving the private registry's champion;
    PA_SERVING_PORT points the DAG's serve task at it while it lives."""
    import signal
    import subprocess
    import time
    import urllib.request

    from tests.model.conftest import _free_port

    python = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "envs.py"), "python", "serving"],
                            check=True, capture_output=True, text=True).stdout.strip()
    port = _free_port()
    child_env = {**os.environ, "PA_MLFLOW_URL": mlflow_server, "PA_SERVING_PORT": str(port),
                 "PA_SERVING_HOST": "127.0.0.1", "PYTHONPATH": str(REPO_ROOT)}
    log = (tmp_path / "serving.log").open("w")
    proc = subprocess.Popen([python, "-m", "serving"], env=child_env, cwd=REPO_ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    previous = os.environ.get("PA_SERVING_PORT")
    os.environ["PA_SERVING_PORT"] = str(port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a bound on startup, not an assertion about speed
        while True:
            try:
                with urllib.request.urlopen(f"{url}/predict/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"scoring service did not start; see {tmp_path / 'serving.log'}")
                time.sleep(0.5)
        yield url
    finally:
        if previous is None:
            os.environ.pop("PA_SERVING_PORT", None)
        else:
            os.environ["PA_SERVING_PORT"] = previous
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_a_better_model_is_promoted_and_served(env: Any, dag: Any, mlflow_server: str,  # noqa: F811
                                               scoring_service: str) -> None:
    import json
    import urllib.request

    from mlflow.tracking import MlflowClient

    # after the previous test: v1 a forest, v2 a stump; make the stump the champion to beat
    MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server).set_registered_model_alias(
        "patternalarm-fraud", "champion", "2")
    run = dag.test(run_conf=conf(mlflow_server, verify_serving=True, gate_margin=0.01))
    assert run.state == DagRunState.SUCCESS, states(run)
    assert aliases(mlflow_server)["champion"] == "3"
    assert deployments(env)[-1][:3] == ["3", "champion", "promoted"]
    with urllib.request.urlopen(f"{scoring_service}/predict/health", timeout=10) as resp:
        assert str(json.loads(resp.read())["model_version"]) == "3"
    served = postgres.psql(env, "SELECT serving FROM model_deployments WHERE version = '3'")
    assert served.startswith("serving v3")
