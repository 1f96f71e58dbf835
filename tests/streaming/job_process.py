"""Run the real detection job as a child process for integration tests (and kill it, for restarts)."""

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
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, resume: bool = True, timeout_s: float = 180) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TZ": "UTC",
               "PA_FLINK_JARS": str(kafka_broker.jar_folder(self.settings, "flink")),
               "PA_UDF_JAR": str(kafka_broker.udf_jar(self.settings)),
               "PA_FLINK_RESUME": "1" if resume else "0"}
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "streaming.detection_job"], stdout=out,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:]
            if b"detection job " in text and b" running" in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"detection job exited ({self.proc.returncode}); log: {self.log}\n"
                                   + text.decode(errors="replace")[-3000:])
            time.sleep(0.5)
        raise RuntimeError(f"detection job not running after {timeout_s}s; log: {self.log}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the job's whole process group (the JVM and Python workers) as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        self.proc = None
