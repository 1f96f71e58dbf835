"""End-to-end latency and memory at the load modes' true rates: prints numbers, asserts nothing.

    PYTHONPATH=. $(python3 scripts/envs.py python streaming) streaming/bench_latency.py \
        [--modes NORMAL,PEAK,CRISIS] [--seconds 60]
    ... streaming/bench_latency.py --modes 1000000 --pregenerated   # a rate in events/min; events made
                                                                    # before each phase, published on schedule

Complements streaming/bench_job.py (how fast the job drains a backlog: the highest rate it sustains)
with what a user sees at a given rate: the generator produces live at each mode's rate (token bucket,
event time = wall time, attacks at --pace) into fresh topics read by a fresh detection job writing to
a scratch database, and for each mode this prints

  * produced vs processed events (the job keeps up when the backlog at the end of the phase is small),
  * event -> alert latency p50/p95/p99/max of the rule alerts: from the triggering event's timestamp
    to the moment its alert row was stored, which is also the moment the database grouped it into an incident (the
    grouping trigger runs in the same transaction). It includes the watermark delay
    (PA_WATERMARK_DELAY_MS) by design: a pattern cannot complete before the watermark passes its event;
  * the CPU each component of the stack used from the start of production until the job caught up,
    in cores (2.0 = both of this machine's), and the job's by operator chain, GC and JIT
    (`job_cores_by_threads`, streaming/thread_profile.py) and PostgreSQL's by the application each
    backend serves (`postgres_cores_by_backend`);
  * the proportional set size (PSS: shared pages split between the processes sharing them, so the
    numbers add up) of every process of the stack, grouped by component, peak over the phase.

  * the same for suspicious_activity alerts (made by the database from a window's high score: their
    "event" is the window's end, so this is the scoring path's latency);
  * window -> score latency p50/p99/max: from the window's end to the moment the window scorer
    stored its score (watermark, the windows topic, the micro-batch wait, the request), and how many
    windows were scored or stored unscored;
  * the scorer's lag as bursts (`scorer_lag`: a minute's windows close together) and whether it kept
    up (`scorer_lag.keeps_up`: every burst that had a whole minute drained within it; `worst_share`,
    the longest drain as a share of the minute, is the margin). A phase must be long enough to
    judge: at 1 M/min the first bursts drain on a fresh store, later ones on a fuller one.

After the last phase, 10 s of unreported traffic closes its watermark, and every phase's rule alerts
are counted again (`event_to_alert_at_end`, see `recount`): the alerts of a phase's last
PA_WATERMARK_DELAY_MS of events wait for the next events, so the phase's own report misses them and
the recount's `all` gives them the bench's pause as latency; `before_last_delay` is the number a
continuous stream shows.

The scoring service, MLflow and Airflow are measured when they run (`make up`); the window scorer
scores windows through the stack's scoring service when that is up.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from patternalarm import config
from patternalarm.events import encode
from patternalarm.stack import postgres
from streaming import generator, thread_profile
from streaming.bench_job import bench_environment, machine
from streaming.load_profile import MODES_PER_MIN

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
COMPONENTS = (  # (name, test on the process's command line); first match wins
    ("detection-job", lambda c, job: job),
    ("window-scorer", lambda c, job: "streaming.window_scorer" in c),
    ("kafka", lambda c, job: "kafka.Kafka" in c),
    ("postgres", lambda c, job: c.startswith("postgres") or "/postgresql/" in c),
    ("mlflow", lambda c, job: "mlflow" in c),
    ("scoring-service", lambda c, job: "serving" in c and "python" in c),
    ("airflow", lambda c, job: "airflow" in c),
)


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stack_processes(job_pid: int) -> dict[int, str]:
    """Every stack process's pid -> its component (the bench process itself is 'generator')."""
    job = thread_profile.descendants(job_pid)
    found = {os.getpid(): "generator"}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for name, matches in COMPONENTS:
            if matches(cmd, int(entry.name) in job):
                found[int(entry.name)] = name
                break
    return found


def machine_cpu_s() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far, from /proc/stat: busy counts every
    process, the stack's or not; stolen is time the hypervisor gave our vCPUs to someone else."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


@dataclass
class StackSampler:
    """Peak PSS by component over a phase, and the CPU each component used since ``mark()``: where
    the two cores went (a process that ends between samples loses its last seconds)."""

    job_pid: int
    peak: dict[str, float] = field(default_factory=dict)
    peak_total: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    cpu_at_mark: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, tuple[str, float]] = field(default_factory=dict)
    marked_at: float = field(default_factory=time.monotonic)
    machine_at_mark: tuple[float, float] = (0.0, 0.0)
    lock: threading.Lock = field(default_factory=threading.Lock)  # the sampling thread and the phase's
    heartbeat: Path | None = None  # the window scorer's: its lag is sampled with the rest
    lags: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, windows not yet read)
    threads_at_mark: dict[str, float] = field(default_factory=dict)  # the job JVM's CPU ms by thread
    settings: config.Settings | None = None  # to name PostgreSQL's processes (postgres_backends)
    pg_labels: dict[int, str] = field(default_factory=dict)  # PostgreSQL pid -> who the backend serves

    def mark(self) -> None:
        with self.lock:
            self.lags = []
            self.machine_at_mark = machine_cpu_s()
            self.cpu_at_mark = {pid: thread_profile.process_cpu_s(pid) for pid in stack_processes(self.job_pid)}
            self.cpu_last = {}
            self.threads_at_mark = self._job_threads()
            self.marked_at = time.monotonic()

    def _job_threads(self) -> dict[str, float]:
        jvm = thread_profile.jvm_pid(self.job_pid)
        try:
            return thread_profile.thread_cpu_ms(jvm) if jvm else {}
        except (OSError, subprocess.SubprocessError):
            return {}

    def job_cores_by_threads(self, top: int = 15) -> list[dict[str, Any]]:
        """The job JVM's CPU since mark() by operator chain, GC and JIT (thread_profile), in
        cores: drains (bench_job) show where a backlog's CPU goes; this shows a live stream's, with
        its timers, flushes and checkpoints."""
        wall = max(time.monotonic() - self.marked_at, 1e-9)
        groups = thread_profile.shares(self.threads_at_mark, self._job_threads(), top)
        return [{"threads": g["threads"], "cores": round(float(g["cpu_ms"]) / 1000 / wall, 3), "share": g["share"]}
                for g in groups]

    def sample(self) -> None:
        processes = stack_processes(self.job_pid)
        labels = postgres_backends(self.settings) if self.settings is not None else {}  # a psql, outside the lock
        memory: dict[str, float] = {}
        with self.lock:
            for pid, name in processes.items():
                memory[name] = memory.get(name, 0.0) + _pss_mb(pid)
                self.cpu_last[pid] = (name, thread_profile.process_cpu_s(pid))
            for k, v in memory.items():
                self.peak[k] = max(self.peak.get(k, 0.0), v)
            self.pg_labels.update(labels)
            self.peak_total = max(self.peak_total, sum(memory.values()))
            lag = self._scorer_lag()
            if lag is not None:
                self.lags.append((time.monotonic(), lag))

    def _scorer_lag(self) -> int | None:
        try:
            return json.loads(self.heartbeat.read_text()).get("lag") if self.heartbeat else None
        except (OSError, ValueError):
            return None

    def scorer_bursts(self, idle_below: int = 500) -> dict[str, Any]:
        """The scorer's lag over the phase as bursts: windows close together at each minute
        boundary, so the lag jumps and the scorer works it down. Each burst: when it began (seconds
        after mark()), its peak, and how long until the lag was back under ``idle_below`` (None:
        still draining when the phase ended). The scorer keeps up while every burst drains before
        the next one begins."""
        with self.lock:
            samples = list(self.lags)
        bursts: list[dict[str, Any]] = []
        for at, lag in samples:
            t = round(at - self.marked_at, 1)
            current = bursts[-1] if bursts and bursts[-1]["drained_after_s"] is None else None
            if current is not None:
                current["peak"] = max(current["peak"], lag)
                if lag < idle_below:
                    current["drained_after_s"] = round(t - current["began_s"], 1)
            elif lag >= idle_below:
                bursts.append({"began_s": t, "peak": lag, "drained_after_s": None})
        ended_s = round(samples[-1][0] - self.marked_at, 1) if samples else 0.0
        return {"bursts": bursts, "max": max((lag for _, lag in samples), default=None),
                "last": samples[-1][1] if samples else None, "samples": len(samples),
                "keeps_up": bursts_keep_up(bursts, ended_s)}

    def sample_until_stopped(self, every_s: float = 2.0) -> None:
        while not self.stop.wait(every_s):
            self.sample()

    def postgres_cores_by_backend(self) -> dict[str, float]:
        """PostgreSQL's CPU since mark() by whom each process served (application_name, else its
        process title: the job's JDBC sinks, the window scorer, autovacuum, the WAL writer...).
        Call after cores_by_component(), which takes the last sample."""
        with self.lock:
            wall = max(time.monotonic() - self.marked_at, 1e-9)
            used: dict[str, float] = {}
            for pid, (name, seconds) in self.cpu_last.items():
                if name == "postgres":
                    label = self.pg_labels.get(pid) or postgres_process_title(pid)
                    used[label] = used.get(label, 0.0) + max(0.0, seconds - self.cpu_at_mark.get(pid, 0.0))
        return {k: round(v / wall, 3) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v / wall >= 0.001}

    def cores_by_component(self) -> dict[str, float]:
        """CPU seconds per wall second since mark() (2.0 = both cores), by component."""
        self.sample()
        with self.lock:
            wall = max(time.monotonic() - self.marked_at, 1e-9)
            used: dict[str, float] = {}
            for pid, (name, seconds) in self.cpu_last.items():
                used[name] = used.get(name, 0.0) + max(0.0, seconds - self.cpu_at_mark.get(pid, 0.0))
            busy, stolen = (now - then for now, then in zip(machine_cpu_s(), self.machine_at_mark))
        return {**{k: round(v / wall, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1])},
                "whole_machine_busy": round(busy / wall, 2), "stolen_by_hypervisor": round(stolen / wall, 2)}


def postgres_backends(settings: config.Settings) -> dict[int, str]:
    """pid -> the application_name of each session that has one (the project's role cannot see the
    background processes' backend_type: postgres_process_title names those)."""
    try:
        rows = postgres.psql(settings, "SELECT pid, application_name FROM pg_stat_activity WHERE application_name <> ''")
    except postgres.PostgresError:
        return {}
    return {int(pid): label for pid, _, label in (line.partition("|") for line in rows.splitlines()) if pid.isdigit()}


def postgres_process_title(pid: int) -> str:
    """What a PostgreSQL process says it is ("autovacuum worker", "walwriter", "patternalarm db
    127.0.0.1(5432) idle" -> "client backend"); "ended" once it is gone."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "ended"
    title = title.split(": ", 2)[-1] if title.startswith("postgres: ") else "postmaster"
    return "client backend" if "(" in title else title


def processed(settings: config.Settings, since: datetime) -> int:
    return int(postgres.psql(settings, "SELECT coalesce(sum(valid_events + invalid_events), 0) FROM "
                                       f"stream_throughput WHERE window_end > '{since.isoformat()}'"))


def _quantiles(settings: config.Settings, rows_sql: str, count_as: str) -> dict[str, Any]:
    """Count, p50/p95/p99/max of ``ms`` and counts by ``score_status`` over the rows ``rows_sql`` selects."""
    row = postgres.psql(settings, f"""
        WITH r AS ({rows_sql})
        SELECT json_build_object(
          '{count_as}', count(*),
          'p50_ms', round(percentile_cont(0.50) WITHIN GROUP (ORDER BY ms)::numeric),
          'p95_ms', round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric),
          'p99_ms', round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric),
          'max_ms', round(max(ms)::numeric),
          'score_status', (SELECT json_object_agg(score_status, n) FROM
                             (SELECT score_status, count(*) AS n FROM r GROUP BY 1) s))
        FROM r""")
    return json.loads(row)


def latency(settings: config.Settings, start: datetime, end: datetime, model_made: bool = False,
            until: str = "stored_at") -> dict[str, Any]:
    """Rule alerts (the job's), or ``model_made`` suspicious_activity alerts (the database makes them
    from a window's score, so their latency is the window's scoring latency). ``until="emitted_at"``
    gives the job's share of it: what is left of event_to_alert is the JDBC sink and the grouping."""
    if until not in ("stored_at", "emitted_at"):
        raise ValueError(f"until={until!r}: use 'stored_at' or 'emitted_at'")
    return _quantiles(settings, f"""
        SELECT extract(epoch FROM {until} - event_time) * 1000 AS ms, score_status FROM alerts
         WHERE event_time >= '{start.isoformat()}' AND event_time < '{end.isoformat()}'
           AND (pattern = 'suspicious_activity') = {'true' if model_made else 'false'}""", "alerts")


def window_scoring(settings: config.Settings, start: datetime, end: datetime) -> dict[str, Any]:
    """Window end -> score stored, for the windows that ended during the phase."""
    return _quantiles(settings, f"""
        SELECT extract(epoch FROM scored_at - window_end) * 1000 AS ms, score_status FROM actor_windows
         WHERE window_end > '{start.isoformat()}' AND window_end <= '{end.isoformat()}'""", "windows")


# What the generator makes offline here, encoding included (measured 15-58k/s: the previous phase's
# tail competes for the cores).
GENERATED_PER_S = 12_000


def pregenerate(stream: generator.EventStream, rate_per_min: float,
                seconds: float) -> tuple[datetime, list[tuple[bytes, bytes]]]:
    """The phase's events made before it starts, stamped from a start time far enough ahead that the
    making ends first. Publishing them then costs a produce call per event: at rates past what one
    Python generator makes live beside the stack on two cores, the load source would otherwise take
    the CPU from the stack it measures (a real load source runs elsewhere)."""
    lead_s = 5.0 + rate_per_min * seconds / 60 / GENERATED_PER_S
    start = datetime.now(timezone.utc) + timedelta(seconds=lead_s)
    records: list[tuple[bytes, bytes]] = []  # (key, value) as EventProducer.send makes them
    step = timedelta(seconds=60.0 / rate_per_min)
    for i in range(round(rate_per_min * seconds / 60)):  # cut at the phase's end, as live production is
        event, _truth = stream.next_event(start + i * step)
        records.append((str(event["actor_id"]).encode(), encode(event)))
    if datetime.now(timezone.utc) > start:
        raise RuntimeError(f"making {len(records)} events took longer than the {lead_s:.0f} s lead: "
                           "lower GENERATED_PER_S in streaming/bench_latency.py")
    return start, records


def publish_on_schedule(producer: Any, records: list[tuple[bytes, bytes]], start: datetime,
                        rate_per_min: float) -> None:
    """Record i goes out at start + i / rate (event time = wall time, as live)."""
    step = 60.0 / rate_per_min
    t0 = time.monotonic() + (start - datetime.now(timezone.utc)).total_seconds()
    for i, (key, value) in enumerate(records):
        ahead = t0 + i * step - time.monotonic()
        if ahead > 0.002:
            time.sleep(ahead)
        producer.send_raw(key, value)


WINDOW_PERIOD_S = 60.0  # windows close once a minute (history_features.WINDOW_MINUTES), so bursts come a minute apart


def bursts_keep_up(bursts: list[dict[str, Any]], ended_s: float, period_s: float = WINDOW_PERIOD_S) -> dict[str, Any]:
    """Whether the scorer kept up, from its bursts (StackSampler.scorer_bursts): every burst that
    began at least a period before the phase ended drained within that period, before the next
    minute's windows came. ``worst_share`` is the longest such drain as a share of the period, the
    margin (0.95: kept up with 5 % to spare; a burst still draining counts from its start to the
    end, so at least 1). Verdict None when no burst had a whole period (a phase too short to judge).
    Why not the lag at the end: it depends on where in the minute the phase stopped."""
    judged = [b for b in bursts if b["began_s"] + period_s <= ended_s]
    if not judged:
        return {"verdict": None, "judged_bursts": 0, "worst_share": None}
    worst = max((b["drained_after_s"] if b["drained_after_s"] is not None else ended_s - b["began_s"]) / period_s
                for b in judged)
    return {"verdict": worst < 1.0, "judged_bursts": len(judged), "worst_share": round(worst, 3)}


def produce(settings: config.Settings, mode: str, seconds: float, seed: int, pace: float, pregenerated: bool,
            on_start: Callable[[datetime], None] = lambda start: None,
            finish_within_s: float = 30.0) -> tuple[datetime, datetime, generator.RunStats]:
    """The mode's events for ``seconds`` at its rate, made first when ``pregenerated``; ``on_start``
    runs with the first event's time just before it is sent. Returns production's start and end."""
    from streaming.kafka_io import EventProducer

    producer = EventProducer(settings)
    rate = generator.rate_function(mode)(0)
    stream = generator.EventStream(seed, settings.fraud_rate, f"bench-{mode}", pace=pace, rate_per_min=rate)
    if pregenerated:
        start, records = pregenerate(stream, rate, seconds)
        time.sleep(max(0.0, (start - datetime.now(timezone.utc)).total_seconds()))
        on_start(start)
        publish_on_schedule(producer, records, start, rate)
        stats = generator.RunStats(target_per_min=rate, produced=len(records))
    else:
        start = datetime.now(timezone.utc)
        on_start(start)
        stats = generator.run(stream, producer.send, lambda truth: None, mode, seconds, tail_s=0.0,
                              finish_within_s=finish_within_s)
    stats.errors = producer.failed + producer.close()
    return start, datetime.now(timezone.utc), stats


def run_phase(settings: config.Settings, mode: str, seconds: float, seed: int, pace: float,
              drain_s: float, sampler: StackSampler, pregenerated: bool = False) -> dict[str, Any]:
    bases: list[int] = []  # events already counted in the rows overlapping the phase's start

    def started(start: datetime) -> None:
        bases.append(processed(settings, start))
        sampler.mark()

    start, end, stats = produce(settings, mode, seconds, seed, pace, pregenerated, on_start=started)
    base = bases[0]
    ended = time.monotonic()
    deadline = ended + drain_s
    while processed(settings, start) - base < stats.produced and time.monotonic() < deadline:
        time.sleep(0.5)
    # stream_throughput rows cover 10 s of processing time each, so up to ~10 s here is bookkeeping;
    # a job that falls behind shows as a number growing with the phase's length
    caught_up_s = time.monotonic() - ended
    cores = sampler.cores_by_component()
    threads = sampler.job_cores_by_threads()
    postgres_cores = sampler.postgres_cores_by_backend()
    time.sleep(settings.watermark_delay_ms / 1000 + 3)  # the last alerts wait for the watermark
    done = processed(settings, start) - base
    return {"mode": mode, "target_per_min": MODES_PER_MIN.get(mode),
            "production_start": start.isoformat(), "production_end": end.isoformat(),
            "produced": stats.produced, "produce_errors": stats.errors,
            "achieved_per_min": round(stats.produced * 60 / max((end - start).total_seconds(), 1e-9)),
            "processed": done, "all_processed_s_after_production_ended": round(caught_up_s, 1),
            "cores_used_by_component": cores,
            "job_cores_by_threads": threads,
            "postgres_cores_by_backend": postgres_cores,
            "event_to_alert": latency(settings, start, end),
            "event_to_emitted": latency(settings, start, end, until="emitted_at"),
            "window_to_suspicious_activity_alert": latency(settings, start, end, model_made=True),
            "window_to_score": window_scoring(settings, start, end),
            "scorer_lag": sampler.scorer_bursts(),
            "window_scorer_since_start": scorer_heartbeat(settings)}


CLOSING_S = 10.0  # traffic after the last phase that moves its watermark past the phase's end


def recount(settings: config.Settings, phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each phase's rule alerts counted again once every phase has run. A phase's own numbers are
    taken seconds after its production ended, and the alerts of its last PA_WATERMARK_DELAY_MS of
    events are not there yet: the watermark stays that far behind the last event until more events
    come, here the next phase's or the closing traffic after a pause, so their latency is the
    bench's pause. ``all`` counts them; ``before_last_delay`` leaves them out, which is what a
    continuous stream shows (there the next events come within the delay)."""
    delay = timedelta(milliseconds=settings.watermark_delay_ms)
    recounted = []
    for phase in phases:
        start, end = (datetime.fromisoformat(phase[k]) for k in ("production_start", "production_end"))
        every, settled = latency(settings, start, end), latency(settings, start, end - delay)
        recounted.append({"mode": phase["mode"], "all": every, "before_last_delay": settled,
                          "alerts_in_last_delay": every["alerts"] - settled["alerts"],
                          "missing_from_phase_report": every["alerts"] - phase["event_to_alert"]["alerts"]})
    return recounted


def scorer_heartbeat(settings: config.Settings) -> dict[str, Any]:
    """The bench's window scorer's last heartbeat: its counts, the windows it has not read yet (lag)
    and the wall seconds of each stage of its loop since it started (streaming/window_scorer.py)."""
    from streaming.window_scorer import heartbeat_file

    try:
        return json.loads(heartbeat_file(settings).read_text())
    except (OSError, ValueError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="NORMAL,PEAK,CRISIS")
    parser.add_argument("--seconds", type=float, default=60.0, help="production time per mode")
    parser.add_argument("--pace", type=float, default=0.25, help="attack pace (generator --pace)")
    parser.add_argument("--drain-s", type=float, default=120.0, help="longest wait for the job to catch up")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pregenerated", action="store_true",
                        help="make each phase's events before it and only publish them on schedule (for rates "
                             "past what the generator makes live beside the stack)")
    parser.add_argument("--without-scorer", action="store_true",
                        help="the event -> incident path alone: windows wait on their topic, unscored")
    # a stopped bench (timeout, kill) still stops its job and scorer: they run in sessions of their own
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parser.parse_args()

    from streaming.window_scorer import heartbeat_file
    from tests.streaming.job_process import DetectionJob

    report: dict[str, Any] = {"machine": machine(), "phases": []}
    with bench_environment("pa-bench-latency-") as (settings, var_dir):
        job = DetectionJob(settings, var_dir / "job.log", with_scorer=not args.without_scorer)
        job.start(resume=False)
        try:
            modes = args.modes.split(",")
            for i, mode in enumerate(modes):
                beat = None if args.without_scorer else heartbeat_file(settings)
                sampler = StackSampler(job.proc.pid, heartbeat=beat, settings=settings)
                sampling = threading.Thread(target=sampler.sample_until_stopped, daemon=True)
                sampling.start()
                phase = run_phase(settings, mode, args.seconds, args.seed + i, args.pace, args.drain_s,
                                  sampler, pregenerated=args.pregenerated)
                sampler.stop.set()
                sampling.join()
                phase["peak_pss_mb"] = {k: round(v) for k, v in sorted(sampler.peak.items())}
                phase["peak_pss_mb_total"] = round(sampler.peak_total)
                report["phases"].append(phase)
                print(json.dumps(phase), flush=True)
            # closing traffic, not reported: without it the last phase's watermark stops where its
            # events stop, and alerts waiting for it would never show in the recount
            produce(settings, modes[-1], CLOSING_S, args.seed + len(modes), args.pace, args.pregenerated)
            time.sleep(settings.watermark_delay_ms / 1000 + 3)
            report["event_to_alert_at_end"] = recount(settings, report["phases"])
            print(json.dumps({"event_to_alert_at_end": report["event_to_alert_at_end"]}), flush=True)
        finally:
            job.kill()
    report["machine"]["loadavg_1m_at_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
