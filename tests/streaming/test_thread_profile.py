"""The per-thread CPU profile that bench_job prints: read from a real JVM (the stack's Kafka broker)."""

from __future__ import annotations

from patternalarm.config import Settings
from patternalarm.stack import processes
from streaming import thread_profile
from tests.streaming.conftest import STACK_SETTINGS  # the broker's pid file is in the stack's var/


def test_reads_every_thread_of_a_live_jvm(stack: Settings) -> None:
    pid = processes.read_pid(STACK_SETTINGS, "kafka")
    assert pid is not None, "the stack fixture starts the broker"
    before = thread_profile.thread_cpu_ms(pid)
    after = thread_profile.thread_cpu_ms(pid)
    assert len(before) > 20, "a broker runs dozens of threads"
    assert any(name.startswith("GC Thread") for name in before)
    assert all(after[name] >= ms for name, ms in before.items() if name in after), "CPU time only grows"
    top = thread_profile.shares(before, after)
    assert top and abs(sum(g["share"] for g in thread_profile.shares(before, after, top=1000)) - 1) < 0.01


def test_subtasks_and_numbered_workers_fall_into_one_group() -> None:
    assert thread_profile.group("OverAggregate[75] -> Calc[76] (1/2)#0") == "OverAggregate[75] -> Calc[76]"
    assert thread_profile.group("OverAggregate[75] -> Calc[76] (2/2)#0") == "OverAggregate[75] -> Calc[76]"
    assert thread_profile.group("GC Thread#1") == thread_profile.group("GC Thread#0") == "GC Thread"
    assert thread_profile.group("C2 CompilerThread1") == "C2 CompilerThread"


def test_shares_are_the_growth_between_snapshots_largest_first() -> None:
    before = {"GC Thread#0": 100.0, "GC Thread#1": 100.0, "Match[22] (1/1)#0": 50.0}
    after = {"GC Thread#0": 130.0, "GC Thread#1": 120.0, "Match[22] (1/1)#0": 200.0, "C2 CompilerThread0": 50.0}
    assert thread_profile.shares(before, after) == [
        {"threads": "Match[22]", "cpu_ms": 150, "share": 0.6},
        {"threads": "GC Thread", "cpu_ms": 50, "share": 0.2},
        {"threads": "C2 CompilerThread", "cpu_ms": 50, "share": 0.2},
    ]


def test_descendants_and_process_cpu_see_a_child_and_forget_an_ended_one() -> None:
    import os
    import subprocess

    child = subprocess.Popen(["sleep", "30"])
    try:
        assert {os.getpid(), child.pid} <= thread_profile.descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert child.pid not in thread_profile.descendants(os.getpid())
    sum(i * i for i in range(300_000))  # some CPU of our own
    assert thread_profile.process_cpu_s(os.getpid()) > 0
    assert thread_profile.process_cpu_s(child.pid) == 0.0
