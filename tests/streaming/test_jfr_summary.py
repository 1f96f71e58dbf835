"""The flight-recording summary (streaming/jfr_summary.py): a real recording of a live JVM (the stack's
Kafka broker) read through the JDK's jfr tool, and the shares computed from known events."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from patternalarm.config import Settings
from patternalarm.stack import processes
from streaming import jfr_summary
from tests.streaming.conftest import STACK_SETTINGS  # the broker's pid file is in the stack's var/


def frame(cls: str, method: str) -> dict[str, Any]:
    return {"method": {"type": {"name": cls}, "name": method}}


def sample(thread: str, *stack: tuple[str, str]) -> dict[str, Any]:
    return {"values": {"sampledThread": {"javaName": thread},
                       "stackTrace": {"frames": [frame(c, m) for c, m in stack]}}}


def allocation(thread: str, cls: str, weight: int, *stack: tuple[str, str]) -> dict[str, Any]:
    return {"values": {"eventThread": {"javaName": thread}, "objectClass": {"name": cls}, "weight": weight,
                       "stackTrace": {"frames": [frame(c, m) for c, m in stack]}}}


CLEANUP = ("org/apache/flink/runtime/state/ttl/TtlIncrementalCleanup", "runCleanup")
STATE_GET = ("org/apache/flink/runtime/state/heap/CopyOnWriteStateMap", "get")
OVER = ("org/apache/flink/table/runtime/operators/over/ProcTimeUnboundedPrecedingFunction", "processElement")


def test_cpu_shares_by_thread_top_frame_and_frame_anywhere_on_the_stack() -> None:
    samples = [sample("over", STATE_GET, CLEANUP, OVER), sample("over", STATE_GET, OVER),
               sample("over", ("java/util/HashMap", "get"), OVER), sample("source", ("Parser", "next"))]
    summary = jfr_summary.cpu_summary(samples, ["TtlIncrementalCleanup.runCleanup"], top=5)
    assert summary["samples"] == 4
    assert summary["by_thread"] == [("over", 0.75), ("source", 0.25)]
    assert summary["by_top_frame"][0] == ("CopyOnWriteStateMap.get", 0.5)
    cleanup = summary["frames"]["TtlIncrementalCleanup.runCleanup"]
    assert cleanup["all"] == 0.25 and cleanup["over"] == pytest.approx(1 / 3)
    assert "source" not in cleanup


def test_allocation_is_weighted_and_attributed_to_the_first_frame_outside_the_jdk() -> None:
    copy = ("org/apache/flink/table/runtime/typeutils/StringDataSerializer", "copy")
    events = [allocation("source", "[B", 300, ("java/util/Arrays", "copyOf"), copy),
              allocation("source", "java/lang/Double", 100, ("java/lang/Double", "valueOf"), OVER)]
    summary = jfr_summary.allocation_summary(events, ["StringDataSerializer.copy"], top=5)
    assert summary["bytes"] == 400
    assert summary["by_class"] == [("[B", 0.75), ("java/lang/Double", 0.25)]
    assert summary["by_site"] == [("StringDataSerializer.copy", 0.75), ("ProcTimeUnboundedPrecedingFunction.processElement", 0.25)]
    assert summary["frames"]["StringDataSerializer.copy"] == {"all": 0.75, "source": 0.75}


def test_reads_a_real_recording_of_a_live_jvm(stack: Settings, tmp_path: Path) -> None:
    pid = processes.read_pid(STACK_SETTINGS, "kafka")
    assert pid is not None, "the stack fixture starts the broker"
    recording = tmp_path / "broker.jfr"
    subprocess.run(["jcmd", str(pid), "JFR.start", "name=pa-test", "settings=profile"],
                   check=True, capture_output=True, timeout=60)
    time.sleep(3)
    # JFR.stop writes the whole file before it returns
    subprocess.run(["jcmd", str(pid), "JFR.stop", "name=pa-test", f"filename={recording}"],
                   check=True, capture_output=True, timeout=60)
    loads = jfr_summary.read_events(recording, "jdk.CPULoad")  # a periodic event: at least one in 3 s
    assert loads and all(0.0 <= e["values"]["machineTotal"] <= 1.0 for e in loads)
    jvm = jfr_summary.read_events(recording, "jdk.JVMInformation")  # written with every chunk
    assert jvm and "kafka.Kafka" in jvm[0]["values"]["javaArguments"]
