"""Kafka producing for the generator and replay: key = actor_id, delivery confirmed, errors counted.

The producer is idempotent with acks=all, so a retried send never duplicates an event in the topic;
`close()` flushes, so every event accepted by `send` reaches the broker or is reported as failed.
"""

from __future__ import annotations

from typing import Any

from patternalarm.config import Settings
from patternalarm.events import encode


class EventProducer:
    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        from confluent_kafka import Producer  # only the streaming venv has it

        self.topic = topic or settings.topic_events
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        self._producer = Producer({
            "bootstrap.servers": settings.kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        })

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.last_error = str(err)

    def send(self, event: dict[str, Any]) -> None:
        self.send_raw(str(event.get("actor_id", "")).encode(), encode(event))

    def send_raw(self, key: bytes | None, value: bytes) -> None:
        """Send bytes as they are (replay of files that may hold malformed lines on purpose)."""
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry this event
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush_now(self, timeout_s: float = 30.0) -> int:
        """Wait until everything sent so far is delivered; return how many are still queued."""
        return self._producer.flush(timeout_s)

    def close(self, timeout_s: float = 30.0) -> int:
        """Flush; return how many events are still undelivered (0 when all reached the broker)."""
        return self._producer.flush(timeout_s)
