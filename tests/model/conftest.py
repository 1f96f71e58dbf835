"""Model test fixtures: a local Spark session, labelled generated data, a private MLflow server.

* ``spark_local``: local[2], UTC, built by the training job's own ``spark_session`` (so the tests run
  the job's settings, PYSPARK_PYTHON included). test_forest_parity.py keeps its own ``spark``.
* ``labelled``: a few simulated minutes from the generator's offline run (streaming.generator), with
  a raised fraud rate so windows of injected instances are plentiful; events as dicts and as a file.
* ``mlflow_server``: our own ``mlflow server`` from this venv (sqlite backend in a temp dir, proxied
  artifacts, a free port), stopped at the end: the training job registers and moves an alias, which
  must never touch the stack's registry (its scoring service would load the test model).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Labelled:
    path: Path
    events: list[dict[str, Any]]
    truth: list[dict[str, Any]]
    source: dict[str, Any]


@pytest.fixture(scope="session")
def spark_local() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="Spark tests run in the airflow venv")
    from spark_jobs.train import spark_session

    session = spark_session("local[2]", app_name="patternalarm-model-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def crowded_windows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Background events regrouped into busy windows: 3, 6 and 7 events of one actor per domain at
    uneven seconds, with one small and one large amount and one short session each.

    Why: generated background actors rarely act twice a minute, so shares would only be 0, 1/2 or 1
    and spans short; these windows give shares like 2/7 and odd velocities, where an engine that
    averages in DECIMAL or divides by a rounded span drifts from the Python definition.
    """
    from patternalarm.events import format_timestamp, parse_timestamp
    from patternalarm.features import COLUMN_SOURCES

    start = parse_timestamp(events[0]["timestamp"]).replace(second=0, microsecond=0) + timedelta(minutes=1)
    out: list[dict[str, Any]] = []
    for domain in ("fintech", "ecommerce", "gaming", "iot"):
        pool = [e for e in events if e["domain"] == domain]
        used = 0
        for size in (3, 6, 7):
            actor = f"crowd-{domain}-{size}"
            for j, source in enumerate(pool[used:used + size]):
                event = dict(source, transaction_id=f"tx-crowd-{domain}-{size}-{j}", actor_id=actor,
                             timestamp=format_timestamp(start + timedelta(seconds=0.731 + 8.117 * j)))
                amount_field = "value" if domain == "iot" else "amount"
                if j in (0, 1):
                    event[amount_field] = (2.5, 1500.25)[j]
                if j == 2 and "session_sec" in COLUMN_SOURCES[domain]:
                    event[COLUMN_SOURCES[domain]["session_sec"]] = 30.0  # one short session
                if domain == "iot":
                    event["device_id"] = actor
                out.append(event)
            used += size
    return out


@pytest.fixture(scope="session")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Labelled:
    """3 simulated minutes at 2,000 events/min, 1% of events starting an injected instance, plus
    :func:`crowded_windows` (background, label 0)."""
    from spark_jobs.train import generate_labelled

    # card testing only: its partition key is the actor whose windows carry the label; patterns keyed
    # otherwise (money laundering's intermediate account) need the labelling work of the ML issue.
    path, truth, source = generate_labelled(minutes=3, seed=7, fraud_rate=0.01, mode="2000",
                                            out_dir=tmp_path_factory.mktemp("generated"),
                                            patterns=("card_testing",))
    events = [json.loads(line) for line in path.read_text().splitlines()]
    events += crowded_windows(events)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return Labelled(path, events, truth, source)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("mlflow", reason="the MLflow server runs from the airflow venv")
    root = tmp_path_factory.mktemp("mlflow")
    url = f"http://127.0.0.1:{_free_port()}"
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    try:
        deadline = time.monotonic() + 120  # a bound on startup, not an assertion about speed
        while not _up(url):
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
