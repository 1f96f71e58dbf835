"""Daily retention of the history store: scored windows older than the retention are deleted.

The window scorer keeps every scored window (features, score, counterparties) in PostgreSQL's
``actor_windows``; the history features and the retrain's extraction read them. Nothing else
removes them, and at NORMAL they grow by ~13 GB a day. This DAG runs streaming/history_retention.py:
windows that started more than ``days`` ago (PA_HISTORY_RETENTION_DAYS, 38 by default: the retrain's
30-day lookback plus the 7-day history horizon and the label delay) are deleted oldest first, in
transactions of ``batch`` windows, through the table's triggers so the rollups stay exact; rollup
rows left at zero in the removed hours go at the end. Alerts, incidents and verdicts stay.

``max_batches`` bounds a run (the next run goes on where it stopped; ``done`` in the task's XCom says
whether it finished). A retention shorter than the history ranges fails the task with the reason.
`make prune-history` runs the same job directly.
"""

from __future__ import annotations

import pendulum
from airflow.decorators import dag, task
from airflow.models.param import Param


@dag(
    dag_id="history_store_retention",
    schedule="30 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["patternalarm", "platform"],
    default_args={"owner": "platform", "retries": 1, "retry_delay": pendulum.duration(minutes=5)},
    doc_md=__doc__,
    params={
        "days": Param(None, type=["null", "number"], minimum=0,
                      description="keep windows that started within this many days; empty: PA_HISTORY_RETENTION_DAYS"),
        "batch": Param(5000, type="integer", minimum=1, description="windows deleted per transaction"),
        "max_batches": Param(None, type=["null", "integer"], minimum=1,
                             description="stop after this many batches; empty: until done"),
    },
)
def history_store_retention() -> None:
    @task
    def prune(params: dict | None = None) -> dict:
        from dataclasses import asdict

        from patternalarm import config
        from streaming.history_retention import prune_history

        assert params is not None
        result = prune_history(config.load(), days=params["days"], batch=int(params["batch"]),
                               max_batches=params["max_batches"])
        print(f"deleted {result.windows_deleted} windows before {result.cutoff} in {result.batches} batches "
              f"({'done' if result.done else 'stopped by max_batches, older windows left'}); "
              f"zero rollup rows removed: {result.rollup_rows_pruned}")
        return asdict(result)

    prune()


history_store_retention()
