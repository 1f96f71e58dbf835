"""The walking skeleton through the real broker, job and database.

One injected card-testing sequence becomes exactly one incident, a near miss becomes none, and
malformed events land in the dead-letter topic with the same reason the contract's Python validator
gives.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import psycopg2
import pytest
from confluent_kafka import Consumer

from patternalarm.config import Settings
from patternalarm.events import InvalidEvent, decode
from streaming import behaviours
from streaming.detection_job import APPLICATION_NAME as JOB_SESSION_NAME
from streaming.kafka_io import EventProducer

pytestmark = pytest.mark.integration


def small_purchase(actor_index: int, when: datetime, amount: float, session: float) -> dict[str, Any]:
    rng = random.Random(f"{actor_index}-{when.isoformat()}")
    event = behaviours.ecommerce(rng, actor_index, when)
    event["cart_items"] = [{"product_id": "p-1", "category": "gift_cards", "price": amount, "quantity": 1}]
    event["amount"] = amount
    event["session_duration_sec"] = session
    return event


def push_watermark(producer: EventProducer, seconds: float = 8.0) -> None:
    """Background traffic with current timestamps on every partition, so event time moves on."""
    rng = random.Random(1)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(40):
            producer.send(behaviours.legit_event(rng, datetime.now(timezone.utc)))
        time.sleep(0.2)


def wait_for(query: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    value = query()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(1)
        value = query()
    return value


def fetch(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg2.connect(settings.db_url()) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_card_testing_sequence_becomes_exactly_one_incident(stack: Settings, detection_job: Any) -> None:
    attacker, near_miss = 900_000 + random.randrange(99_999), 800_000 + random.randrange(99_999)
    producer = EventProducer(stack)
    # Event times just behind "now": never late for the watermark (now - 2 s), and the background
    # traffic that follows moves event time well past them.
    start = datetime.now(timezone.utc) - timedelta(seconds=1.5)
    sent: list[str] = []
    for i in range(5):  # five purchases under $5 in short sessions, seconds apart: card testing
        event = small_purchase(attacker, start + timedelta(seconds=0.2 * i), 1.5 + i * 0.5, 20.0)
        producer.send(event)
        sent.append(event["transaction_id"])
    for i in range(5):  # the same, but one session lasts 90 s: not card testing
        producer.send(small_purchase(near_miss, start + timedelta(seconds=0.2 * i), 2.0, 90.0 if i == 2 else 20.0))
    push_watermark(producer)
    assert producer.close() == 0 and producer.failed == 0

    attacker_id = behaviours.actor_id("ecommerce", attacker)
    rows = wait_for(lambda: fetch(stack, "SELECT incident_id, severity, alert_count, evidence FROM incidents "
                                         "WHERE actor_id = %s AND pattern = 'card_testing'", attacker_id),
                    lambda r: len(r) >= 1)
    assert len(rows) == 1, rows
    _, severity, alert_count, evidence = rows[0]
    assert alert_count == 1
    assert evidence[0]["transaction_ids"] == sent
    assert evidence[0]["measures"]["purchases"] == 5
    assert severity == "HIGH"
    alert = fetch(stack, "SELECT event_time, emitted_at, stored_at FROM alerts WHERE actor_id = %s", attacker_id)
    assert len(alert) == 1
    event_time, emitted_at, stored_at = alert[0]
    assert event_time <= emitted_at <= stored_at
    near_miss_id = behaviours.actor_id("ecommerce", near_miss)
    assert fetch(stack, "SELECT count(*) FROM alerts WHERE actor_id = %s", near_miss_id) == [(0,)]
    # the sessions that stored it say whose they are in pg_stat_activity
    named = fetch(stack, "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a "
                         "JOIN pg_stat_ssl s USING (pid) WHERE a.datname = current_database() "
                         "AND a.application_name = %s", JOB_SESSION_NAME)
    assert named[0][0] >= 1
    assert named[0][1] == 0  # on this host without TLS (config.DatabaseEndpoint.sslmode)


MALFORMED: list[bytes] = [
    b"this is not json",
    b"[1, 2, 3]",
    json.dumps({"transaction_id": "t1", "domain": "mars", "actor_id": "a", "timestamp": "x"}).encode(),
    json.dumps({"transaction_id": "t2", "domain": "iot", "actor_id": "dev-1", "timestamp": "2026-01-01T00:00:00.000Z",
                "device_id": "dev-1", "site_id": "s", "metric": "m", "unit": "C"}).encode(),  # no value
    json.dumps({"transaction_id": "t3", "domain": "fintech", "actor_id": "acct-1",
                "timestamp": "2026-01-01T00:00:00.000Z", "account_from": "acct-1", "account_to": "acct-2",
                "amount": "12.50", "currency": "USD", "transfer_type": "ACH", "country_from": "US",
                "country_to": "US", "purpose": "rent"}).encode(),  # amount is a string
    json.dumps({"transaction_id": "t4", "domain": "iot", "actor_id": "dev-1", "timestamp": "2026-01-01 00:00:00",
                "device_id": "dev-1", "site_id": "s", "metric": "m", "value": 1.0, "unit": "C"}).encode(),
]


def python_reason(payload: bytes) -> str:
    with pytest.raises(InvalidEvent) as caught:
        decode(payload)
    return caught.value.reason


def test_malformed_events_go_to_dead_letter_topic_with_reason(stack: Settings, detection_job: Any) -> None:
    payloads = MALFORMED  # the dead-letter topic is this test session's own
    producer = EventProducer(stack)
    for payload in payloads:
        producer.send_raw(b"bad", payload)
    assert producer.close() == 0

    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([stack.topic_dead_letter])
    received: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while len(received) < len(payloads) and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        record = json.loads(msg.value())
        received[record["payload"]] = record["reason"]
    consumer.close()
    for payload in payloads:
        text = payload.decode()
        assert text in received, f"not dead-lettered: {text}"
        assert received[text] == python_reason(payload)
