"""The stack_health DAG runs end to end against the real services (dag.test())."""

from __future__ import annotations

from airflow.models import DagBag
from airflow.utils.state import DagRunState

from patternalarm import config
from patternalarm.config import REPO_ROOT
from patternalarm.stack import services


def test_stack_health_dag_succeeds_against_the_running_stack() -> None:
    settings = config.load()
    for name in ("postgres", "kafka", "mlflow"):
        (service,) = services.by_name([name])
        service.start(settings)
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags"), include_examples=False).get_dag("stack_health")
    # serving is optional for this run: the DAG checks what the test suite has started
    subset = dag.partial_subset(task_ids_or_regex=r"check_(postgres|kafka|mlflow)$", include_upstream=False)
    run = subset.test()
    assert run.state == DagRunState.SUCCESS
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "check_postgres": "success", "check_kafka": "success", "check_mlflow": "success"}
