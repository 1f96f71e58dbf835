"""The detection job's optimized plan, as Flink explains it: properties that the profile showed to
cost throughput and that no functional test would notice losing (docs/performance.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from patternalarm.config import REPO_ROOT
from patternalarm.stack import kafka_broker
from streaming import event_columns, patterns
from tests.streaming.conftest import STACK_SETTINGS

EXPLAIN = """
from patternalarm import config
from streaming import detection_job
settings = config.load()
t_env = detection_job.create_environment(settings, resume=False)
print("buffer_timeout_ms", t_env._j_tenv.execEnv().getBufferTimeout())
print(detection_job.build_pipeline(t_env, settings).explain())
"""

BUFFER_TIMEOUT_MS = 7  # not the default, so the test sees the setting reach the job


@pytest.fixture(scope="module")
def explained() -> str:
    """The job's environment and plan, explained in a child process (the job's class loader setup
    stays out of this one)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC",
           "PA_FLINK_JARS": str(kafka_broker.jar_folder(STACK_SETTINGS, "flink")),
           "PA_UDF_JAR": str(kafka_broker.udf_jar(STACK_SETTINGS)),
           "PA_FLINK_BUFFER_TIMEOUT_MS": str(BUFFER_TIMEOUT_MS)}
    done = subprocess.run([sys.executable, "-c", EXPLAIN], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def plan(explained: str) -> str:
    return explained.split("== Optimized Execution Plan ==")[-1]


def test_network_buffers_wait_only_the_configured_time(explained: str) -> None:
    """A partly filled buffer between two operators waits PA_FLINK_BUFFER_TIMEOUT_MS before it is
    sent; Flink's 100 ms default, on each exchange an alert and the watermark cross, made CRISIS p99
    0.2 s longer (docs/performance.md)."""
    assert f"buffer_timeout_ms {BUFFER_TIMEOUT_MS}\n" in explained


def over_inputs(plan: str) -> list[list[str]]:
    """The input columns of every OVER aggregation (its select list without the aggregates)."""
    found = []
    for match in re.finditer(r"OverAggregate\(.*?select=\[(.*?)\]\)", plan):
        columns = [c.strip() for c in match.group(1).split(",")]
        found.append([c for c in columns if " AS w" not in c])
    return found


def test_over_windows_get_only_the_columns_they_use(plan: str) -> None:
    """Every row of an OVER window crosses a keyed exchange and waits in its state until the
    watermark: carrying all event columns there cost a quarter of the job's throughput (profiled).
    The planner prunes them only when a projection sits right below the window (friendly_fraud.sql
    says how)."""
    windows = over_inputs(plan)
    assert len(windows) >= 4, "friendly_fraud, promo_abuse, synthetic_identity (2)"
    for columns in windows:
        assert len(columns) <= 10, (f"an OVER window reads {len(columns)} columns (the events view has "
                                    f"{len(event_columns.NAMES) + 1} with event_time): {columns}; project the "
                                    "pattern's columns right below it")


def over_orders(plan: str) -> list[tuple[str, str]]:
    """(partitionBy, the column it is ordered by) of every OVER aggregation."""
    return re.findall(r"OverAggregate\(partitionBy=\[(.*?)\], orderBy=\[(\w+) ASC\]", plan)


def test_history_windows_run_in_arrival_order_except_across_partitions(plan: str) -> None:
    """Keyed within one actor (one Kafka partition), an OVER window in arrival order aggregates each
    row at once instead of holding it until the watermark (docs/patterns.md, "History in arrival
    order"); synthetic_identity's account also gathers transfers from other partitions, which are not
    read in step, so it stays in event time."""
    orders = over_orders(plan)
    assert ("account", "event_time") in orders, "synthetic_identity's first seen must stay in event time"
    within_actor = [o for o in orders if o[0] != "account"]
    assert len(within_actor) == 2, orders  # friendly_fraud, promo_abuse; the gaming look-backs: PlayerHistory.java
    assert {order for _, order in within_actor} == {"proc_time"}, orders


def test_synthetic_identity_event_time_window_reads_only_candidates_and_new_minimums(plan: str) -> None:
    """synthetic_identity's event-time window holds every row it gets until the watermark: it gets
    only in-range outgoing transfers and the rows that lower the account's minimum in arrival order
    (an arrival-order OVER over both sides of each transfer before it; synthetic_identity.sql)."""
    orders = over_orders(plan)
    assert orders.count(("account", "proc_time")) == 1, orders
    event_time_window = plan.index("OverAggregate(partitionBy=[account], orderBy=[event_time ASC]")
    arrival_window = plan.index("OverAggregate(partitionBy=[account], orderBy=[proc_time ASC]")
    # an explain plan lists an operator above its inputs: the filter between them reads the minimum
    between = plan[event_time_window:arrival_window]
    where = re.search(r"Calc\(select=\[[^\]]*\], where=\[(.*)\]\)", between)
    assert where, f"no filter below the event-time window: {between[:2000]}"
    assert re.search(r"event_time.*<=.*w0\$o0.*\) OR \(outgoing AND", where.group(1)), where.group(1)


def test_patterns_read_their_domain_filtered_once_before_the_statements(plan: str) -> None:
    """Each pattern reads events_<domain>, filtered in the stream by DomainEvents.java before the
    statements fan out: a statement's own WHERE on the domain ran for every event of every domain,
    after its Calc had copied the string columns it reads (docs/performance.md, "2026-12-07, late evening").
    Before: 11 Calcs filtered on the domain."""
    assert re.findall(r"where=\[[^\]]*domain = ", plan) == []
    assert patterns.domains_read() == ["fintech", "ecommerce", "gaming"]
