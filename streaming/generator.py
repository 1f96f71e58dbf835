"""Event generator: background behaviour plus injected patterns, at a true rate, to Kafka or a file.

    python -m streaming.generator --mode NORMAL --duration 60 [--seed 42] [--out kafka|FILE.jsonl]

Deterministic with --seed: the same seed gives the same actors, amounts, ids and injected instances
in the same order. To Kafka, events are paced in real time and stamped with their send time. To a
file, the run is offline: a simulated clock advances at the mode's rate from --start, nothing sleeps,
and the output (events and ground truth) is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from patternalarm import config
from streaming import behaviours, scenarios
from streaming.load_profile import Pacer, rate_function


@dataclass
class EventStream:
    """Interleaves background events with running scenario instances; yields (event, finished truth)."""

    seed: int
    fraud_rate: float
    run_id: str
    patterns: tuple[str, ...] | None = None
    test_id: str | None = None
    # Multiplies the gaps between an injected instance's steps. Every pattern's time limit is an upper
    # bound ("within 10 min"), so 0.25 keeps attacks positive while a demo need not wait minutes for a
    # slow script to finish; background traffic is unaffected.
    pace: float = 1.0
    # Sizes the IoT sensor fleet (devices report on schedules of their own, behaviours.SensorFleet).
    rate_per_min: float = 10_000.0
    rng: random.Random = field(init=False)
    fleet: behaviours.SensorFleet = field(init=False)
    _due: list[tuple[datetime, int, scenarios.Instance]] = field(init=False, default_factory=list)
    _counter: Iterator[int] = field(init=False, default_factory=itertools.count)
    started_instances: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.fleet = behaviours.SensorFleet(self.rate_per_min)

    def next_event(self, now: datetime) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if self._due and self._due[0][0] <= now:
            return self._step(now)
        if self.fraud_rate > 0 and self.rng.random() < self.fraud_rate:
            instance = scenarios.pick(self.rng, self.started_instances, self.patterns)
            bind = getattr(instance, "bind_fleet", None)
            if bind:  # an IoT anomaly takes over one of the fleet's sensors (scenarios/iot.py)
                bind(self.fleet, self.rng)
            self.started_instances += 1
            heapq.heappush(self._due, (now, next(self._counter), instance))
            return self._step(now)
        return self._stamp(behaviours.legit_event(self.rng, now, self.fleet)), None

    def _step(self, now: datetime) -> tuple[dict[str, Any], dict[str, Any] | None]:
        _, _, instance = heapq.heappop(self._due)
        _, build = instance.steps.pop(0)
        event = self._stamp(build(now))
        instance.transaction_ids.append(event["transaction_id"])
        instance.first_event_time = instance.first_event_time or now
        instance.last_event_time = now
        if instance.steps:
            # IoT steps are a device's reading schedule: compressing them would change its usual interval
            delay = instance.steps[0][0] * (self.pace if getattr(instance, "paced", True) else 1.0)
            heapq.heappush(self._due, (now + timedelta(seconds=delay), next(self._counter), instance))
            return event, None
        return event, instance.truth(self.run_id)

    def _stamp(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.test_id:
            event["test_id"] = self.test_id
        return event

    def unfinished(self) -> int:
        return len(self._due)


@dataclass
class RunStats:
    target_per_min: float = 0.0
    produced: int = 0
    injected: int = 0
    abandoned: int = 0  # instances still running when --finish-within ran out (no ground truth recorded)
    errors: int = 0
    started: float = field(default_factory=time.time)

    def as_dict(self, achieved_per_min: float) -> dict[str, Any]:
        return {"produced": self.produced, "injected_instances": self.injected, "abandoned_instances": self.abandoned,
                "errors": self.errors,
                "target_per_min": self.target_per_min, "achieved_per_min": round(achieved_per_min, 1),
                "elapsed_s": round(time.time() - self.started, 1)}


def _emit(stream: EventStream, now: datetime, send: Callable[[dict[str, Any]], None],
          record: Callable[[dict[str, Any]], None], stats: RunStats) -> None:
    """One event out; the ground truth of an instance goes out once its last event has been sent."""
    event, truth = stream.next_event(now)
    send(event)
    stats.produced += 1
    if truth:
        record(truth)
        stats.injected += 1


def run(stream: EventStream, send: Callable[[dict[str, Any]], None], record: Callable[[dict[str, Any]], None],
        mode: str, duration_s: float | None, stats_file: Path | None = None,
        interrupts: Callable[[], int] = lambda: 0, tail_s: float = 5.0,
        finish_within_s: float | None = None) -> RunStats:
    """Produce at the mode's rate until the duration ends or a stop request, then finish what was injected.

    After the main phase no new instance starts, but background traffic keeps flowing at the same
    rate until every running instance has sent its last event, plus ``tail_s`` seconds: event time
    stays truthful (no compressed attack) and the job's watermark passes the last injected event.
    ``interrupts()`` counts stop requests (Ctrl-C, SIGTERM): the first one starts finishing, a second
    one ends at once.
    """
    pacer = Pacer(rate_function(mode))
    stats = RunStats(target_per_min=pacer.rate_per_min(0))
    next_report = time.monotonic() + 1.0
    finishing_since: float | None = None
    while True:
        if finishing_since is None and (interrupts() or (duration_s is not None and pacer.elapsed() >= duration_s)):
            finishing_since = pacer.elapsed()
            stream.fraud_rate = 0.0  # no new instance; running ones complete
        if finishing_since is not None:
            if interrupts() >= 2 or (stream.unfinished() == 0 and pacer.elapsed() - finishing_since >= tail_s):
                break
            if finish_within_s is not None and pacer.elapsed() - finishing_since >= finish_within_s:
                stats.abandoned = stream.unfinished()
                break
        now = datetime.now(timezone.utc)
        for _ in range(pacer.due()):
            _emit(stream, now, send, record, stats)
        if stats_file and time.monotonic() >= next_report:
            _write_stats(stats_file, stats, pacer)
            next_report = time.monotonic() + 1.0
        pacer.wait()
    if stats_file:
        _write_stats(stats_file, stats, pacer)
    return stats


def run_offline(stream: EventStream, send: Callable[[dict[str, Any]], None],
                record: Callable[[dict[str, Any]], None], rate_per_min: float, duration_s: float,
                start: datetime) -> RunStats:
    """Generate ``duration_s`` of simulated time at a fixed rate, as fast as the CPU allows."""
    stats = RunStats(target_per_min=rate_per_min)
    step = timedelta(seconds=60.0 / rate_per_min)
    now, end = start, start + timedelta(seconds=duration_s)
    while now < end or stream.unfinished():
        if now >= end:
            stream.fraud_rate = 0.0  # let running instances complete on background time
        _emit(stream, now, send, record, stats)
        now += step
    return stats


def _write_stats(path: Path, stats: RunStats, pacer: Pacer) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats.as_dict(pacer.achieved_per_min())))
    tmp.replace(path)


def parse_duration(text: str | None) -> float | None:
    """'60', '60s', '5m', '1h' -> seconds; None or '' -> run until interrupted."""
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise SystemExit(f"generator: duration {text!r} is not like 60, 60s, 5m or 1h") from None


def main(argv: list[str] | None = None) -> int:
    settings = config.load()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="NORMAL", help="MINI, NORMAL, PEAK, CRISIS, SPIKE or events/min")
    parser.add_argument("--duration", default=None, help="60, 60s, 5m; default until Ctrl-C")
    parser.add_argument("--seed", type=int, default=settings.generator_seed)
    parser.add_argument("--fraud-rate", type=float, default=settings.fraud_rate)
    parser.add_argument("--patterns", default=None, help="comma-separated subset of injected patterns")
    parser.add_argument("--out", default="kafka", help="'kafka' (events topic) or a .jsonl file path")
    parser.add_argument("--truth-file", type=Path, default=None, help="also write ground truth as JSONL")
    parser.add_argument("--no-truth-db", action="store_true", help="do not write the ground_truth table")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--finish-within", type=float, default=None,
                        help="seconds after the main phase to let running attacks finish; the rest are "
                             "abandoned without ground truth (default: wait for all)")
    parser.add_argument("--without", default=None, help="comma-separated injected patterns to leave out")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="multiply the gaps between an attack's steps (0.25: four times faster)")
    parser.add_argument("--test-id", default=None, help="tag events with a load-test run id")
    parser.add_argument("--stats-file", type=Path, default=None)
    parser.add_argument("--start", default="2026-01-01T00:00:00+00:00",
                        help="simulated start time of file output (ISO-8601)")
    args = parser.parse_args(argv)

    run_id = args.run_id or f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{args.seed}"
    patterns = tuple(args.patterns.split(",")) if args.patterns else None
    if args.without:
        left_out = set(args.without.split(","))
        unknown = left_out - set(scenarios.SCENARIOS)
        if unknown:
            raise SystemExit(f"generator: --without names unknown patterns {sorted(unknown)}; known: "
                             f"{', '.join(scenarios.SCENARIOS)}")
        patterns = tuple(p for p in (patterns or tuple(scenarios.SCENARIOS)) if p not in left_out)
    if not 0.0 < args.pace <= 1.0:
        raise SystemExit(f"generator: --pace {args.pace} must be in (0, 1]: a slower attack could break its "
                         "pattern's time limit")
    stream = EventStream(args.seed, args.fraud_rate, run_id, patterns, args.test_id, pace=args.pace,
                         rate_per_min=rate_function(args.mode)(0))

    requests = {"count": 0}

    def on_signal(*_: object) -> None:
        requests["count"] += 1
        if requests["count"] == 1:
            print("generator: finishing running injected instances (Ctrl-C again to stop now)", file=sys.stderr)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    from streaming.ground_truth import GroundTruthSink

    truth_sink = GroundTruthSink(settings, to_database=not args.no_truth_db, labels_file=args.truth_file)
    if args.out == "kafka":
        from streaming.kafka_io import EventProducer

        producer = EventProducer(settings)
        stats = run(stream, producer.send, truth_sink.record, args.mode, parse_duration(args.duration),
                    args.stats_file, interrupts=lambda: requests["count"], finish_within_s=args.finish_within)
    else:
        duration = parse_duration(args.duration)
        if duration is None:
            raise SystemExit("generator: file output needs --duration (simulated time to generate)")
        with Path(args.out).open("w") as out:
            stats = run_offline(stream, lambda e: out.write(json.dumps(e, separators=(",", ":")) + "\n"),
                                truth_sink.record, rate_function(args.mode)(0), duration,
                                datetime.fromisoformat(args.start))
    if args.out == "kafka":
        undelivered = producer.close()
        stats.errors = producer.failed + undelivered
        if producer.last_error:
            print(f"generator: last delivery error: {producer.last_error}", file=sys.stderr)
    truth_sink.close()
    summary = stats.as_dict(stats.produced * 60.0 / max(time.time() - stats.started, 1e-9))
    print(json.dumps({"run_id": run_id, **summary}))
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
