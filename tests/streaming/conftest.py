"""Integration fixtures: the real Kafka broker, a scratch database, unique topics, the real job."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.stack import kafka_broker
from tests.streaming.job_process import DetectionJob
from tests.support.databases import scratch_database


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for an isolated run: own topics and database, the shared broker (started if down)."""
    run = uuid.uuid4().hex[:8]
    saved = {k: os.environ.get(k) for k in ("PA_TOPIC_EVENTS", "PA_TOPIC_ALERTS", "PA_TOPIC_DEAD_LETTER",
                                            "PA_VAR_DIR", "PA_FLINK_REST_PORT")}
    os.environ.update(PA_TOPIC_EVENTS=f"test-{run}.events", PA_TOPIC_ALERTS=f"test-{run}.alerts",
                      PA_TOPIC_DEAD_LETTER=f"test-{run}.dead-letter")
    try:
        with scratch_database():
            shared = config.load()  # the broker belongs to the stack's var/, not to this test run
            kafka_broker.start(shared)
            kafka_broker.ensure_topics(shared)
            os.environ["PA_VAR_DIR"] = str(tmp_path_factory.mktemp("var"))
            os.environ["PA_FLINK_REST_PORT"] = "0"  # a stack's job may hold the usual port
            yield config.load()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def detection_job(stack: Settings) -> Iterator[DetectionJob]:
    job = DetectionJob(stack, Path(stack.var_dir) / "detection-job.log")
    job.start(resume=False)
    yield job
    job.kill()
