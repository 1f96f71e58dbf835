"""Publish a JSONL file of contract events to the events topic: `make replay FILE=... [RATE=...]`.

Lines are sent as they are (key = actor_id when the line parses), so a file with malformed lines
tests the dead-letter path too; the job, not the replayer, decides what is valid. Without RATE the
file goes as fast as the producer allows; with RATE (events/min) it is paced like the generator.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Iterator

from patternalarm import config
from streaming.load_profile import Pacer


def _key(line: bytes) -> bytes | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    actor = event.get("actor_id") if isinstance(event, dict) else None
    return str(actor).encode() if actor is not None else None


def lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield line


def replay(path: Path, rate_per_min: float | None, topic: str | None = None) -> dict[str, float]:
    from streaming.kafka_io import EventProducer

    settings = config.load()
    producer = EventProducer(settings, topic)
    started = time.monotonic()
    sent = 0
    source = lines(path)
    if rate_per_min is None:
        for line in source:
            producer.send_raw(_key(line), line)
            sent += 1
    else:
        pacer = Pacer(lambda _t: rate_per_min)
        exhausted = False
        while not exhausted:
            for _ in range(pacer.due()):
                line = next(source, None)
                if line is None:
                    exhausted = True
                    break
                producer.send_raw(_key(line), line)
                sent += 1
            if not exhausted:
                pacer.wait()
    undelivered = producer.close()
    elapsed = time.monotonic() - started
    return {"sent": sent, "delivered": producer.delivered, "failed": producer.failed + undelivered,
            "elapsed_s": round(elapsed, 2), "rate_per_min": round(sent * 60 / elapsed, 1) if elapsed else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--rate", type=float, default=None, help="events per minute; default: as fast as possible")
    parser.add_argument("--topic", default=None, help="default: the events topic (PA_TOPIC_EVENTS)")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"replay: {args.file} is not a file; give FILE=path/to/events.jsonl", file=sys.stderr)
        return 2
    if args.rate is not None and args.rate <= 0:
        print("replay: RATE must be a positive number of events per minute", file=sys.stderr)
        return 2
    result = replay(args.file, args.rate, args.topic)
    print(json.dumps(result))
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
