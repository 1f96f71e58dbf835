"""Background services as plain processes: pid files, log files, health waits, clean stops.

There is no Docker engine here, so each service is a process group started by ``make up`` with its
pid under var/run/ and its log under var/log/. Starting a running service is a no-op and stopping
kills the whole group, so no orphan (uvicorn workers, the Flink Python workers) survives ``make down``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Sequence

from patternalarm.config import Settings


class ServiceError(RuntimeError):
    """A service that would not start or stop; the message names the log to read."""


def run_dir(settings: Settings) -> Path:
    path = settings.resolved_var_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path(settings: Settings, name: str) -> Path:
    path = settings.resolved_var_dir() / "log"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{name}.log"


def pid_file(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid"


def read_pid(settings: Settings, name: str) -> int | None:
    """The live pid of a service, or None (a stale pid file is removed)."""
    path = pid_file(settings, name)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if alive(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def start(settings: Settings, name: str, cmd: Sequence[str], env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start ``cmd`` in its own session unless the service already runs; return its pid."""
    existing = read_pid(settings, name)
    if existing:
        return existing
    log = log_path(settings, name)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=str(cwd) if cwd else None,
                                start_new_session=True, preexec_fn=_default_sigint)
    pid_file(settings, name).write_text(f"{proc.pid}\n")
    return proc.pid


def _default_sigint() -> None:
    """Children of background shells inherit an ignored SIGINT; services that stop on SIGINT need it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(settings: Settings, name: str, timeout_s: float = 20.0, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Signal the service's process group (SIGTERM unless the service needs another), then SIGKILL
    what is left after ``timeout_s``; True if it was running."""
    pid = read_pid(settings, name)
    if pid is None:
        return False
    _signal_group(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    if _group_alive(pid):
        _signal_group(pid, signal.SIGKILL)
        time.sleep(0.5)
    pid_file(settings, name).unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= resp.status < 300, resp.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(500).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(exc)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float, settings: Settings, name: str) -> None:
    """Poll ``check``; fail with the service's log tail if it never passes or the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if read_pid(settings, name) is None and pid_file(settings, name).parent.exists():
            raise ServiceError(f"{name} exited before {what}.\n{log_tail(settings, name)}")
        time.sleep(0.5)
    raise ServiceError(f"{name}: {what} did not happen within {timeout_s:.0f}s.\n{log_tail(settings, name)}")


def log_tail(settings: Settings, name: str, lines: int = 25) -> str:
    log = log_path(settings, name)
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        tail = ["(no log yet)"]
    return "\n".join(["--- last lines of " + str(log) + " ---", *tail])
