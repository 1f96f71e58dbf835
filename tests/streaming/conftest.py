"""Integration fixtures: the real Kafka broker, a scratch database, unique topics, the real job."""

from __future__ import annotations

import os
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.stack import kafka_broker
from tests.streaming.job_process import DetectionJob
from tests.support.databases import scratch_database

if TYPE_CHECKING:
    from tests.support.scoring_service import ScoringService

# The broker belongs to the stack's var/ (its pid file lives there). Read it now, before any fixture
# points PA_VAR_DIR at a test run's own folder.
STACK_SETTINGS = config.load()

ISOLATED = ("PA_IDLE_TIMEOUT_S", "PA_TOPIC_EVENTS", "PA_TOPIC_ALERTS", "PA_TOPIC_DEAD_LETTER", "PA_TOPIC_WINDOWS", "PA_VAR_DIR", "PA_FLINK_REST_PORT",
            "PA_PG_DATABASE", "PA_SERVING_URL", "PA_API_KEY", "PA_SCORING_COOLDOWN_S", "PA_SUSPICIOUS_THRESHOLD",
            "PA_RESCORE_INTERVAL_S")
# Where an isolated job's window scorer sends windows unless a test starts its own service: a closed
# port, so a stack's scoring service never scores a test's windows (they are stored unscored).
NO_SCORING_SERVICE = "http://127.0.0.1:9"


@contextmanager
def isolated_run(var_dir: Path) -> Iterator[Settings]:
    """Own topics, database and var/ on the shared broker (started if down); restored afterwards, and
    the topics deleted (the broker would keep their data for a week)."""
    saved = {k: os.environ.get(k) for k in ISOLATED}
    run = uuid.uuid4().hex[:8]
    try:
        with scratch_database():
            kafka_broker.start(STACK_SETTINGS)
            os.environ.update(PA_TOPIC_EVENTS=f"test-{run}.events", PA_TOPIC_ALERTS=f"test-{run}.alerts",
                              PA_TOPIC_DEAD_LETTER=f"test-{run}.dead-letter", PA_TOPIC_WINDOWS=f"test-{run}.windows")
            kafka_broker.ensure_topics(config.load())
            os.environ["PA_VAR_DIR"] = str(var_dir)
            os.environ["PA_FLINK_REST_PORT"] = "0"  # a stack's job may hold the usual port
            os.environ["PA_SERVING_URL"] = NO_SCORING_SERVICE
            yield config.load()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:  # housekeeping: a failure here must not fail (or hide the failure of) the run it follows
            if kafka_broker.status(STACK_SETTINGS)[0]:
                kafka_broker.delete_topics(STACK_SETTINGS, rf"test-{run}\..*")
        except kafka_broker.KafkaError as exc:
            warnings.warn(f"could not delete the topics test-{run}.*: {exc}", stacklevel=2)


@contextmanager
def scored_run(var_dir: Path) -> Iterator[tuple[Settings, "ScoringService", str]]:
    """An isolated run with a real scoring service serving a test forest registered in MLflow under a
    throw-away name, PA_SERVING_URL and PA_API_KEY pointing at it: (settings, service, model version)."""
    from tests.support.scoring_service import TEST_API_KEY, mlflow_up, registered_model, scoring_service

    mlflow_url = STACK_SETTINGS.resolved_mlflow_url()
    if not mlflow_up(mlflow_url):
        raise RuntimeError(f"MLflow at {mlflow_url} does not answer: `make up SERVICES=mlflow` first")
    with isolated_run(var_dir) as settings, registered_model(mlflow_url) as (model_name, version):
        with scoring_service(settings, mlflow_url, model_name, var_dir / "serving.log") as service:
            os.environ.update(PA_SERVING_URL=service.url, PA_API_KEY=TEST_API_KEY)
            yield config.load(), service, version


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with isolated_run(tmp_path_factory.mktemp("var")) as settings:
        yield settings


@pytest.fixture(scope="session")
def detection_job(stack: Settings) -> Iterator[DetectionJob]:
    job = DetectionJob(stack, Path(stack.var_dir) / "detection-job.log")
    job.start(resume=False)
    yield job
    job.kill()
