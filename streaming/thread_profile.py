"""Where the detection job's CPU goes, by operator: a profile that needs no agent and no restart.

Flink names each task's thread after its operator chain ("OverAggregate[75] -> Calc[76] (1/1)#0"),
so the CPU time of each JVM thread, which `jcmd <pid> Thread.print` reports (``cpu=...ms``), is the
CPU time of each chain, next to the garbage collector's and the JIT compiler's threads. Two
snapshots give each group's share over the stretch between them. This is how the job's heap size
and its RANGE windows were found to cost a third of its CPU (docs/performance.md); a sampling
profiler (JFR) then tells what inside a chain is slow.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

_THREAD = re.compile(r'^"(?P<name>.+?)".*?\bcpu=(?P<ms>[\d.]+)ms')
# "(1/2)#0" subtask suffixes and trailing thread numbers ("GC Thread#1") would split one group in many
_SUBTASK = re.compile(r"\s*\(\d+/\d+\)(#\d+)?")
_NUMBER = re.compile(r"#?\d+$")


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (none if it is gone)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far, all its threads (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo += [c for c in children(p) if c not in found]
    return found


def jvm_pid(parent: int) -> int | None:
    """The java process among ``parent``'s children (the PyFlink gateway JVM of a job process)."""
    for child in children(parent):
        try:
            if b"java" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]:
                return child
        except OSError:
            continue
    return None


def thread_cpu_ms(pid: int) -> dict[str, float]:
    """CPU milliseconds used so far by each live thread of the JVM ``pid``."""
    dump = subprocess.run(["jcmd", str(pid), "Thread.print"], capture_output=True, text=True,
                          timeout=30, check=True).stdout
    threads: dict[str, float] = {}
    for line in dump.splitlines():
        match = _THREAD.match(line)
        if match:
            threads[match.group("name")] = float(match.group("ms"))
    return threads


def group(name: str) -> str:
    """One name for the threads that do the same work: subtasks of a chain, GC workers, compilers."""
    return _NUMBER.sub("", _SUBTASK.sub("", name)).strip()


def shares(before: dict[str, float], after: dict[str, float], top: int = 30) -> list[dict[str, object]]:
    """The groups that used the most CPU between two snapshots, with their share of the JVM's CPU."""
    used: Counter[str] = Counter()
    for name, ms in after.items():
        used[group(name)] += ms - before.get(name, 0.0)
    total = sum(used.values()) or 1.0
    return [{"threads": name[:120], "cpu_ms": round(ms), "share": round(ms / total, 3)}
            for name, ms in used.most_common(top)]
