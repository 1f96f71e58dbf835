"""Publishes the alerts the database makes (suspicious_activity) to the alerts topic.

The transactional-outbox relay of sql/migrations/007_alert_outbox.sql: reads queued rows in order,
produces them to PA_TOPIC_ALERTS (key = actor_id, idempotent producer, acks=all), waits for the
broker's acknowledgement, then marks them published in the same transaction that locked them
(`FOR UPDATE SKIP LOCKED`, so two relays never publish one row at once). Kafka down: nothing is
marked, the rows are retried on the next pass. A crash after the broker acknowledged but before the
commit publishes those rows again (at-least-once, like the detection job's own alerts on that topic).

    python -m streaming.alert_outbox_relay            # runs until SIGTERM (the stack's alert-relay)
    python -m streaming.alert_outbox_relay --once     # one pass, then exit
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from patternalarm import config
from patternalarm.config import Settings

log = logging.getLogger("patternalarm.alert_relay")

BATCH = 500
CLAIM = f"""
SELECT outbox_id, actor_id, payload FROM alert_outbox
 WHERE published_at IS NULL ORDER BY outbox_id LIMIT {BATCH} FOR UPDATE SKIP LOCKED"""


class Relay:
    def __init__(self, settings: Settings) -> None:
        import psycopg2
        from confluent_kafka import Producer

        self.settings = settings
        self.conn = psycopg2.connect(settings.db_url())
        self.producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True,
                                  "acks": "all", "linger.ms": 5})
        self.published = 0

    def relay_once(self, timeout_s: float = 10.0) -> int:
        """Publish one batch of queued alerts; return how many were published (0: queue empty)."""
        failures: list[str] = []
        with self.conn, self.conn.cursor() as cur:
            cur.execute(CLAIM)
            rows: list[tuple[int, str, Any]] = cur.fetchall()
            if not rows:
                return 0
            for _, actor_id, payload in rows:
                self.producer.produce(self.settings.topic_alerts, key=actor_id.encode(),
                                      value=json.dumps(payload, separators=(",", ":")).encode(),
                                      on_delivery=lambda err, _m: failures.append(str(err)) if err else None)
            undelivered = self.producer.flush(timeout_s)
            if undelivered or failures:
                # roll back: the rows stay queued and the next pass publishes them (again, for any
                # that did arrive: at-least-once)
                raise RuntimeError(f"{undelivered} undelivered, errors: {failures[:3]}; is Kafka at "
                                   f"{self.settings.kafka_bootstrap} up? (`make up SERVICES=kafka`)")
            cur.execute("UPDATE alert_outbox SET published_at = clock_timestamp() WHERE outbox_id = ANY(%s)",
                        ([r[0] for r in rows],))
        self.published += len(rows)
        return len(rows)

    def close(self) -> None:
        self.producer.flush(10)
        self.conn.close()


def heartbeat_file(settings: Settings) -> Path:
    return settings.resolved_var_dir() / "run" / "alert-relay.heartbeat"


def run(relay: Relay, poll_s: float, once: bool) -> None:
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    beat = heartbeat_file(relay.settings)
    beat.parent.mkdir(parents=True, exist_ok=True)
    while not stop["now"]:
        try:
            while relay.relay_once():
                pass
            beat.write_text(str(time.time()))  # the stack's status: healthy while passes succeed
        except Exception as exc:  # a database or broker outage: log, keep the rows, try again
            log.warning("relay pass failed, retrying in %.1f s: %s", poll_s, exc)
            if not relay.conn.closed:
                relay.conn.rollback()
        if once:
            return
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between passes when the queue is empty")
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    relay = Relay(config.load())
    print("alert relay running", flush=True)
    try:
        run(relay, args.poll, args.once)
    finally:
        relay.close()
    log.info("published %d alerts", relay.published)
    return 0


if __name__ == "__main__":
    sys.exit(main())
