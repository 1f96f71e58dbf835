"""Hourly check that every service of the PatternAlarm stack answers.

Each task probes one service with the same health check `make status` uses and fails (so the run
turns red in the UI and retries) when the service is down, with the probe's reason in the task log.
Platform engineers see at a glance when the stack broke; the nightly load-test and chaos DAGs will
depend on it before they start.
"""

from __future__ import annotations

import pendulum
from airflow.decorators import dag, task

SERVICES = ("postgres", "kafka", "mlflow", "serving")


@dag(
    dag_id="stack_health",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["patternalarm", "platform"],
    default_args={"owner": "platform", "retries": 1, "retry_delay": pendulum.duration(minutes=1)},
    doc_md=__doc__,
)
def stack_health() -> None:
    for name in SERVICES:

        @task(task_id=f"check_{name}")
        def check(service_name: str = name) -> str:
            from patternalarm import config
            from patternalarm.stack import services

            (service,) = services.by_name([service_name])
            ok, detail = service.status(config.load())
            if not ok:
                raise RuntimeError(f"{service_name} is down: {detail}")
            return detail

        check()


stack_health()
