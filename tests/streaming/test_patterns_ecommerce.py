"""Ecommerce patterns through the real job: a positive case and near misses just below each threshold.

Actors are numbered per case so no two cases share one. promo_abuse is keyed by the shipping address,
so its cases name the address key (street|zip, case and whitespace folded) as the partition key.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from patternalarm import events
from patternalarm.config import REPO_ROOT
from streaming import behaviours, patterns
from streaming.generator import EventStream, run_offline
from streaming.scenarios.ecommerce import address_key, fold
from tests.streaming.pattern_harness import Outcome, PatternCase, at, run_cases, stamp, assert_case

MINUTE = 60.0
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def purchase(actor: int, offset_s: float, amount: float, session: float,
             category: str = "gift_cards") -> dict[str, Any]:
    rng = random.Random(f"{actor}-{offset_s}")
    moment = at(timedelta(seconds=offset_s))
    event = behaviours.ecommerce(rng, actor, moment)
    event["cart_items"] = [{"product_id": "p-1", "category": category, "price": amount, "quantity": 1}]
    event["amount"] = amount
    event["session_duration_sec"] = session
    return stamp(event, moment)


def cart(actor: int, offset_s: float, amount: float, category: str = "electronics") -> dict[str, Any]:
    """An ordinary-session purchase of one item in `category`."""
    return purchase(actor, offset_s, amount, 600.0, category)


def order_to(user: int, offset_s: float, street: str, zip_code: str) -> dict[str, Any]:
    """User `user` orders something shipped to (street, zip) as typed."""
    event = purchase(user, offset_s, 39.90, 600.0, "beauty")
    event["shipping_address"] = {**event["shipping_address"], "street": street, "zip": zip_code}
    return event


def key(actor: int) -> str:
    return behaviours.actor_id("ecommerce", actor)


CASES = [
    PatternCase("card_testing: five small purchases in short sessions within 10 min",
                [purchase(7_000_001, 60 * i, 0.5 + i, 20) for i in range(5)],
                expect={key(7_000_001): "card_testing"}),
    PatternCase("card_testing near miss: the fifth purchase comes after 10 minutes",
                [purchase(7_000_002, 150 * i, 2.0, 20) for i in range(5)],
                expect_none={key(7_000_002): "card_testing"}),
    PatternCase("card_testing near miss: one purchase is $5.00",
                [purchase(7_000_003, 30 * i, 5.0 if i == 3 else 2.0, 20) for i in range(5)],
                expect_none={key(7_000_003): "card_testing"}),

    # friendly_fraud: >= 2 purchases over $500 with electronics within 1 h, no purchase in the 30 days before
    PatternCase("friendly_fraud: a new account buys $700 and $1,250 of electronics 50 minutes apart",
                [cart(7_100_001, 0, 700.00), cart(7_100_001, 20 * MINUTE, 45.00, "books"),
                 cart(7_100_001, 50 * MINUTE, 1_250.00)],
                expect={key(7_100_001): "friendly_fraud"}),
    PatternCase("friendly_fraud: last purchase 31 days before the burst (dormant again)",
                [cart(7_100_002, -31 * DAY, 30.00, "books"), cart(7_100_002, 0, 800.00),
                 cart(7_100_002, 10 * MINUTE, 900.00)],
                expect={key(7_100_002): "friendly_fraud"}),
    PatternCase("friendly_fraud near miss: a purchase 29 days before the burst",
                [cart(7_100_003, -29 * DAY, 30.00, "books"), cart(7_100_003, 0, 800.00),
                 cart(7_100_003, 10 * MINUTE, 900.00)],
                expect_none={key(7_100_003): "friendly_fraud"}),
    PatternCase("friendly_fraud near miss: the second purchase is exactly $500.00",
                [cart(7_100_004, 0, 800.00), cart(7_100_004, 10 * MINUTE, 500.00)],
                expect_none={key(7_100_004): "friendly_fraud"}),
    PatternCase("friendly_fraud near miss: the second big cart holds no electronics",
                [cart(7_100_005, 0, 800.00), cart(7_100_005, 10 * MINUTE, 900.00, "home")],
                expect_none={key(7_100_005): "friendly_fraud"}),
    PatternCase("friendly_fraud near miss: the second comes 61 minutes later",
                [cart(7_100_006, 0, 800.00), cart(7_100_006, 61 * MINUTE, 900.00)],
                expect_none={key(7_100_006): "friendly_fraud"}),

    # promo_abuse: >= 4 distinct users ordering to one address (street and zip folded) within 24 h
    PatternCase("promo_abuse: four new users, one address typed four ways, within 23 hours",
                [order_to(7_200_001, 0, "9001 Larch Ave", "30301"),
                 order_to(7_200_002, 2 * HOUR, "9001  LARCH AVE", "30301"),
                 order_to(7_200_003, 9 * HOUR, " 9001 larch ave ", "30301 "),
                 order_to(7_200_004, 23 * HOUR, "9001 Larch\tAve", "30301")],
                expect={address_key("9001 Larch Ave", "30301"): "promo_abuse"}),
    PatternCase("promo_abuse near miss: three users (one ordering thrice), six orders in a day",
                [order_to(7_200_011, 0, "9002 Larch Ave", "30301"),
                 order_to(7_200_012, HOUR, "9002 Larch Ave", "30301"),
                 order_to(7_200_011, 2 * HOUR, "9002 Larch Ave", "30301"),
                 order_to(7_200_013, 3 * HOUR, "9002 LARCH AVE", "30301"),
                 order_to(7_200_011, 4 * HOUR, "9002 Larch Ave", "30301"),
                 order_to(7_200_012, 5 * HOUR, "9002 Larch Ave", "30301")],
                expect_none={address_key("9002 Larch Ave", "30301"): "promo_abuse"}),
    PatternCase("promo_abuse near miss: the fourth user orders 25 hours after the first",
                [order_to(7_200_021, 0, "9003 Larch Ave", "30301"),
                 order_to(7_200_022, HOUR, "9003 Larch Ave", "30301"),
                 order_to(7_200_023, 2 * HOUR, "9003 Larch Ave", "30301"),
                 order_to(7_200_024, 25 * HOUR, "9003 Larch Ave", "30301")],
                expect_none={address_key("9003 Larch Ave", "30301"): "promo_abuse"}),
    PatternCase("promo_abuse near miss: four users, same street, one in another zip",
                [order_to(7_200_031, 0, "9004 Larch Ave", "30301"),
                 order_to(7_200_032, HOUR, "9004 Larch Ave", "30301"),
                 order_to(7_200_033, 2 * HOUR, "9004 Larch Ave", "30301"),
                 order_to(7_200_034, 3 * HOUR, "9004 Larch Ave", "30302")],
                expect_none={address_key("9004 Larch Ave", "30301"): "promo_abuse",
                             address_key("9004 Larch Ave", "30302"): "promo_abuse"}),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run_cases(CASES, Path(tmp_path_factory.mktemp("ecommerce-job")))


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(case: PatternCase, outcome: Outcome) -> None:
    assert_case(case, outcome)


def test_address_key_folds_case_and_whitespace_like_the_sql() -> None:
    assert address_key(" 12  Maple\tCT ", "62701 ") == "12 maple ct|62701"
    assert fold("A\u00a0B") == "a\u00a0b", "only ASCII whitespace folds, as Java's \\s in REGEXP_REPLACE"


def _generated(seconds: float = 300) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    stream = EventStream(5, 0.01, "run-test", patterns=("friendly_fraud", "promo_abuse"))
    run_offline(stream, sent.append, truth.append, 10_000, seconds, at(timedelta(0)))
    return sent, truth


def test_scenarios_record_the_partition_key_and_have_their_pattern_shape() -> None:
    sent, truth = _generated()
    by_id = {e["transaction_id"]: e for e in sent}
    events_per_key: Counter[str] = Counter(e["actor_id"] for e in sent)
    events_per_key.update(address_key(e["shipping_address"]["street"], e["shipping_address"]["zip"])
                          for e in sent if e["domain"] == "ecommerce")
    assert {t["pattern"] for t in truth} == {"friendly_fraud", "promo_abuse"}
    for instance in truth:
        partition_key, txns = instance["actor_id"], [by_id[t] for t in instance["transaction_ids"]]
        span = events.parse_timestamp(txns[-1]["timestamp"]) - events.parse_timestamp(txns[0]["timestamp"])
        assert span < timedelta(minutes=15), "instances stay short in real time"
        if instance["pattern"] == "friendly_fraud":
            assert len(txns) >= 2 and all(e["actor_id"] == partition_key for e in txns)
            assert all(e["amount"] > 500 and any(i["category"] == "electronics" for i in e["cart_items"])
                       for e in txns)
            assert span <= timedelta(hours=1)
        else:
            keys = {address_key(e["shipping_address"]["street"], e["shipping_address"]["zip"]) for e in txns}
            assert keys == {partition_key}
            assert len({e["user_id"] for e in txns}) == len(txns) >= 4
            assert len({e["shipping_address"]["street"] for e in txns}) > 1, "the address is typed differently"
        assert events_per_key[partition_key] == len(txns), "no background event shares the partition key"


def test_legit_background_stays_off_the_ecommerce_patterns() -> None:
    """Electronics carts stay at $500 or under, and no address houses more than a household of 2."""
    rng = random.Random(12)
    moment = at(timedelta(0))
    carts = [behaviours.ecommerce(rng, i % behaviours.POPULATION["ecommerce"], moment) for i in range(100_000)]
    electronics = [e["amount"] for e in carts if any(i["category"] == "electronics" for i in e["cart_items"])]
    assert max(electronics) <= 500 and sum(a > 300 for a in electronics) > 100, "big electronics carts remain"
    assert sum(e["amount"] > 500 for e in carts) > 50, "other big carts are untouched"
    residents: dict[str, set[str]] = {}
    for index in range(behaviours.POPULATION["ecommerce"]):
        home = behaviours.address(rng, index)
        residents.setdefault(address_key(home["street"], home["zip"]), set()).add(
            behaviours.actor_id("ecommerce", index))
    assert max(len(users) for users in residents.values()) == behaviours.HOUSEHOLD_SIZE


def test_docs_list_every_threshold_with_its_default() -> None:
    doc = (REPO_ROOT / "docs" / "patterns.md").read_text()
    for pattern in ("card_testing", "friendly_fraud", "promo_abuse"):
        for name, default in patterns.defaults(pattern).items():
            row = f"| `PA_RULE_{pattern.upper()}_{name.upper()}` | {default} |"
            assert row in doc, f"docs/patterns.md lacks the row {row}"
