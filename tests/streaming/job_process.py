"""Run the real detection job, with its window scorer, as child processes for integration tests (and
kill them, for restarts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from patternalarm.config import REPO_ROOT, Settings
from patternalarm.stack import kafka_broker


class DetectionJob:
    """The Flink job and, unless ``with_scorer`` is False, the window scorer that stores its windows
    in actor_windows (streaming/window_scorer.py): the pipeline as the stack runs it."""

    def __init__(self, settings: Settings, log: Path, with_scorer: bool = True) -> None:
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.scorer: subprocess.Popen[bytes] | None = None
        self.with_scorer = with_scorer

    def start(self, resume: bool = True, timeout_s: float = 180) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC",
               "PA_FLINK_JARS": str(kafka_broker.jar_folder(self.settings, "flink")),
               "PA_UDF_JAR": str(kafka_broker.udf_jar(self.settings)),
               "PA_FLINK_RESUME": "1" if resume else "0"}
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "streaming.detection_job"], stdout=out,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if self.with_scorer and (self.scorer is None or self.scorer.poll() is not None):
            self.start_scorer()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:]
            if b"detection job " in text and b" running" in text:
                return
            if self.proc.poll() is not None:
                self.kill_scorer()  # it runs in its own session: nothing else would stop it
                raise RuntimeError(f"detection job exited ({self.proc.returncode}); log: {self.log}\n"
                                   + text.decode(errors="replace")[-3000:])
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"detection job not running after {timeout_s}s; log: {self.log}")

    def start_scorer(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC"}
        with self.log.with_name(self.log.stem + "-scorer.log").open("ab") as out:
            self.scorer = subprocess.Popen([sys.executable, "-m", "streaming.window_scorer"], stdout=out,
                                           stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL, scorer_too: bool = True) -> None:
        """Kill the job's whole process group (the JVM) as a crash would; the scorer too unless told."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        self.proc = None
        if scorer_too:
            self.kill_scorer(sig)

    def kill_scorer(self, sig: int = signal.SIGKILL) -> None:
        if self.scorer and self.scorer.poll() is None:
            os.killpg(self.scorer.pid, sig)
            self.scorer.wait(timeout=30)
        self.scorer = None
