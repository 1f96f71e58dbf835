"""Injected gaming patterns."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Callable

from streaming import behaviours
from streaming.scenarios import Instance, new_actor_index, scenario

EventBuilder = Callable[[datetime], dict[str, Any]]


def _purchase(rng: random.Random, index: int, **fields: Any) -> EventBuilder:
    """A purchase by player `index` with `fields` set over the legit background's values."""
    def build(now: datetime) -> dict[str, Any]:
        event = behaviours.gaming(rng, index, now)
        event.update(fields)
        return event
    return build


@scenario("account_takeover")
def account_takeover(rng: random.Random, n: int) -> Instance:
    """A player's ordinary history (3-5 purchases from their own device), then someone else logs in
    from a new device and a new IP and, within minutes, spends 3-4 times 1.4-2.2 x the history's mean.

    The history belongs to the instance because the rule compares with it: a fresh player id has no
    past in the stream, so the scenario plays it first (seconds apart, to keep `make demo` short).
    The cash-out goes through the wallet and PayPal, as a stolen account's stored methods would.
    """
    index = new_actor_index(rng)
    actor = behaviours.actor_id("gaming", index)
    history = [round(rng.uniform(6, 40), 2) for _ in range(rng.randint(3, 5))]
    mean = sum(history) / len(history)
    device = f"gdev-{rng.getrandbits(40):010x}"
    ip = f"{rng.choice((31, 45, 89, 185))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    session = {"device_id": device, "ip_address": ip}
    steps: list[tuple[float, EventBuilder]] = [
        (0.0 if i == 0 else rng.uniform(5, 30), _purchase(rng, index, amount=amount, payment_method="paypal"))
        for i, amount in enumerate(history)]
    steps.append((rng.uniform(20, 90), _purchase(rng, index, amount=round(rng.uniform(5, 15), 2),
                                                 item_type="currency", **session)))
    for _ in range(rng.randint(3, 4)):
        steps.append((rng.uniform(10, 60), _purchase(
            rng, index, amount=round(mean * rng.uniform(1.4, 2.2), 2), item_type=rng.choice(("skin", "loot_box")),
            payment_method=rng.choice(("wallet", "paypal")), **session)))
    return Instance(f"account_takeover-{n}-{rng.getrandbits(48):012x}", "account_takeover", "gaming", actor, steps)


@scenario("gold_farming")
def gold_farming(rng: random.Random, n: int) -> Instance:
    """A fresh bot account buys currency 5-8 times at $0.99-$4.99 in sessions of 5-29 s, 5-40 s apart."""
    index = new_actor_index(rng)
    actor = behaviours.actor_id("gaming", index)

    def purchase(now: datetime) -> dict[str, Any]:
        event = behaviours.gaming(rng, index, now)
        event.update(item_type="currency", item_name=f"gold-pack-{rng.randrange(5)}",
                     amount=rng.choice((0.99, 1.99, 2.49, 2.99, 4.99)),
                     session_length_sec=round(rng.uniform(5, 29), 1))
        return event

    steps = [(0.0 if i == 0 else rng.uniform(5, 40), purchase) for i in range(rng.randint(5, 8))]
    return Instance(f"gold_farming-{n}-{rng.getrandbits(48):012x}", "gold_farming", "gaming", actor, steps)


@scenario("chargeback_fraud")
def chargeback_fraud(rng: random.Random, n: int) -> Instance:
    """A fresh account (sometimes after one small first purchase) buys 2-3 items of $100-$450 by
    credit card, 20 s-3 min apart: spent before anyone looks, disputed later."""
    index = new_actor_index(rng)
    actor = behaviours.actor_id("gaming", index)
    steps: list[tuple[float, EventBuilder]] = []
    if rng.random() < 0.5:
        steps.append((0.0, _purchase(rng, index, amount=round(rng.uniform(5, 20), 2), payment_method="paypal")))
    for _ in range(rng.randint(2, 3)):
        steps.append((rng.uniform(20, 180) if steps else 0.0, _purchase(
            rng, index, amount=round(rng.uniform(100, 450), 2), payment_method="credit_card",
            item_type=rng.choice(("battle_pass", "loot_box", "skin")))))
    return Instance(f"chargeback_fraud-{n}-{rng.getrandbits(48):012x}", "chargeback_fraud", "gaming", actor, steps)
