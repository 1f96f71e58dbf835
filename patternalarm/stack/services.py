"""The services of the local stack: how each starts, how its health is checked, how it stops.

Order matters: PostgreSQL and Kafka first (everything writes to them), then MLflow (the scoring
service reads its registry), the scoring service, the detection job, the window scorer, the alert
relay, and Airflow last (slowest to start, needed by people rather than by the data path).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from patternalarm.config import REPO_ROOT, Settings
from patternalarm.stack import kafka_broker, postgres, processes

ENVS_SCRIPT = REPO_ROOT / "scripts" / "envs.py"


def venv_python(component: str) -> str:
    """Python of a component's virtualenv, built from constraints.txt if missing."""
    subprocess.run([sys.executable, str(ENVS_SCRIPT), "ensure", component], check=True)
    out = subprocess.run([sys.executable, str(ENVS_SCRIPT), "python", component],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def component_env(settings: Settings) -> dict[str, str]:
    """Environment every project process gets: the repo importable, UTC, the connector jars."""
    path = os.environ.get("PYTHONPATH", "")
    env = {"PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else ""), "TZ": "UTC",
           "PA_VAR_DIR": str(settings.resolved_var_dir())}
    return env


@dataclass(frozen=True)
class Service:
    name: str
    start: Callable[[Settings], None]
    stop: Callable[[Settings], str | None]  # None: stopped; else what happened instead
    status: Callable[[Settings], tuple[bool, str]]
    url: Callable[[Settings], str] | None = None
    # start() is cheap and idempotent and does more than start (migrations, topics): run it always
    always_start: bool = False


# --- PostgreSQL ---------------------------------------------------------------------------------

def _pg_start(settings: Settings) -> None:
    postgres.start(settings)
    postgres.migrate(settings)


def _pg_stop(settings: Settings) -> str | None:
    """The machine's cluster is shared with other work; `make down` leaves it running unless asked."""
    if os.environ.get("PA_STOP_POSTGRES") == "1":
        postgres.stop(settings)
        return None
    return "left running (the machine's shared cluster; PA_STOP_POSTGRES=1 stops it too)"


# --- MLflow -------------------------------------------------------------------------------------

def mlflow_artifacts(settings: Settings) -> Path:
    path = settings.resolved_var_dir() / "mlflow" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _mlflow_start(settings: Settings) -> None:
    python = venv_python("airflow")
    cmd = [python, "-m", "mlflow", "server",
           "--backend-store-uri", settings.db_url("mlflow"),
           "--artifacts-destination", str(mlflow_artifacts(settings)),
           "--serve-artifacts", "--host", "127.0.0.1", "--port", str(settings.mlflow_port), "--workers", "2"]
    processes.start(settings, "mlflow", cmd, env=component_env(settings))
    processes.wait_until(lambda: _mlflow_status(settings)[0], "answering /health", 90, settings, "mlflow")


def _mlflow_status(settings: Settings) -> tuple[bool, str]:
    ok, body = processes.http_ok(settings.resolved_mlflow_url() + "/health")
    return ok, "healthy" if ok else body[:200]


# --- scoring service ----------------------------------------------------------------------------

def _serving_start(settings: Settings) -> None:
    python = venv_python("serving")
    processes.start(settings, "serving", [python, "-m", "serving"], env=component_env(settings))
    processes.wait_until(lambda: processes.port_open(settings.serving_port, settings.serving_host),
                         "listening", 60, settings, "serving")


def _serving_status(settings: Settings) -> tuple[bool, str]:
    if not processes.port_open(settings.serving_port, settings.serving_host):
        return False, "not listening"
    ok, body = processes.http_ok(settings.resolved_serving_url() + "/health")
    return True, ("healthy" if ok else "up, degraded: " + body[:160])


# --- detection job ------------------------------------------------------------------------------

def _job_start(settings: Settings) -> None:
    python = venv_python("streaming")
    env = {**component_env(settings), "PA_FLINK_JARS": str(kafka_broker.jar_folder(settings, "flink")),
           "PA_UDF_JAR": str(kafka_broker.udf_jar(settings))}
    processes.start(settings, "detection-job", [python, "-m", "streaming.detection_job"], env=env)
    processes.wait_until(lambda: _job_status(settings)[0], "the job RUNNING in Flink's REST API", 180, settings,
                         "detection-job")


def _job_status(settings: Settings) -> tuple[bool, str]:
    """The process lives and Flink's REST API reports the job RUNNING."""
    pid = processes.read_pid(settings, "detection-job")
    if pid is None:
        return False, "not running"
    ok, body = processes.http_ok(f"http://127.0.0.1:{settings.flink_rest_port}/jobs/overview")
    if not ok:
        return False, f"pid {pid}, REST API not answering: {body[:120]}"
    state = "RUNNING" if '"state":"RUNNING"' in body else "not running: " + body[:160]
    return state == "RUNNING", f"job {state} (pid {pid})"


# --- workers beside the job: window scorer, alert relay -------------------------------------------

WORKER_STALE_S = 15.0


def _start_worker(settings: Settings, name: str, module: str,
                  status: Callable[[Settings], tuple[bool, str]]) -> None:
    """A streaming-venv Python worker that writes var/run/<name>.heartbeat each round."""
    processes.start(settings, name, [venv_python("streaming"), "-m", module], env=component_env(settings))
    processes.wait_until(lambda: status(settings)[0], "a fresh heartbeat", 60, settings, name)


def _heartbeat(settings: Settings, name: str) -> tuple[int | None, float | None, dict[str, object]]:
    """The worker's pid, seconds since its last heartbeat (None: none yet) and what it wrote there
    (a bare timestamp, or JSON with "at" and counters)."""
    pid = processes.read_pid(settings, name)
    try:
        state = json.loads((settings.resolved_var_dir() / "run" / f"{name}.heartbeat").read_text())
        state = state if isinstance(state, dict) else {"at": state}
        return pid, time.time() - float(state["at"]), state
    except (OSError, ValueError, KeyError, TypeError):
        return pid, None, {}


def _scorer_status(settings: Settings) -> tuple[bool, str]:
    """The scorer lives and its loop went round lately (windows topic -> scoring -> actor_windows);
    what it has done since it started."""
    pid, age, state = _heartbeat(settings, "window-scorer")
    if pid is None or age is None:
        return False, "not running" if pid is None else f"pid {pid}, no heartbeat yet"
    done = ", ".join(f"{state.get(k, 0)} {k}" for k in ("scored", "unscored", "not_applicable", "rescored"))
    lag = state.get("lag")
    behind = "" if lag is None else f", {lag} not read yet"
    return age < WORKER_STALE_S, f"pid {pid}, last round {age:.0f} s ago; windows: {done}{behind}"


def _relay_status(settings: Settings) -> tuple[bool, str]:
    """The relay (database-made alerts to the alerts topic) lives and finished a pass lately; how
    many alerts wait to be published."""
    pid, age, _ = _heartbeat(settings, "alert-relay")
    if pid is None or age is None:
        return False, "not running" if pid is None else f"pid {pid}, no pass finished yet"
    try:
        queued = postgres.psql(settings, "SELECT count(*) FROM alert_outbox WHERE published_at IS NULL")
    except postgres.PostgresError as exc:
        queued = f"? ({str(exc).splitlines()[0][:80]})"
    ok = age < WORKER_STALE_S
    return ok, f"pid {pid}, last pass {age:.0f} s ago, {queued} alerts queued"


# --- Airflow ------------------------------------------------------------------------------------

def airflow_home(settings: Settings) -> Path:
    path = settings.resolved_var_dir() / "airflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def airflow_env(settings: Settings) -> dict[str, str]:
    """Airflow configuration through AIRFLOW__* variables: metadata in PostgreSQL, DAGs from dags/.

    The venv's bin/ leads PATH: `airflow standalone` starts its parts as `airflow ...` and
    SparkSubmitOperator runs `spark-submit`, both found there.
    """
    bin_dir = str(Path(venv_python("airflow")).parent)
    return {
        **component_env(settings),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW_HOME": str(airflow_home(settings)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.db_url("airflow", driver="postgresql+psycopg2"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(settings.airflow_port),
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__WEBSERVER__WORKERS": "2",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
        # JSON form: provider 4.1.5 takes the master from the host (the URI form's `master` extra is
        # ignored and spark-submit ran `--master local`, one core). tests/dags/test_spark_connection.py
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[*]"}),
        "PA_MLFLOW_URL": settings.resolved_mlflow_url(),
    }


def _airflow_start(settings: Settings) -> None:
    python = venv_python("airflow")
    airflow = str(Path(python).parent / "airflow")
    processes.start(settings, "airflow", [airflow, "standalone"], env=airflow_env(settings))
    processes.wait_until(lambda: _airflow_status(settings)[0], "webserver and scheduler healthy", 240,
                         settings, "airflow")


def _airflow_status(settings: Settings) -> tuple[bool, str]:
    ok, body = processes.http_ok(f"http://127.0.0.1:{settings.airflow_port}/health")
    if not ok:
        return False, body[:160]
    healthy = body.count('"healthy"') >= 2
    return healthy, "healthy" if healthy else "starting: " + body[:160]


def airflow_admin_password(settings: Settings) -> str | None:
    path = airflow_home(settings) / "standalone_admin_password.txt"
    return path.read_text().strip() if path.exists() else None


def _stopper(name: str, sig: signal.Signals = signal.SIGTERM) -> Callable[[Settings], None]:
    return lambda settings: (processes.stop(settings, name, sig=sig), None)[1]


SERVICES: tuple[Service, ...] = (
    Service("postgres", _pg_start, _pg_stop, postgres.healthy, always_start=True),
    Service("kafka", lambda s: (kafka_broker.start(s), kafka_broker.ensure_topics(s), None)[2],
            kafka_broker.stop, kafka_broker.status, always_start=True),
    Service("mlflow", _mlflow_start, _stopper("mlflow"), _mlflow_status, lambda s: s.resolved_mlflow_url()),
    Service("serving", _serving_start, _stopper("serving"), _serving_status,
            lambda s: s.resolved_serving_url() + "/docs"),
    Service("detection-job", _job_start, _stopper("detection-job"), _job_status,
            lambda s: f"http://127.0.0.1:{s.flink_rest_port}"),
    Service("window-scorer", lambda s: _start_worker(s, "window-scorer", "streaming.window_scorer", _scorer_status),
            _stopper("window-scorer"), _scorer_status),
    Service("alert-relay", lambda s: _start_worker(s, "alert-relay", "streaming.alert_outbox_relay", _relay_status),
            _stopper("alert-relay"), _relay_status),
    # `airflow standalone` stops its scheduler, webserver and triggerer on SIGINT only.
    Service("airflow", _airflow_start, _stopper("airflow", signal.SIGINT), _airflow_status,
            lambda s: f"http://127.0.0.1:{s.airflow_port}"),
)


def by_name(names: list[str] | None) -> list[Service]:
    if not names:
        return list(SERVICES)
    known = {s.name: s for s in SERVICES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [s for s in SERVICES if s.name in names]
