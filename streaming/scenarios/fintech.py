"""Injected fintech patterns: structuring, money laundering (pass-through or high-risk SWIFT) and
synthetic identities.

Every account an instance uses is fresh (new_actor_index for the partition key, a range of its own
for counterparties), so background traffic never joins or breaks it. Steps are seconds apart, an instance lasts at most 100 s: "within 24 h" and "within 1 h"
are upper bounds, and `make demo` (which lets running instances finish) stays short. Each instance is shaped to be one pattern only: synthetic identities avoid
structuring's band, laundering forwards in at most two transfers and SWIFT amounts stay above
synthetic_identity's $50,000 ceiling.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from streaming import behaviours, patterns
from streaming.scenarios import ATTACKER_BASE, EventBuilder, Instance, new_actor_index, scenario

# Counterparties (funders, mules, beneficiaries) come from a range above new_actor_index's, so that
# one instance's counterparty is never another instance's partition key (each instance uses up to
# six accounts: from one shared range, a seeded 20-minute stream met such a collision).
COUNTERPARTY_BASE = ATTACKER_BASE + 20_000_000


def _account(index: int) -> str:
    return behaviours.actor_id("fintech", index)


def _counterparty(rng: random.Random) -> int:
    return COUNTERPARTY_BASE + rng.randrange(100_000_000)


def _transfer(rng: random.Random, sender: int, recipient: int, amount: float, **fields: Any) -> EventBuilder:
    """A builder of one transfer from `sender` to `recipient`, stamped when the generator sends it."""
    def build(now: datetime) -> dict[str, Any]:
        event = behaviours.fintech(rng, sender, now)
        event.update(account_to=_account(recipient), amount=round(amount, 2), **fields)
        return event
    return build


def _instance(pattern: str, n: int, rng: random.Random, key: int, builders: list[EventBuilder],
              gap_s: tuple[float, float]) -> Instance:
    steps = [(0.0 if i == 0 else rng.uniform(*gap_s), b) for i, b in enumerate(builders)]
    return Instance(f"{pattern}-{n}-{rng.getrandbits(48):012x}", pattern, "fintech", _account(key), steps)


@scenario("structuring")
def structuring(rng: random.Random, n: int) -> Instance:
    """3-5 transfers of $9,000-$9,999.99 from a fresh account to one or two mules, seconds apart."""
    account = new_actor_index(rng)
    mules = [_counterparty(rng) for _ in range(rng.randint(1, 2))]
    builders = [_transfer(rng, account, rng.choice(mules), rng.uniform(9_000, 9_999.99), transfer_type="ACH")
                for _ in range(rng.randint(3, 5))]
    return _instance("structuring", n, rng, account, builders, (3, 20))


def _passthrough(rng: random.Random, n: int) -> Instance:
    """$50,000-$250,000 into a fresh mule account, 92-99 % of it sent on in one or two transfers."""
    source, mule = _counterparty(rng), new_actor_index(rng)
    received = round(rng.uniform(50_000, 250_000), 2)
    forwarded = received * rng.uniform(0.92, 0.99)
    if rng.random() < 0.5:
        chunks = [forwarded]
    else:
        part = forwarded * rng.uniform(0.3, 0.7)
        chunks = [part, forwarded - part]
    builders = [_transfer(rng, source, mule, received, transfer_type="WIRE")]
    builders += [_transfer(rng, mule, _counterparty(rng), chunk, transfer_type="WIRE") for chunk in chunks]
    return _instance("money_laundering", n, rng, mule, builders, (10, 40))


def _swift(rng: random.Random, n: int) -> Instance:
    """3-4 SWIFT transfers of $55,000-$400,000 from a fresh account to high-risk countries."""
    countries = patterns.thresholds("money_laundering")["high_risk_countries"]
    assert isinstance(countries, tuple)
    account = new_actor_index(rng)
    builders = [_transfer(rng, account, _counterparty(rng), rng.uniform(55_000, 400_000),
                          transfer_type="SWIFT", country_to=rng.choice(countries))
                for _ in range(rng.randint(3, 4))]
    return _instance("money_laundering", n, rng, account, builders, (3, 20))


@scenario("money_laundering")
def money_laundering(rng: random.Random, n: int) -> Instance:
    """Either shape, evenly: a pass-through (key: the mule) or high-risk SWIFT (key: the sender)."""
    return _passthrough(rng, n) if rng.random() < 0.5 else _swift(rng, n)


def _synthetic_amount(rng: random.Random) -> float:
    """$5,000-$48,000, outside structuring's $9,000-$9,999.99 band."""
    while True:
        amount = rng.uniform(5_000, 48_000)
        if not 9_000 <= amount < 10_000:
            return amount


@scenario("synthetic_identity")
def synthetic_identity(rng: random.Random, n: int) -> Instance:
    """A fresh account gets a small deposit, then sends 3-5 transfers of $5,000-$48,000 to mules."""
    funder, account = _counterparty(rng), new_actor_index(rng)
    builders = [_transfer(rng, funder, account, rng.uniform(100, 2_000), transfer_type="ACH")]
    builders += [_transfer(rng, account, _counterparty(rng), _synthetic_amount(rng), transfer_type="WIRE")
                 for _ in range(rng.randint(3, 5))]
    return _instance("synthetic_identity", n, rng, account, builders, (3, 20))
