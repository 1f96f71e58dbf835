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
    assert detection_job.jvm_args(dataclasses.replace(settings, flink_gc="g1")) == "-Xmx2g -XX:+UseG1GC"
    with pytest.raises(ValueError, match="PA_FLINK_GC='zgc' .* one of g1, parallel"):
        detection_job.jvm_args(dataclasses.replace(settings, flink_gc="zgc"))
