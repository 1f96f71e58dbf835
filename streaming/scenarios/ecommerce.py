"""Injected ecommerce patterns."""

from __future__ import annotations

import random
import re
from datetime import datetime
from typing import Any, Callable

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


ELECTRONICS = (("laptop", 650, 1900), ("phone", 520, 1300), ("console", 500, 700), ("camera", 550, 1600),
               ("tablet", 510, 1100))


@scenario("friendly_fraud")
def friendly_fraud(rng: random.Random, n: int) -> Instance:
    """A fresh account (no purchase before) buys 2-3 electronics carts over $500, 20 s-4 min apart.

    The rule's window is an hour; a real burst is often this quick, and it keeps `make demo` short.
    """
    index = new_actor_index(rng)
    actor = behaviours.actor_id("ecommerce", index)

    def purchase(now: datetime) -> dict[str, Any]:
        event = behaviours.ecommerce(rng, index, now)
        _, low, high = rng.choice(ELECTRONICS)
        items = [{"product_id": f"p-{rng.randrange(50_000):05d}", "category": "electronics",
                  "price": round(rng.uniform(low, high), 2), "quantity": 1}]
        if rng.random() < 0.4:  # an accessory alongside
            items.append({"product_id": f"p-{rng.randrange(50_000):05d}", "category": rng.choice(behaviours.CATEGORIES),
                          "price": round(rng.uniform(10, 80), 2), "quantity": 1})
        event["cart_items"] = items
        event["amount"] = round(sum(i["price"] * i["quantity"] for i in items), 2)
        event["payment_method"] = "card"
        return event

    steps = [(0.0 if i == 0 else rng.uniform(20, 240), purchase) for i in range(rng.randint(2, 3))]
    return Instance(f"friendly_fraud-{n}-{rng.getrandbits(48):012x}", "friendly_fraud", "ecommerce", actor, steps)


_WHITESPACE = re.compile(r"\s+", re.ASCII)  # the characters Java's \s matches, as Flink's REGEXP_REPLACE


def fold(text: str) -> str:
    """Case folded, whitespace runs made one space, trimmed: promo_abuse.sql's normalization."""
    return _WHITESPACE.sub(" ", text).strip(" ").lower()


def address_key(street: str, zip_code: str) -> str:
    """The partition key promo_abuse.sql derives from a shipping address (street|zip, folded)."""
    return f"{fold(street)}|{fold(zip_code)}"


PROMO_STREETS = ("Maple Ct", "Cedar Dr", "Willow Way", "Aspen Pl", "Juniper Blvd")


def _spelling(rng: random.Random, text: str) -> str:
    """The same text as a different person would type it: case and spacing vary, letters do not."""
    style = rng.randrange(4)
    if style == 1:
        text = text.upper()
    elif style == 2:
        text = text.lower()
    if rng.random() < 0.5:
        text = text.replace(" ", "  ", 1)
    return text + (" " if rng.random() < 0.3 else "")


@scenario("promo_abuse")
def promo_abuse(rng: random.Random, n: int) -> Instance:
    """4-6 fresh accounts, one first order each, shipped to one address typed differently each time,
    15 s-2 min apart. The address is the pattern's partition key, so ground truth records its key."""
    street = f"{rng.randrange(10_000, 100_000)} {rng.choice(PROMO_STREETS)}"
    zip_code = f"{rng.randrange(10_000, 60_000)}"  # legit zips are 62701 and above
    indexes = [new_actor_index(rng) for _ in range(rng.randint(4, 6))]

    def order(index: int) -> Callable[[datetime], dict[str, Any]]:
        def build(now: datetime) -> dict[str, Any]:
            event = behaviours.ecommerce(rng, index, now)
            event["shipping_address"] = {**event["shipping_address"], "street": _spelling(rng, street),
                                         "zip": zip_code + (" " if rng.random() < 0.2 else "")}
            return event
        return build

    steps = [(0.0 if i == 0 else rng.uniform(15, 120), order(index)) for i, index in enumerate(indexes)]
    return Instance(f"promo_abuse-{n}-{rng.getrandbits(48):012x}", "promo_abuse", "ecommerce",
                    address_key(street, zip_code), steps)
