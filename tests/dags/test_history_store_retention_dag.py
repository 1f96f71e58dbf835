"""The history_store_retention DAG end to end with dag.test() on a scratch database: windows older
than the retention go, the others stay; a too-short retention fails the task with the reason."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import psycopg2
import pytest
from airflow.models import DagBag
from airflow.utils.state import DagRunState

from patternalarm.config import REPO_ROOT
from tests.support.databases import scratch_database


@pytest.fixture()
def settings() -> Iterator[Any]:
    with scratch_database("pa_retention_dag") as scratch:
        yield scratch


@pytest.fixture(scope="module")
def dag() -> Any:
    loaded = DagBag(dag_folder=str(REPO_ROOT / "dags"), include_examples=False).get_dag("history_store_retention")
    for t in loaded.tasks:
        t.retries = 0
    return loaded


def seed(settings: Any, ages_days: list[float]) -> None:
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    with psycopg2.connect(settings.db_url(settings.pg_database)) as conn, conn.cursor() as cur:
        for i, age in enumerate(ages_days):
            start = now - timedelta(days=age)
            cur.execute("INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, "
                        "amount_sum, counterparties) VALUES (%s, 'fintech', %s, %s, 2, 10.0, %s)",
                        (f"a{i % 3}", start, start + timedelta(minutes=1), [f"c{i % 2}"]))
    conn.close()


def ages(settings: Any) -> list[int]:
    with psycopg2.connect(settings.db_url(settings.pg_database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT round(extract(epoch FROM now() - window_start) / 86400) FROM actor_windows ORDER BY 1")
        found = [int(r[0]) for r in cur.fetchall()]
    conn.close()
    return found


def test_the_dag_deletes_windows_older_than_the_retention(settings: Any, dag: Any) -> None:
    seed(settings, [1, 2, 20, 39, 45, 60])
    run = dag.test(run_conf={"days": 30, "batch": 2, "max_batches": None})
    assert run.state == DagRunState.SUCCESS
    assert ages(settings) == [1, 2, 20]


def test_a_too_short_retention_fails_the_run_and_keeps_everything(settings: Any, dag: Any) -> None:
    seed(settings, [1, 8, 45])
    run = dag.test(run_conf={"days": 3, "batch": 5000, "max_batches": None})
    assert run.state == DagRunState.FAILED
    assert ages(settings) == [1, 8, 45]
