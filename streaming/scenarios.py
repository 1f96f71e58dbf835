"""Injected fraud and anomaly patterns, each instance recorded as ground truth.

A scenario is a small script of steps (delay since the previous step, event builder). The generator
interleaves running scenarios with background traffic and stamps each event with the time it is
actually sent, so windows such as "within 10 minutes" hold in event time. The ground truth (pattern,
partition key, transaction ids) is written apart from the events (ground_truth table or a labels
file): the detection job never sees it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from streaming import behaviours

EventBuilder = Callable[[datetime], dict[str, Any]]
ATTACKER_BASE = 500_000  # attacker actor indexes live above every legit population


@dataclass
class Instance:
    """One running injected pattern."""

    instance_id: str
    pattern: str
    domain: str
    partition_key: str
    steps: list[tuple[float, EventBuilder]]  # (seconds after the previous step, builder)
    transaction_ids: list[str] = field(default_factory=list)
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None

    def truth(self, run_id: str) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "run_id": run_id, "pattern": self.pattern,
                "domain": self.domain, "actor_id": self.partition_key,
                "transaction_ids": self.transaction_ids,
                "first_event_time": self.first_event_time.isoformat() if self.first_event_time else None,
                "last_event_time": self.last_event_time.isoformat() if self.last_event_time else None}


def card_testing(rng: random.Random, n: int) -> Instance:
    """5-8 purchases under $5 in sessions shorter than 60 s, seconds apart, from a fresh actor."""
    index = ATTACKER_BASE + rng.randrange(10_000_000)
    actor = behaviours.actor_id("ecommerce", index)
    count = rng.randint(5, 8)

    def purchase(now: datetime) -> dict[str, Any]:
        event = behaviours.ecommerce(rng, index, now)
        price = round(rng.uniform(0.5, 4.99), 2)
        event["cart_items"] = [{"product_id": f"p-{rng.randrange(50_000):05d}", "category": "gift_cards",
                                "price": price, "quantity": 1}]
        event["amount"] = price
        event["session_duration_sec"] = round(rng.uniform(4, 55), 1)
        return event

    steps = [(0.0 if i == 0 else rng.uniform(1, 10), purchase) for i in range(count)]
    return Instance(f"card_testing-{n}-{rng.getrandbits(48):012x}", "card_testing", "ecommerce", actor, steps)


# pattern name -> (builder, relative weight among injected instances)
SCENARIOS: dict[str, tuple[Callable[[random.Random, int], Instance], float]] = {
    "card_testing": (card_testing, 1.0),
}


def pick(rng: random.Random, n: int, patterns: tuple[str, ...] | None = None) -> Instance:
    names = [p for p in SCENARIOS if patterns is None or p in patterns]
    if not names:
        raise ValueError(f"no known pattern among {patterns}; known: {', '.join(SCENARIOS)}")
    name = rng.choices(names, weights=[SCENARIOS[p][1] for p in names])[0]
    return SCENARIOS[name][0](rng, n)
