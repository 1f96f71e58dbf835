"""Ecommerce patterns through the real job: a positive case and a near miss for each."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from streaming import behaviours
from tests.streaming.pattern_harness import Outcome, PatternCase, at, run_cases, stamp

pytestmark = pytest.mark.integration


def purchase(actor: int, offset_s: float, amount: float, session: float, category: str = "gift_cards") -> dict[str, Any]:
    rng = random.Random(f"{actor}-{offset_s}")
    moment = at(timedelta(seconds=offset_s))
    event = behaviours.ecommerce(rng, actor, moment)
    event["cart_items"] = [{"product_id": "p-1", "category": category, "price": amount, "quantity": 1}]
    event["amount"] = amount
    event["session_duration_sec"] = session
    return stamp(event, moment)


def key(actor: int) -> str:
    return behaviours.actor_id("ecommerce", actor)


CASES = [
    PatternCase("card_testing: five small purchases in short sessions within 10 min",
                [purchase(7_000_001, 60 * i, 1.0 + i, 20) for i in range(5)],
                expect={key(7_000_001): "card_testing"}),
    PatternCase("card_testing near miss: the fifth purchase comes after 10 minutes",
                [purchase(7_000_002, 150 * i, 2.0, 20) for i in range(5)],
                expect_none={key(7_000_002): "card_testing"}),
    PatternCase("card_testing near miss: one purchase is $5.00",
                [purchase(7_000_003, 30 * i, 5.0 if i == 3 else 2.0, 20) for i in range(5)],
                expect_none={key(7_000_003): "card_testing"}),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run_cases(CASES, Path(tmp_path_factory.mktemp("ecommerce-job")))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(case: PatternCase, outcome: Outcome) -> None:
    for partition_key, pattern in case.expect.items():
        found = outcome.found(partition_key, pattern)
        assert len(found) == 1, f"{case.name}: expected one {pattern} incident for {partition_key}, got {found}"
    for partition_key, pattern in case.expect_none.items():
        assert outcome.found(partition_key, pattern) == [], f"{case.name}: {pattern} fired for {partition_key}"
    assert outcome.dead_letters == 0
