"""What a flight recording of the detection job says, in numbers: prints, asserts nothing.

    JVM_ARGS="-Xmx3g -XX:+UseG1GC -XX:StartFlightRecording=delay=30s,duration=35s,settings=profile,filename=/tmp/job.jfr" \\
        PYTHONPATH=. $(python3 scripts/envs.py python streaming) streaming/bench_job.py --events 2500000 \\
        --rate-per-min 1000000 --without-scorer
    $(python3 scripts/envs.py python streaming) streaming/jfr_summary.py /tmp/job.jfr

thread_profile.py tells which operator chain uses the CPU; a recording tells what inside it does.
This prints, from the JDK's `jfr` tool's JSON:

  * CPU samples (jdk.ExecutionSample) by thread and by top frame, and for each ``--frame`` (a
    substring of "Class.method", e.g. TtlIncrementalCleanup) the share of samples with it anywhere on
    the stack, overall and by thread: the state TTL's cleanup was found this way;
  * allocation (jdk.ObjectAllocationSample, weighted by the bytes each sample stands for) by class,
    by the first frame outside the JDK, and the share under each ``--frame``: allocation is what the
    young collections pay for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

JDK_PACKAGES = ("java.", "jdk.", "sun.")
DEFAULT_FRAMES = ("TtlIncrementalCleanup.runCleanup", "StringDataSerializer.copy", "BinaryRowData.copy",
                  "CopyOnWriteStateMap.get", "UTF8StreamJsonParser")


def jfr_tool() -> str:
    """The JDK's `jfr` next to the `java` on PATH (Java 17 runs the job)."""
    java = shutil.which("java")
    if java is None:
        raise SystemExit("no java on PATH: the JDK's jfr tool reads the recording (install Java 17: make setup)")
    tool = Path(java).resolve().parent / "jfr"
    if not tool.exists():
        raise SystemExit(f"{tool} not found: a JRE has no jfr tool; install the JDK (openjdk-17-jdk-headless)")
    return str(tool)


def read_events(recording: Path, event_type: str) -> list[dict[str, Any]]:
    """The recording's events of one type, as `jfr print --json` gives them."""
    out = subprocess.run([jfr_tool(), "print", "--json", "--events", event_type, str(recording)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["recording"]["events"]


def _stack(event: dict[str, Any]) -> list[dict[str, Any]]:
    return (event["values"].get("stackTrace") or {}).get("frames", [])


def _name(frame: dict[str, Any]) -> str:
    """The frame as "Class.method", the package dropped."""
    return f"{frame['method']['type']['name'].rsplit('/', 1)[-1]}.{frame['method']['name']}"


def frames(event: dict[str, Any]) -> list[str]:
    """The event's stack as "Class.method", innermost first."""
    return [_name(f) for f in _stack(event)]


def thread_of(event: dict[str, Any], field: str) -> str:
    thread = event["values"].get(field) or {}
    return (thread.get("javaName") or thread.get("osName") or "?")[:90]


def first_own_frame(event: dict[str, Any]) -> str:
    """The innermost frame outside the JDK: where Flink or our code asked for the memory."""
    for f in _stack(event):
        if not f["method"]["type"]["name"].replace("/", ".").startswith(JDK_PACKAGES):
            return _name(f)
    return "?"


def shares(weights: Counter[str], top: int) -> list[tuple[str, float]]:
    total = sum(weights.values()) or 1.0
    return [(name, weight / total) for name, weight in weights.most_common(top)]


def frame_shares(events: Iterable[dict[str, Any]], wanted: Iterable[str],
                 weight_of: Callable[[dict[str, Any]], float],
                 thread_field: str) -> dict[str, dict[str, float]]:
    """For each wanted frame: its share of the total weight, overall ("all") and of each thread's."""
    wanted = list(wanted)
    total, by_thread = 0.0, Counter[str]()
    hits = {w: Counter[str]() for w in wanted}
    for event in events:
        weight, thread, stack = weight_of(event), thread_of(event, thread_field), frames(event)
        total += weight
        by_thread[thread] += weight
        for w in wanted:
            if any(w in f for f in stack):
                hits[w][thread] += weight
    result = {}
    for w in wanted:
        share = {"all": sum(hits[w].values()) / (total or 1.0)}
        share.update({t: hits[w][t] / by_thread[t] for t, _ in hits[w].most_common(5)})
        result[w] = share
    return result


def cpu_summary(samples: list[dict[str, Any]], wanted: Iterable[str], top: int) -> dict[str, Any]:
    by_thread, by_top = Counter[str](), Counter[str]()
    for event in samples:
        by_thread[thread_of(event, "sampledThread")] += 1
        stack = frames(event)
        by_top[stack[0] if stack else "?"] += 1
    return {"samples": len(samples), "by_thread": shares(by_thread, top), "by_top_frame": shares(by_top, top),
            "frames": frame_shares(samples, wanted, lambda e: 1.0, "sampledThread")}


def allocation_summary(samples: list[dict[str, Any]], wanted: Iterable[str], top: int) -> dict[str, Any]:
    by_class, by_site = Counter[str](), Counter[str]()
    for event in samples:
        weight = event["values"]["weight"]
        by_class[event["values"]["objectClass"]["name"]] += weight
        by_site[first_own_frame(event)] += weight
    return {"bytes": sum(by_class.values()), "by_class": shares(by_class, top), "by_site": shares(by_site, top),
            "frames": frame_shares(samples, wanted, lambda e: float(e["values"]["weight"]), "eventThread")}


def print_shares(title: str, rows: list[tuple[str, float]]) -> None:
    print(title)
    for name, share in rows:
        print(f"  {100 * share:5.1f} %  {name}")


def print_frames(title: str, found: dict[str, dict[str, float]]) -> None:
    print(title)
    for frame, share in found.items():
        threads = "; ".join(f"{100 * s:.0f} % of {t[:60]}" for t, s in share.items() if t != "all")
        print(f"  {100 * share['all']:5.1f} %  {frame}" + (f"  ({threads})" if threads else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", type=Path)
    parser.add_argument("--frame", action="append", help=f"a frame to look for (default: {', '.join(DEFAULT_FRAMES)})")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    wanted = args.frame or list(DEFAULT_FRAMES)
    cpu = cpu_summary(read_events(args.recording, "jdk.ExecutionSample"), wanted, args.top)
    print(f"CPU: {cpu['samples']} samples")
    print_shares("by thread", cpu["by_thread"])
    print_shares("by top frame", cpu["by_top_frame"])
    print_frames("samples with the frame on the stack", cpu["frames"])
    allocation = allocation_summary(read_events(args.recording, "jdk.ObjectAllocationSample"), wanted, args.top)
    print(f"\nallocation: {allocation['bytes'] / 1e9:.1f} GB estimated over the recording")
    print_shares("by class", allocation["by_class"])
    print_shares("by the first frame outside the JDK", allocation["by_site"])
    print_frames("allocated under the frame", allocation["frames"])


if __name__ == "__main__":
    main()
