"""Micro-batches of the window scorer as they really happen: prints numbers, asserts nothing.

    PYTHONPATH=. TZ=UTC $(python3 scripts/envs.py python streaming) streaming/bench_scoring.py --actors 1500 --minutes 3

Starts, in an isolated run (own topics, scratch database, var/), a real scoring service serving a
test forest registered in MLflow under a throw-away name and the real detection job with its window
scorer pointed at it, then publishes a live stream (event time = wall time) of --actors actors, each
active about once a minute, for --minutes. Every window of a batch carries the batch's scored_at, so from actor_windows:

  * batch size = windows sharing one scored_at (should never exceed PA_SCORING_BATCH_SIZE);
  * wait = scored_at - (window_end + PA_WATERMARK_DELAY_MS), the time from the moment the watermark
    closes the window to the moment its batch was answered (batching wait + request).

Needs MLflow up (`make up SERVICES=mlflow`); kills what it starts.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
import tempfile

import psycopg2

from patternalarm import config
from streaming import behaviours
from streaming.kafka_io import EventProducer

DOMAINS = ("ecommerce", "gaming", "fintech")


def publish_live(settings: config.Settings, actors: int, minutes: float) -> int:
    """Each second, the actors whose turn it is (about once a minute each) send one event stamped now."""
    producer, rng, sent = EventProducer(settings), random.Random(7), 0
    end = time.monotonic() + minutes * 60
    second = 0
    while time.monotonic() < end:
        tick = time.monotonic()
        for index in range(second % 60, actors, 60):
            domain = DOMAINS[index % len(DOMAINS)]
            producer.send(behaviours.FACTORIES[domain](rng, 5_000_000 + index, datetime.now(timezone.utc)))
            sent += 1
        producer.flush_now()
        second += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    producer.close()
    return sent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(settings: config.Settings) -> None:
    with psycopg2.connect(settings.db_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE score_status = 'scored'), count(*) FROM actor_windows")
        scored, total = cur.fetchone()
        cur.execute("SELECT count(*) FROM actor_windows WHERE score_status = 'scored' GROUP BY scored_at")
        sizes = [n for (n,) in cur.fetchall()]
        cur.execute("SELECT extract(epoch FROM scored_at - window_end) * 1000 - %s FROM actor_windows "
                    "WHERE score_status = 'scored'", (settings.watermark_delay_ms,))
        waits = [float(w) for (w,) in cur.fetchall()]
    print(f"windows: {total} stored, {scored} scored, in {len(sizes)} batches "
          f"(PA_SCORING_BATCH_SIZE={settings.scoring_batch_size}, PA_SCORING_MAX_WAIT_MS={settings.scoring_max_wait_ms})")
    if sizes:
        print(f"batch size: max {max(sizes)}, mean {statistics.mean(sizes):.1f}, p50 {percentile(sizes, 0.5)}, "
              f"full batches {sum(s == settings.scoring_batch_size for s in sizes)}")
        print(f"window close -> scored (ms): p50 {percentile(waits, 0.5):.0f}, p99 {percentile(waits, 0.99):.0f}, "
              f"max {max(waits):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=1500)
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()

    from tests.streaming.conftest import isolated_run
    from tests.streaming.job_process import DetectionJob
    from tests.support.scoring_service import TEST_API_KEY, registered_model, scoring_service

    mlflow_url = config.load().resolved_mlflow_url()
    var_dir = Path(tempfile.mkdtemp(prefix="pa-bench-scoring-"))
    with isolated_run(var_dir) as settings, registered_model(mlflow_url) as (model_name, _):
        with scoring_service(settings, mlflow_url, model_name, var_dir / "serving.log") as service:
            os.environ.update(PA_SERVING_URL=service.url, PA_API_KEY=TEST_API_KEY, PA_IDLE_TIMEOUT_S="5")
            settings = config.load()
            job = DetectionJob(settings, var_dir / "job.log")
            job.start(resume=False)
            try:
                sent = publish_live(settings, args.actors, args.minutes)
                print(f"published {sent} live events from {args.actors} actors over {args.minutes} min")
                time.sleep(settings.watermark_delay_ms / 1000 + 10)  # idle timeout lets the last windows close
                report(settings)
            finally:
                job.kill()


if __name__ == "__main__":
    main()
