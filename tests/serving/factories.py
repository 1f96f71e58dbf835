"""Factories for the serving tests: forest files, registered versions, request bodies, alert rows."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from patternalarm import features, history_features
from patternalarm.config import REPO_ROOT, load
from serving.registry import Registry

JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
BUILDER = Path(__file__).with_name("forest_builder.py")


def _envs(*args: str) -> str:
    out = subprocess.run(["python3", str(REPO_ROOT / "scripts" / "envs.py"), *args], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"scripts/envs.py {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def forest_files() -> dict[str, Path]:
    """Real exported forests (Spark-trained, exported by spark_jobs.forest_export), built once and
    cached outside the repo under a key of the code that produces them."""
    sources = [BUILDER, REPO_ROOT / "spark_jobs" / "forest_export.py", REPO_ROOT / "patternalarm" / "features.py",
               REPO_ROOT / "patternalarm" / "history_features.py"]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    out_dir = load().resolved_cache_dir() / "test-forests" / key
    if not (out_dir / "done.json").exists():
        python = _envs("python", "airflow")
        if not Path(python).exists():
            raise RuntimeError("the airflow venv (pyspark) builds the test forests: run "
                               "`python3 scripts/envs.py ensure airflow`")
        out_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "JAVA_HOME": os.environ.get("JAVA_HOME", JAVA_HOME)}
        proc = subprocess.run([python, str(BUILDER), str(out_dir)], capture_output=True, text=True, env=env,
                              timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"building test forests failed:\n{proc.stderr[-3000:]}")
    names = json.loads((out_dir / "done.json").read_text())
    return {name: out_dir / f"{name}.npz" for name in names}


def register_version(client: MlflowClient, model_name: str, npz: Path, alias: str | None = "champion",
                     experiment: str = "serving-tests", artifact_name: str = "forest.npz") -> str:
    """Log ``npz`` as a run's serving_model/forest.npz, register the run, optionally move the alias."""
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    run = client.create_run(exp_id)
    staging = Path(os.environ.get("TMPDIR", "/tmp")) / f"pa-forest-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        local = staging / artifact_name
        local.write_bytes(npz.read_bytes())
        repo = Registry(client.tracking_uri, model_name, "unused").artifact_repo(run.info.run_id)
        repo.log_artifact(str(local), artifact_path="serving_model")
    finally:
        for p in staging.iterdir():
            p.unlink()
        staging.rmdir()
    client.set_terminated(run.info.run_id)
    CREATED_RUNS.append(run.info.run_id)
    try:
        client.create_registered_model(model_name)
    except Exception:  # already exists
        pass
    mv = client.create_model_version(model_name, source=f"{run.info.artifact_uri}/serving_model",
                                     run_id=run.info.run_id)
    if alias:
        client.set_registered_model_alias(model_name, alias, mv.version)
    return str(mv.version)


CREATED_RUNS: list[str] = []  # deleted by the model_name fixture, so a shared server keeps no test runs


T0 = datetime(2026, 11, 29, 6, 0, tzinfo=timezone.utc)


def transaction(i: int, amount: float, domain: str = "ecommerce", seconds: float = 0.0,
                **extra: Any) -> dict[str, Any]:
    return {"transaction_id": f"tx-{uuid.uuid4().hex[:12]}-{i}", "amount": amount, "currency": "USD",
            "timestamp": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
            "domain": domain, **extra}


def card_testing_actor(actor_id: str = "user-card-tester", n: int = 7) -> dict[str, Any]:
    """Tiny purchases seconds apart in short sessions: the pattern the forests learned as fraud."""
    txns = [transaction(i, 0.5 + 0.6 * i, seconds=9 * i, payment_method="card", session_length_sec=20 + i,
                        device_id=f"fp-{i % 2}") for i in range(n)]
    return {"actor_id": actor_id, "domain": "ecommerce", "transactions": txns}


def shopper_actor(actor_id: str = "user-shopper") -> dict[str, Any]:
    txns = [transaction(0, 120.0, seconds=0, payment_method="paypal", session_length_sec=600, device_id="fp-1"),
            transaction(1, 64.9, seconds=3600, payment_method="paypal", session_length_sec=None, device_id="fp-1")]
    return {"actor_id": actor_id, "domain": "ecommerce", "transactions": txns}


def fintech_actor(actor_id: str = "acct-1") -> dict[str, Any]:
    txns = [transaction(i, 9_400.0 + i, domain="fintech", seconds=120 * i, payment_method="WIRE",
                        country_from="US", country_to=["GB", "DE", "NL"][i % 3], counterparty_id=f"acct-m{i}")
            for i in range(4)]
    return {"actor_id": actor_id, "domain": "fintech", "transactions": txns}


def alert_row(alert_id: str, *, pattern: str = "card_testing", domain: str = "ecommerce",
              actor_id: str = "user-1", severity: str = "HIGH", minutes: float = 0.0,
              score: float | None = None) -> dict[str, Any]:
    """An alerts row as the Flink sink writes it; inserting it fires the incident grouping trigger."""
    event_time = T0 + timedelta(minutes=minutes)
    return {"alert_id": alert_id, "pattern": pattern, "domain": domain, "actor_id": actor_id,
            "severity": severity, "score": score, "first_event_time": event_time - timedelta(seconds=40),
            "event_time": event_time, "emitted_at": event_time + timedelta(seconds=1),
            "transaction_ids": [f"{alert_id}-t1", f"{alert_id}-t2"], "measures": {"count": 6}}


def expected_features(body: dict[str, Any]) -> list[float]:
    """Independent path for assertions: contract field names -> Txn -> patternalarm.features.compute,
    then the request's history (or the empty one)."""
    txns = [features.Txn(amount=t["amount"], event_time=datetime.fromisoformat(t["timestamp"].replace("Z", "+00:00")),
                         domain=t["domain"], payment_method=t.get("payment_method"),
                         session_sec=t.get("session_length_sec"), country_from=t.get("country_from"),
                         country_to=t.get("country_to"), counterparty=t.get("counterparty_id"),
                         device=t.get("device_id"))
            for t in body["transactions"]]
    return history_features.model_row(features.compute(txns), body.get("history"))
