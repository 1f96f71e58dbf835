"""Database-made alerts reach the alerts topic: the outbox (migration 007) and its relay, against the
real PostgreSQL and Kafka broker."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from patternalarm.config import Settings
from streaming.alert_outbox_relay import Relay
from tests.streaming.conftest import isolated_run
from tests.streaming.test_window_scoring_db import alert, window


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Settings]:
    with isolated_run(tmp_path) as settings:
        yield settings


@pytest.fixture()
def cur(stack: Settings) -> Iterator[Any]:
    conn = psycopg2.connect(stack.db_url())
    conn.autocommit = True
    with conn.cursor() as c:
        yield c
    conn.close()


def consume(settings: Settings, expected: int, timeout_s: float = 30.0) -> list[tuple[str, dict[str, Any]]]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topic_alerts])
    got: list[tuple[str, dict[str, Any]]] = []
    try:
        for _ in range(int(timeout_s)):
            for msg in consumer.consume(100, timeout=1.0):
                if msg.error() is None:
                    got.append((msg.key().decode(), json.loads(msg.value())))
            if len(got) >= expected:
                consumer.consume(100, timeout=2.0)  # and nothing more arrives
                break
    finally:
        consumer.close()
    return got


def queued(cur: Any) -> list[tuple[str, bool]]:
    cur.execute("SELECT alert_id, published_at IS NOT NULL FROM alert_outbox ORDER BY outbox_id")
    return cur.fetchall()


def test_a_suspicious_activity_alert_is_published_once(stack: Settings, cur: Any) -> None:
    window(cur, "acct-s", 0, 0.97, suspicious=True, domain="fintech")  # no rule alert: suspicious_activity
    alert(cur, "rule-1", "user-r", 5)  # a rule alert: the job publishes those itself, not the outbox
    (alert_id, published), = queued(cur)
    assert alert_id.startswith("suspicious_activity-acct-s-") and not published

    relay = Relay(stack)
    try:
        assert relay.relay_once() == 1
        assert relay.relay_once() == 0
    finally:
        relay.close()
    assert queued(cur) == [(alert_id, True)]
    window(cur, "acct-s", 0, 0.97, suspicious=True, domain="fintech")  # a replayed window queues nothing
    assert len(queued(cur)) == 1

    (key, payload), = consume(stack, 1)
    assert key == "acct-s"
    assert payload["alert_id"] == alert_id and payload["pattern"] == "suspicious_activity"
    assert payload["domain"] == "fintech" and payload["severity"] in ("MEDIUM", "HIGH")
    assert payload["first_event_time"] == "2026-03-02 10:00:00.000"  # Flink's JSON timestamps
    assert json.loads(payload["measures"])["score"] == 0.97 and json.loads(payload["transaction_ids"]) == []


def test_with_kafka_unreachable_nothing_is_marked_published(stack: Settings, cur: Any) -> None:
    window(cur, "acct-k", 0, 0.95, suspicious=True, domain="fintech")
    relay = Relay(dataclasses.replace(stack, kafka_bootstrap="127.0.0.1:9"))
    try:
        with pytest.raises(RuntimeError, match="undelivered"):
            relay.relay_once(timeout_s=2.0)
    finally:
        relay.producer.purge()
        relay.conn.close()
    (_, published), = queued(cur)
    assert not published
    relay = Relay(stack)  # Kafka back: the row goes out
    try:
        assert relay.relay_once() == 1
    finally:
        relay.close()
    assert [k for k, _ in consume(stack, 1)] == ["acct-k"]

