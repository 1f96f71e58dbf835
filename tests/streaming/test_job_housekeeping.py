"""What the detection job leaves on disk (its Flink working directory and checkpoints stay under
var/ and do not pile up across restarts: hundreds of killed runs had filled the disk), and the
JVM it asks for."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from patternalarm import config
from patternalarm.stack import kafka_broker
from streaming import detection_job


def test_working_dir_is_per_process_under_var_and_drops_those_of_ended_processes(tmp_path: Path) -> None:
    settings = dataclasses.replace(config.load(), var_dir=str(tmp_path))
    base = tmp_path / "flink" / "tmp"
    ended = subprocess.Popen(["true"])
    ended.wait()
    running = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (ended.pid, running.pid):
            (base / str(pid) / "minicluster_x").mkdir(parents=True)
        mine = detection_job.working_dir(settings)
        assert mine == base / str(os.getpid()) and mine.is_dir()
        assert not (base / str(ended.pid)).exists(), "a gone process's working dir is removed"
        assert (base / str(running.pid) / "minicluster_x").is_dir(), "a live process's is kept"
    finally:
        running.kill()


def test_resuming_removes_the_checkpoints_of_other_runs_only(tmp_path: Path) -> None:
    runs = tmp_path / "checkpoints" / "plan"
    for run in ("old-run", "resumed-run"):
        (runs / run / "chk-3").mkdir(parents=True)
        (runs / run / "chk-3" / "_metadata").write_text("x")
    keep = runs / "resumed-run" / "chk-3"
    detection_job.prune_checkpoints(keep)
    assert (keep / "_metadata").is_file()
    assert sorted(p.name for p in runs.iterdir()) == ["resumed-run"]


def test_jvm_args_bound_the_heap_and_choose_the_collector() -> None:
    settings = dataclasses.replace(config.load(), flink_heap="2g", flink_gc="parallel")
    assert detection_job.jvm_args(settings) == "-Xmx2g -XX:+UseParallelGC"
    assert detection_job.jvm_args(dataclasses.replace(settings, flink_gc="g1")) == (
        "-Xmx2g -XX:+UseG1GC -XX:-G1UseAdaptiveIHOP -XX:InitiatingHeapOccupancyPercent=75")
    with pytest.raises(ValueError, match="PA_FLINK_GC='zgc' .* one of g1, parallel"):
        detection_job.jvm_args(dataclasses.replace(settings, flink_gc="zgc"))


def test_the_jvm_takes_the_collector_options_as_given() -> None:
    """Flink starts its JVM with -XX:+IgnoreUnrecognizedVMOptions, so a misspelt option would be
    dropped without a word: the JDK that runs the job must report each one in effect."""
    options = detection_job.GARBAGE_COLLECTORS["g1"].split()
    flags = subprocess.run([kafka_broker.java_executable(), *options, "-XX:+PrintFlagsFinal", "-version"],
                           capture_output=True, text=True, check=True).stdout
    in_effect = {parts[1]: parts[3] for parts in (line.split() for line in flags.splitlines())
                 if len(parts) >= 4 and parts[2] == "="}
    asked = {}
    for option in options:  # -XX:+Name, -XX:-Name, -XX:Name=value
        flag = option.removeprefix("-XX:")
        if "=" in flag:
            name, value = flag.split("=", 1)
            asked[name] = value
        else:
            asked[flag[1:]] = "true" if flag[0] == "+" else "false"
    assert {"UseG1GC", "G1UseAdaptiveIHOP", "InitiatingHeapOccupancyPercent"} <= asked.keys()
    assert {name: in_effect.get(name) for name in asked} == asked
