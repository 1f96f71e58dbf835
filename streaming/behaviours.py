"""Legitimate behaviour for the four domains: the background the detectors must stay quiet on.

Each domain has a population of actors with a profile (savers and bill payers, shoppers and window
shoppers, casual/whale/grinder players, steady and seasonal sensors). Actor ids of attackers come
from a separate range (see scenarios.py) so an injected sequence is never broken up or completed by
background traffic; the ids look alike, so detection cannot tell them apart by name.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from patternalarm.events import format_timestamp

POPULATION = {"fintech": 20_000, "ecommerce": 20_000, "gaming": 20_000, "iot": 2_000}
DOMAIN_WEIGHTS = {"fintech": 0.25, "ecommerce": 0.35, "gaming": 0.25, "iot": 0.15}
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "CA", "SE", "PL")
CATEGORIES = ("books", "home", "fashion", "grocery", "toys", "beauty", "sports", "electronics")
CITIES = (("12 Oak St", "Springfield", "IL", "62701"), ("5 Elm Rd", "Portland", "OR", "97201"),
          ("77 Pine Ave", "Austin", "TX", "73301"), ("3 Birch Ln", "Denver", "CO", "80201"))


def new_id(rng: random.Random, prefix: str) -> str:
    """Unique ids drawn from the seeded generator, so a seed reproduces the whole stream."""
    return f"{prefix}-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]}"


def actor_id(domain: str, index: int) -> str:
    prefix = {"fintech": "acct", "ecommerce": "user", "gaming": "player", "iot": "dev"}[domain]
    return f"{prefix}-{index:06d}"


def base(rng: random.Random, domain: str, actor: str, now: datetime) -> dict[str, Any]:
    return {"transaction_id": new_id(rng, "tx"), "domain": domain, "actor_id": actor,
            "timestamp": format_timestamp(now), "ip_address": ip_address(rng, actor)}


USUAL_IPS = 2  # home and mobile
NEW_IP_SHARE = 0.02  # travel, a café, a changed line


def ip_address(rng: random.Random, actor: str) -> str:
    """One of the actor's usual addresses, now and then one never seen before. A fresh address on
    every event, as this once drew, is no one's behaviour, and it made every gaming event a new
    (player, ip) key in account_takeover's "new ip" state: the job's heap grew with each event."""
    if rng.random() < NEW_IP_SHARE:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    usual = zlib.crc32(f"{actor}/{rng.randrange(USUAL_IPS)}".encode())
    return f"10.{usual >> 16 & 255}.{usual >> 8 & 255}.{usual % 254 + 1}"


HOUSEHOLD_SIZE = 2


def address(rng: random.Random, index: int) -> dict[str, str]:
    """The actor's home: actors index // HOUSEHOLD_SIZE share one, and no two households share an
    address (street number and city from the household number). promo_abuse fires on orders from 4
    users to one address within a day, so a background where every address housed ~5 shoppers (as
    `index % 997` did) would be all alerts; real couples and flatmates are the near miss it must allow."""
    household = index // HOUSEHOLD_SIZE
    street, city, state, zip_code = CITIES[household % len(CITIES)]
    return {"street": f"{household // len(CITIES) + 1} {street.split(' ', 1)[1]}", "city": city, "state": state,
            "zip": zip_code, "country": "US"}


# Legit transfers stay under the lowest amount floor of the fintech patterns (synthetic_identity's
# $5,000): every account is "new" during a stream's first week, and savers (median $800) would
# otherwise send three transfers over $5,000 within a day at NORMAL rate (2 accounts per hour, seed 42).
LEGIT_TRANSFER_LIMIT = 5_000.0


def transfer_amount(rng: random.Random, median: float, sigma: float = 0.9) -> float:
    """A lognormal amount redrawn until under LEGIT_TRANSFER_LIMIT: a truncated distribution, with no
    spike of clipped amounts at the limit for the model to learn."""
    while True:
        amount = round(rng.lognormvariate(math.log(median), sigma), 2)
        if amount < LEGIT_TRANSFER_LIMIT:
            return amount


def fintech(rng: random.Random, actor_index: int, now: datetime) -> dict[str, Any]:
    saver = actor_index % 3 == 0
    amount = transfer_amount(rng, 800 if saver else 120)  # big transfers are a pattern's business
    home = COUNTRIES[actor_index % len(COUNTRIES)]
    event = base(rng, "fintech", actor_id("fintech", actor_index), now)
    event.update(account_from=event["actor_id"], account_to=actor_id("fintech", rng.randrange(POPULATION["fintech"])),
                 amount=amount, currency="USD", transfer_type=rng.choice(("ACH", "SEPA", "WIRE")),
                 country_from=home, country_to=home if rng.random() < 0.9 else rng.choice(COUNTRIES),
                 purpose=rng.choice(("rent", "utilities", "savings", "salary", "gift")))
    return event


# A legit cart holding electronics stays at $500 or under. A generated stream meets every shopper for
# the first time, so to friendly_fraud ("no purchase in 30 days, then 2 electronics carts over $500
# within 1 h") any shopper's first two big carts would look like a new account's burst; in production
# the job's state knows their earlier purchases.
ELECTRONICS_CART_LIMIT = 500.0


def _over_electronics_limit(items: list[dict[str, Any]]) -> bool:
    total = sum(i["price"] * i["quantity"] for i in items)
    return total > ELECTRONICS_CART_LIMIT and any(i["category"] == "electronics" for i in items)


def ecommerce(rng: random.Random, actor_index: int, now: datetime) -> dict[str, Any]:
    window_shopper = actor_index % 4 == 0
    items = []
    for _ in range(rng.randint(1, 3)):
        price = round(max(5.0, rng.lognormvariate(math.log(12 if window_shopper else 45), 0.8)), 2)
        price = min(price, 450.0)
        items.append({"product_id": f"p-{rng.randrange(50_000):05d}", "category": rng.choice(CATEGORIES),
                      "price": price, "quantity": 1})
    while len(items) > 1 and _over_electronics_limit(items):
        items.pop()  # the rest of the cart waits for another day (no draw from rng: the stream is unchanged)
    home = address(rng, actor_index)
    event = base(rng, "ecommerce", actor_id("ecommerce", actor_index), now)
    event.update(user_id=event["actor_id"], cart_items=items,
                 amount=round(sum(i["price"] * i["quantity"] for i in items), 2), currency="USD",
                 payment_method=rng.choice(("card", "card", "paypal", "apple_pay")),
                 shipping_address=home, billing_address=home,
                 device_fingerprint=f"fp-{actor_index:06d}",
                 session_duration_sec=round(rng.uniform(90, 1800), 1))
    return event


# Legit players pay $100 or more from their wallet, never straight by card. A generated stream meets
# every player for the first time, so to chargeback_fraud ("first seen < 24 h, 2 card purchases of
# $100+ within 1 h") each whale would look like a brand-new account; in production the job's state
# has known them for months. (Draws from rng are unchanged: a seed gives the same stream otherwise.)
CARD_TOP_UP_LIMIT = 100.0


def gaming(rng: random.Random, actor_index: int, now: datetime) -> dict[str, Any]:
    kind = actor_index % 10  # 0: whale, 1-3: grinder, rest casual
    typical = 60.0 if kind == 0 else 8.0 if kind <= 3 else 15.0
    event = base(rng, "gaming", actor_id("gaming", actor_index), now)
    item_type = rng.choice(("skin", "currency", "battle_pass", "loot_box"))
    item_name = f"item-{rng.randrange(500):03d}"
    amount = round(max(5.0, rng.lognormvariate(math.log(typical), 0.6)), 2)
    payment = rng.choice(("credit_card", "paypal", "wallet"))
    if payment == "credit_card" and amount >= CARD_TOP_UP_LIMIT:
        payment = "wallet"
    event.update(player_id=event["actor_id"], game_id=f"game-{actor_index % 40:02d}", item_type=item_type,
                 item_name=item_name, amount=amount, currency="USD", payment_method=payment,
                 device_id=f"gdev-{actor_index:06d}", session_length_sec=round(rng.uniform(120, 7200), 1))
    return event


def iot(rng: random.Random, actor_index: int, now: datetime) -> dict[str, Any]:
    """A reading from a random device: any valid IoT event, for callers without a sensor fleet (the
    generator's streams use SensorFleet, whose devices keep their own schedule)."""
    return sensor_reading(rng, Sensor.of(actor_index), now)


# IoT devices report on a schedule of their own, not at random: a sensor has a usual interval (small
# jitter), a level and a noise, and is steady or seasonal (a slow daily sinusoid on top). The dropout
# detector ("silent for more than 5x the usual interval") needs that: picking a random device per
# event gives exponential gaps, longer than 5x the mean one time in 150.
SENSOR_INTERVAL_S = 3.0  # mean usual interval: fast sensors, so a 60 s demo shows their detectors
SENSOR_JITTER = 0.05  # each gap is the usual interval x U(1 - jitter, 1 + jitter)
# The fleet asks for this share of the generator's IoT slots; the rest go to the other domains. Some
# headroom keeps the sensors on time: a slot comes at random, and with every slot spoken for, a late
# sensor would never catch up.
FLEET_HEADROOM = 0.85


@dataclass
class Sensor:
    index: int
    interval_s: float
    level: float
    noise: float
    seasonal: bool
    readings: int = 0
    claimed: bool = False
    token: int = 0  # bumped when the sensor is rescheduled: older queue entries are stale

    @staticmethod
    def of(index: int, interval_s: float = SENSOR_INTERVAL_S) -> "Sensor":
        """Device `index`'s fixed traits (derived from the index, so every stream agrees on them)."""
        return Sensor(index, interval_s, level=20.0 + index % 15, noise=0.3 + 0.1 * (index % 6),
                      seasonal=index % 2 == 0)

    def value(self, rng: random.Random, now: datetime) -> float:
        level = self.level
        if self.seasonal:
            level += 3.0 * math.sin(now.timestamp() / 3600.0 * 2 * math.pi / 24)
        return round(rng.gauss(level, self.noise), 3)


def sensor_reading(rng: random.Random, sensor: Sensor, now: datetime, value: float | None = None) -> dict[str, Any]:
    """One reading of `sensor` (its own value unless one is given: an injected anomaly)."""
    event = base(rng, "iot", actor_id("iot", sensor.index), now)
    event.update(device_id=event["actor_id"], site_id=f"site-{sensor.index % 50:02d}", metric="temperature",
                 value=sensor.value(rng, now) if value is None else round(value, 3), unit="C")
    sensor.readings += 1
    return event


class SensorFleet:
    """The IoT devices of one stream, each due at its own next reading time.

    Sized for the stream's rate: enough sensors at about SENSOR_INTERVAL_S to fill FLEET_HEADROOM of the
    IoT share (at least one, at most POPULATION["iot"]; at MINI, one sensor with a longer interval).
    Usual intervals differ per sensor (0.8-1.2x). An injected anomaly claims a sensor (scenarios/iot.py):
    the fleet skips it until it is released, so background readings never interleave with the anomaly.
    """

    def __init__(self, rate_per_min: float) -> None:
        per_s = max(rate_per_min, 1e-9) / 60.0 * DOMAIN_WEIGHTS["iot"] * FLEET_HEADROOM
        n = max(1, min(POPULATION["iot"], round(per_s * SENSOR_INTERVAL_S)))
        factors = [0.8 + 0.4 * ((i * 37) % 101) / 100 for i in range(n)]
        # Each sensor i reports every scale * factor_i seconds; together they make per_s readings/s.
        scale = sum(1 / f for f in factors) / per_s
        self.sensors = [Sensor.of(i, scale * f) for i, f in enumerate(factors)]
        self._queue: list[tuple[float, int, int]] = []  # (due as epoch seconds, index, token)
        self._started = False

    def _schedule(self, sensor: Sensor, due: float) -> None:
        sensor.token += 1
        heapq.heappush(self._queue, (due, sensor.index, sensor.token))

    def _start(self, rng: random.Random, now: datetime) -> None:
        """Spread the first readings over one interval, so the fleet does not report all at once."""
        self._started = True
        for sensor in self.sensors:
            self._schedule(sensor, now.timestamp() + rng.uniform(0, sensor.interval_s))

    def reading(self, rng: random.Random, now: datetime) -> dict[str, Any] | None:
        """The reading of the sensor most overdue, or None when no sensor is due yet."""
        if not self._started:
            self._start(rng, now)
        t = now.timestamp()
        while self._queue and self._queue[0][0] <= t:
            due, index, token = heapq.heappop(self._queue)
            sensor = self.sensors[index]
            if token != sensor.token or sensor.claimed:
                continue  # rescheduled meanwhile, or taken by an injected anomaly (released later)
            gap = sensor.interval_s * rng.uniform(1 - SENSOR_JITTER, 1 + SENSOR_JITTER)
            self._schedule(sensor, max(due + gap, t))  # on schedule, or from now when far behind
            return sensor_reading(rng, sensor, now)
        return None

    def claim(self, rng: random.Random) -> Sensor:
        """A sensor for an injected anomaly: a free one, or a new one added to the fleet."""
        free = [s for s in self.sensors if not s.claimed]
        if free:
            sensor = rng.choice(free)
        else:
            sensor = Sensor.of(len(self.sensors), SENSOR_INTERVAL_S)
            self.sensors.append(sensor)
        sensor.claimed = True
        return sensor

    def release(self, sensor: Sensor, now: datetime) -> None:
        """Back on the fleet's schedule, one usual interval after its last (anomaly) reading."""
        sensor.claimed = False
        self._schedule(sensor, now.timestamp() + sensor.interval_s)


FACTORIES = {"fintech": fintech, "ecommerce": ecommerce, "gaming": gaming, "iot": iot}


def legit_event(rng: random.Random, now: datetime, fleet: SensorFleet | None = None) -> dict[str, Any]:
    """One background event. With a fleet, an IoT slot goes to the sensor that is due (or, when none is
    due yet, to one of the other domains): the total rate stays the mode's."""
    domain = rng.choices(list(DOMAIN_WEIGHTS), weights=list(DOMAIN_WEIGHTS.values()))[0]
    if domain == "iot" and fleet is not None:
        reading = fleet.reading(rng, now)
        if reading is not None:
            return reading
        others = [d for d in DOMAIN_WEIGHTS if d != "iot"]
        domain = rng.choices(others, weights=[DOMAIN_WEIGHTS[d] for d in others])[0]
    return FACTORIES[domain](rng, rng.randrange(POPULATION[domain]), now)
