"""Throughput of the detection job on this machine: prints numbers, asserts nothing (not a test).

    PYTHONPATH=. $(python3 scripts/envs.py python streaming) streaming/bench_job.py --events 300000

What it does, so the number means one thing:
  1. generates N events offline (the generator's EventStream on a simulated clock at --rate-per-min,
     so event time looks like traffic at that rate, with card-testing instances injected);
  2. publishes them all to fresh topics as fast as the producer goes (the job is not started yet, so
     its source never waits for data: what it reads per second is what the job can process);
  3. starts the real job (tests/streaming/job_process.py, the same child process the integration tests
     run) against a fresh scratch database, and samples the Kafka source's numRecordsOut from the
     Flink REST API once a second until all N events were read;
  4. prints the sustained rate (the slope between 10 % and 90 % of the events, which leaves out the
     JIT warm-up and the tail), the job's CPU time per event over the same stretch (the number to
     compare on a machine that also runs other work), where the JVM's CPU went in that stretch (by
     operator chain, GC and JIT: streaming/thread_profile.py), the machine (nproc, CPU model, load)
     and the job's peak RSS.

Backpressure makes the source's rate the pipeline's rate: a slow operator anywhere slows the read.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from patternalarm import config
from patternalarm.events import encode
from patternalarm.stack import kafka_broker
from streaming import thread_profile
from streaming.generator import EventStream

SOURCE_PREFIX = "Source__events_raw"


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_1m_at_start": os.getloadavg()[0],
            "python": platform.python_version()}


def generate(n: int, rate_per_min: float, seed: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of exactly n events; event time advances at rate_per_min from 2026-01-01.

    The generator's stream on a simulated clock, cut at n (run_offline would go on until every
    injected instance finished, which at a high rate is many more events than asked for).
    """
    out: list[tuple[bytes, bytes]] = []
    stream = EventStream(seed=seed, fraud_rate=0.002, run_id="bench", patterns=("card_testing",),
                         rate_per_min=rate_per_min)  # sizes the IoT sensor fleet to the simulated rate
    now, step = datetime(2026, 1, 1, tzinfo=timezone.utc), timedelta(seconds=60.0 / rate_per_min)
    for _ in range(n):
        event, _truth = stream.next_event(now)
        out.append((str(event["actor_id"]).encode(), encode(event)))
        now += step
    return out


def publish(settings: config.Settings, records: list[tuple[bytes, bytes]]) -> float:
    from streaming.kafka_io import EventProducer

    producer = EventProducer(settings)
    started = time.monotonic()
    for key, value in records:
        producer.send_raw(key, value)
    if producer.close(120) or producer.failed:
        raise RuntimeError(f"publishing failed: {producer.last_error}")
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rest(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.load(resp)


def source_metric(port: int) -> tuple[str, str, str]:
    """(job id, source vertex id, operator metric name of the source's numRecordsOut)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            jobs = [j for j in rest(port, "/jobs/overview")["jobs"] if j["state"] == "RUNNING"]
            if jobs:
                jid = jobs[0]["jid"]
                vertex = next(v for v in rest(port, f"/jobs/{jid}")["vertices"] if v["name"].startswith("Source:"))
                names = {m["id"].split(".", 1)[1] for m in rest(port, f"/jobs/{jid}/vertices/{vertex['id']}/metrics")}
                wanted = [n for n in names if n.startswith(SOURCE_PREFIX) and n.endswith(".numRecordsOut")]
                if wanted:
                    return jid, vertex["id"], wanted[0]
        except (OSError, StopIteration, KeyError, IndexError):
            pass
        time.sleep(1)
    raise RuntimeError("the job's source metrics did not appear in the REST API within 120 s")


def records_read(port: int, jid: str, vid: str, metric: str) -> int:
    got = rest(port, f"/jobs/{jid}/vertices/{vid}/subtasks/metrics?get={metric}&agg=sum")
    return int(float(got[0]["sum"])) if got else 0


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def group_rss_mb(pid: int) -> tuple[float, float]:
    """(Python RSS, JVM and other children RSS) of the job process in MB."""
    return _rss_mb(pid), sum(_rss_mb(c) for c in thread_profile.children(pid))


def group_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the job process and its children (the JVM).

    Unlike events/s, CPU per event does not depend on what else the machine is running."""
    return sum(thread_profile.process_cpu_s(p) for p in (pid, *thread_profile.children(pid)))


Sample = tuple[float, int, float]  # (monotonic time, events read, job CPU seconds)


def steady_part(samples: list[Sample], total: int) -> tuple[Sample, Sample]:
    """The samples where 10 % and 90 % of the events had been read."""
    lo = next((s for s in samples if s[1] >= 0.1 * total), samples[0])
    hi = next((s for s in samples if s[1] >= 0.9 * total), samples[-1])
    return lo, hi


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.streaming.job_process import DetectionJob
    from streaming import patterns

    report: dict[str, Any] = {"machine": machine(), "patterns": patterns.enabled(),
                              "event_time_rate_per_min": args.rate_per_min}
    t0 = time.monotonic()
    records = generate(args.events, args.rate_per_min, args.seed)
    report["events"] = len(records)
    report["generate_s"] = round(time.monotonic() - t0, 1)
    with bench_environment("pa-bench-") as (settings, var_dir):
        report["publish_s"] = round(publish(settings, records), 1)
        report["machine"]["loadavg_1m_before_job"] = os.getloadavg()[0]
        job = DetectionJob(settings, var_dir / "job.log", with_scorer=not args.without_scorer)
        job.start(resume=False)
        report["window_scorer"] = not args.without_scorer
        try:
            report.update(measure(settings, job, len(records), args.timeout_s))
        finally:
            job.kill()
    return report


@contextmanager
def bench_environment(prefix: str) -> Iterator[tuple[config.Settings, Path]]:
    """A scratch database, fresh topics on the stack's broker, a temporary var/ and a free Flink REST
    port, as the environment a benchmark's own job runs in; the caller's environment is restored and
    the topics and the var/ (checkpoints: hundreds of MB a run) are deleted."""
    from tests.support.databases import scratch_database

    var_dir = Path(tempfile.mkdtemp(prefix=prefix))
    run_id = uuid.uuid4().hex[:8]
    saved = dict(os.environ)
    try:
        with scratch_database("pa_bench"):
            kafka_broker.start(config.load())
            os.environ.update(PA_TOPIC_EVENTS=f"bench-{run_id}.events", PA_TOPIC_ALERTS=f"bench-{run_id}.alerts",
                              PA_TOPIC_DEAD_LETTER=f"bench-{run_id}.dead-letter",
                              PA_TOPIC_WINDOWS=f"bench-{run_id}.windows", PA_VAR_DIR=str(var_dir),
                              PA_FLINK_REST_PORT=str(free_port()))
            settings = config.load()
            kafka_broker.ensure_topics(settings)
            yield settings, var_dir
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(var_dir, ignore_errors=True)
        try:
            kafka_broker.delete_topics(config.load(), rf"bench-{run_id}\..*")
        except kafka_broker.KafkaError as exc:
            print(f"could not delete this run's topics bench-{run_id}.*: {exc}", file=sys.stderr)


def measure(settings: config.Settings, job: Any, total: int, timeout_s: float) -> dict[str, Any]:
    port = settings.flink_rest_port
    jid, vid, metric = source_metric(port)
    samples: list[Sample] = []
    peak_py = peak_jvm = 0.0
    jvm = thread_profile.jvm_pid(job.proc.pid)
    threads: list[dict[str, float]] = []  # per-thread CPU when 10 % and 90 % of the events were read
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), records_read(port, jid, vid, metric), group_cpu_s(job.proc.pid)))
        py, jvm_rss = group_rss_mb(job.proc.pid)
        peak_py, peak_jvm = max(peak_py, py), max(peak_jvm, jvm_rss)
        if jvm and len(threads) < 2 and samples[-1][1] >= (0.1, 0.9)[len(threads)] * total:
            threads.append(thread_profile.thread_cpu_ms(jvm))
        if samples[-1][1] >= total:
            break
        time.sleep(0.5)
    read = samples[-1][1]
    first = next((s for s in samples if s[1] > 0), samples[-1])
    lo, hi = steady_part(samples, total)
    rate = (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else 0.0
    cpu_ms_per_1000 = 1e6 * (hi[2] - lo[2]) / (hi[1] - lo[1]) if hi[1] > lo[1] else 0.0
    cores = os.cpu_count() or 1
    return {
        "read": read,
        "complete": read >= total,
        "first_to_last_s": round(samples[-1][0] - first[0], 1),
        "sustained_events_per_s": round(rate, 1),
        "sustained_events_per_min": round(rate * 60),
        "mean_events_per_s_first_to_last": round((read - first[1]) / max(samples[-1][0] - first[0], 1e-9), 1),
        # what the job spent per event in the same 10-90 % stretch, and the rate that would give with
        # every core to itself: comparable between runs on a machine shared with other work
        "job_cpu_ms_per_1000_events": round(cpu_ms_per_1000, 1),
        "cpu_bound_events_per_min_on_all_cores": round(60 * cores * 1e6 / cpu_ms_per_1000) if cpu_ms_per_1000 else 0,
        "peak_rss_mb": {"python": round(peak_py), "jvm": round(peak_jvm)},
        # the same stretch by operator chain, garbage collector and JIT (streaming/thread_profile.py)
        "jvm_cpu_by_threads": thread_profile.shares(*threads) if len(threads) == 2 else None,
        "loadavg_1m_at_end": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate-per-min", type=float, default=100_000.0,
                        help="simulated traffic rate that spaces the event timestamps")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--without-scorer", action="store_true",
                        help="the job alone: its windows wait on the topic instead of being scored meanwhile")
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="stop measuring after this long")
    # a stopped bench (timeout, kill) still stops its job and scorer: they run in sessions of their own
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
