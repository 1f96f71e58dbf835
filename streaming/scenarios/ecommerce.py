"""Injected ecommerce patterns."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from streaming import behaviours
from streaming.scenarios import Instance, new_actor_index, scenario


@scenario("card_testing")
def card_testing(rng: random.Random, n: int) -> Instance:
    """5-8 purchases under $5 in sessions shorter than 60 s, seconds apart, from a fresh actor."""
    index = new_actor_index(rng)
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
