"""Injected fraud and anomaly patterns, each instance recorded as ground truth.

A scenario is a small script of steps (delay since the previous step, event builder). The generator
interleaves running scenarios with background traffic and stamps each event with the time it is
actually sent, so windows such as "within 10 minutes" hold in event time. The ground truth (pattern,
partition key, transaction ids) is written apart from the events (ground_truth table or a labels
file): the detection job never sees it.

One module per domain (ecommerce.py, gaming.py, fintech.py, iot.py) registers its scenarios with
:func:`scenario`; importing this package loads them all.
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


ScenarioBuilder = Callable[[random.Random, int], Instance]

# pattern name -> (builder, relative weight among injected instances); filled by the domain modules
SCENARIOS: dict[str, tuple[ScenarioBuilder, float]] = {}


def scenario(pattern: str, weight: float = 1.0) -> Callable[[ScenarioBuilder], ScenarioBuilder]:
    """Register a builder of one injected pattern (decorator used by the domain modules)."""
    def register(builder: ScenarioBuilder) -> ScenarioBuilder:
        if pattern in SCENARIOS:
            raise ValueError(f"scenario {pattern!r} registered twice")
        SCENARIOS[pattern] = (builder, weight)
        return builder
    return register


def new_actor_index(rng: random.Random) -> int:
    """An attacker's actor index: above every legit population, so background never touches it."""
    return ATTACKER_BASE + rng.randrange(10_000_000)


def pick(rng: random.Random, n: int, patterns: tuple[str, ...] | None = None) -> Instance:
    names = [p for p in SCENARIOS if patterns is None or p in patterns]
    if not names:
        raise ValueError(f"no known pattern among {patterns}; known: {', '.join(SCENARIOS)}")
    name = rng.choices(names, weights=[SCENARIOS[p][1] for p in names])[0]
    return SCENARIOS[name][0](rng, n)


# The domain modules register themselves on import (at the end: they use the names above).
from streaming.scenarios import ecommerce  # noqa: E402,F401
from streaming.scenarios import gaming  # noqa: E402,F401
from streaming.scenarios import fintech  # noqa: E402,F401
from streaming.scenarios import iot  # noqa: E402,F401
