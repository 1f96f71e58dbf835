"""Gaming patterns through the real job: a positive case and near misses just below each threshold.

Players are numbered per case so no two cases share one. account_takeover compares with a history,
so its cases start with ordinary purchases from the player's own device and home IP (mean $15).
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
from tests.streaming.pattern_harness import Outcome, PatternCase, at, run_cases, stamp, assert_case

MINUTE = 60.0
HOUR = 60 * MINUTE
HOME_IP = "10.1.2.3"


def buy(player: int, offset_s: float, amount: float, **fields: Any) -> dict[str, Any]:
    """One purchase by `player` offset_s after the base day: the background's event with `fields` set.
    Unless given, the device is the player's own, the IP their home one and the payment PayPal."""
    rng = random.Random(f"{player}-{offset_s}-{amount}")
    moment = at(timedelta(seconds=offset_s))
    event = behaviours.gaming(rng, player, moment)
    event.update(amount=amount, ip_address=HOME_IP, payment_method="paypal", item_type="skin")
    event.update(fields)
    return stamp(event, moment)


def history(player: int) -> list[dict[str, Any]]:
    """Four ordinary purchases over the previous days: mean $15."""
    return [buy(player, -(4 - i) * 24 * HOUR, amount) for i, amount in enumerate((10.0, 20.0, 15.0, 15.0))]


def thief(player: int, offset_s: float, amount: float, ip: str = "185.7.7.7") -> dict[str, Any]:
    return buy(player, offset_s, amount, device_id="gdev-stolen-1", ip_address=ip, payment_method="wallet")


def farm(player: int, offset_s: float, amount: float = 1.99, session: float = 20.0,
         item_type: str = "currency") -> dict[str, Any]:
    return buy(player, offset_s, amount, item_type=item_type, session_length_sec=session)


def card(player: int, offset_s: float, amount: float, method: str = "credit_card") -> dict[str, Any]:
    return buy(player, offset_s, amount, payment_method=method, item_type="battle_pass")


def key(player: int) -> str:
    return behaviours.actor_id("gaming", player)


def case(name: str, events_: list[dict[str, Any]], fires: dict[int, str] | None = None,
         quiet: dict[int, str] | None = None) -> PatternCase:
    return PatternCase(name, events_, expect={key(p): pattern for p, pattern in (fires or {}).items()},
                       expect_none={key(p): pattern for p, pattern in (quiet or {}).items()})


CASES = [
    # account_takeover: new device and new IP, then >= 3 purchases totalling > 3x the mean within 30 min
    case("account_takeover: new device and IP, then $20 + $15 + $15.01 (3.3x the $15 mean) in 25 minutes",
         history(7_300_001) + [thief(7_300_001, 0, 5.00), thief(7_300_001, 5 * MINUTE, 20.00),
                               thief(7_300_001, 15 * MINUTE, 15.00), thief(7_300_001, 25 * MINUTE, 15.01)],
         fires={7_300_001: "account_takeover"}),
    case("account_takeover: the bound is crossed only by the fifth purchase after the new device",
         history(7_300_002) + [thief(7_300_002, 0, 5.00)]
         + [thief(7_300_002, i * MINUTE, 10.00) for i in range(1, 6)],
         fires={7_300_002: "account_takeover"}),
    case("account_takeover near miss: three purchases totalling 2.9x the mean",
         history(7_300_003) + [thief(7_300_003, 0, 5.00), thief(7_300_003, 5 * MINUTE, 14.50),
                               thief(7_300_003, 10 * MINUTE, 14.50), thief(7_300_003, 15 * MINUTE, 14.50)],
         quiet={7_300_003: "account_takeover"}),
    case("account_takeover near miss: new device, but from the player's home IP",
         history(7_300_004) + [thief(7_300_004, 0, 5.00, ip=HOME_IP)]
         + [thief(7_300_004, i * MINUTE, 30.00, ip=HOME_IP) for i in range(1, 4)],
         quiet={7_300_004: "account_takeover"}),
    case("account_takeover near miss: the third purchase comes 31 minutes after the new device",
         history(7_300_005) + [thief(7_300_005, 0, 5.00), thief(7_300_005, MINUTE, 30.00),
                               thief(7_300_005, 2 * MINUTE, 30.00), thief(7_300_005, 31 * MINUTE, 30.00)],
         quiet={7_300_005: "account_takeover"}),
    case("account_takeover near miss: only two purchases after the new device (5x the mean)",
         history(7_300_006) + [thief(7_300_006, 0, 5.00), thief(7_300_006, MINUTE, 40.00),
                               thief(7_300_006, 2 * MINUTE, 35.00)],
         quiet={7_300_006: "account_takeover"}),
    case("account_takeover near miss: a new IP, but from the player's own device",
         history(7_300_007) + [buy(7_300_007, 0, 5.00, ip_address="185.7.7.8")]
         + [buy(7_300_007, i * MINUTE, 30.00, ip_address="185.7.7.8") for i in range(1, 4)],
         quiet={7_300_007: "account_takeover"}),

    # gold_farming: >= 5 currency purchases under $5, each in a session < 30 s, within 1 h
    case("gold_farming: five $1.99-$4.99 currency packs in 20-second sessions over 48 minutes",
         [farm(7_400_001, i * 12 * MINUTE, amount) for i, amount in enumerate((1.99, 4.99, 0.99, 2.49, 4.99))],
         fires={7_400_001: "gold_farming"}),
    case("gold_farming near miss: one of the five sessions lasts 30 s",
         [farm(7_400_002, i * MINUTE, session=30.0 if i == 2 else 20.0) for i in range(5)],
         quiet={7_400_002: "gold_farming"}),
    case("gold_farming near miss: one of the five costs $5.00",
         [farm(7_400_003, i * MINUTE, amount=5.00 if i == 4 else 1.99) for i in range(5)],
         quiet={7_400_003: "gold_farming"}),
    case("gold_farming near miss: the fifth purchase comes 61 minutes after the first",
         [farm(7_400_004, i * 15 * MINUTE + (MINUTE if i == 4 else 0)) for i in range(5)],
         quiet={7_400_004: "gold_farming"}),
    case("gold_farming near miss: one of the five is a skin, not currency",
         [farm(7_400_005, i * MINUTE, item_type="skin" if i == 0 else "currency") for i in range(5)],
         quiet={7_400_005: "gold_farming"}),

    # chargeback_fraud: >= 2 credit-card purchases >= $100 within 1 h, player first seen < 24 h earlier
    case("chargeback_fraud: first seen 23 h earlier, then $100.00 and $240 by card 50 minutes apart",
         [buy(7_500_001, -23 * HOUR, 9.99), card(7_500_001, 0, 100.00), card(7_500_001, 50 * MINUTE, 240.00)],
         fires={7_500_001: "chargeback_fraud"}),
    case("chargeback_fraud near miss: first seen 25 h earlier",
         [buy(7_500_002, -25 * HOUR, 9.99), card(7_500_002, 0, 150.00), card(7_500_002, 10 * MINUTE, 240.00)],
         quiet={7_500_002: "chargeback_fraud"}),
    case("chargeback_fraud near miss: the second card purchase is $99.99",
         [card(7_500_003, 0, 150.00), card(7_500_003, 10 * MINUTE, 99.99)],
         quiet={7_500_003: "chargeback_fraud"}),
    case("chargeback_fraud near miss: the second big purchase is paid with PayPal",
         [card(7_500_004, 0, 150.00), card(7_500_004, 10 * MINUTE, 150.00, method="paypal")],
         quiet={7_500_004: "chargeback_fraud"}),
    case("chargeback_fraud near miss: the second card purchase comes 61 minutes later",
         [card(7_500_005, 0, 150.00), card(7_500_005, 61 * MINUTE, 150.00)],
         quiet={7_500_005: "chargeback_fraud"}),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run_cases(CASES, Path(tmp_path_factory.mktemp("gaming-job")))


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(case: PatternCase, outcome: Outcome) -> None:
    assert_case(case, outcome)


@pytest.mark.integration
def test_account_takeover_evidence_names_the_new_device_and_the_spend(outcome: Outcome) -> None:
    (incident,) = outcome.found(key(7_300_001), "account_takeover")
    assert incident["severity"] == "CRITICAL"
    (evidence,) = incident["evidence"]
    assert len(evidence["transaction_ids"]) == 4  # the new-device purchase and the three after it
    measures = evidence["measures"]
    assert measures["new_device"] == "gdev-stolen-1" and measures["prior_mean"] == 15.0
    assert measures["purchases_after"] == 3 and measures["spent_after"] == 50.01


def _generated(seconds: float = 300) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    stream = EventStream(6, 0.01, "run-test", patterns=("account_takeover", "gold_farming", "chargeback_fraud"))
    run_offline(stream, sent.append, truth.append, 10_000, seconds, at(timedelta(0)))
    return sent, truth


def test_scenarios_record_the_partition_key_and_have_their_pattern_shape() -> None:
    sent, truth = _generated()
    by_id = {e["transaction_id"]: e for e in sent}
    events_per_actor = Counter(e["actor_id"] for e in sent)
    assert {t["pattern"] for t in truth} == {"account_takeover", "gold_farming", "chargeback_fraud"}
    for instance in truth:
        player, txns = instance["actor_id"], [by_id[t] for t in instance["transaction_ids"]]
        assert all(e["actor_id"] == player for e in txns)
        assert events_per_actor[player] == len(txns), "fresh players: no background event of theirs"
        span = events.parse_timestamp(txns[-1]["timestamp"]) - events.parse_timestamp(txns[0]["timestamp"])
        assert span < timedelta(minutes=10), "instances stay short in real time"
        if instance["pattern"] == "account_takeover":
            own = [e for e in txns if e["device_id"] == f"gdev-{int(player.split('-')[1]):06d}"]
            novel, spend = txns[len(own)], txns[len(own) + 1:]
            assert own and novel["device_id"] != own[0]["device_id"]
            assert novel["ip_address"] not in {e["ip_address"] for e in own}
            mean = sum(e["amount"] for e in own) / len(own)
            assert len(spend) >= 3 and sum(e["amount"] for e in spend[:3]) > 3 * mean
            elapsed = events.parse_timestamp(spend[2]["timestamp"]) - events.parse_timestamp(novel["timestamp"])
            assert elapsed <= timedelta(minutes=30)
            assert not any(e["payment_method"] == "credit_card" and e["amount"] >= 100 for e in txns), \
                "a taken-over (new in the stream) player must not also look like chargeback_fraud"
        elif instance["pattern"] == "gold_farming":
            assert len(txns) >= 5 and all(e["item_type"] == "currency" and e["amount"] < 5
                                          and e["session_length_sec"] < 30 for e in txns)
        else:
            big = [e for e in txns if e["payment_method"] == "credit_card" and e["amount"] >= 100]
            assert len(big) >= 2 and big == txns[-len(big):]


def test_legit_players_pay_100_dollars_or_more_from_the_wallet() -> None:
    """Whales still spend big, but never by card: every player is new in a generated stream."""
    rng = random.Random(13)
    moment = at(timedelta(0))
    buys = [behaviours.gaming(rng, i % behaviours.POPULATION["gaming"], moment) for i in range(100_000)]
    assert not any(e["payment_method"] == "credit_card" and e["amount"] >= 100 for e in buys)
    assert sum(e["amount"] >= 100 for e in buys) > 500, "whales' big purchases remain"
    assert min(e["amount"] for e in buys) >= 5, "legit purchases never look like gold farming's"
    assert {e["payment_method"] for e in buys} == {"credit_card", "paypal", "wallet"}


def test_docs_list_every_threshold_with_its_default() -> None:
    doc = (REPO_ROOT / "docs" / "patterns.md").read_text()
    for pattern in ("account_takeover", "gold_farming", "chargeback_fraud"):
        for name, default in patterns.defaults(pattern).items():
            row = f"| `PA_RULE_{pattern.upper()}_{name.upper()}` | {default} |"
            assert row in doc, f"docs/patterns.md lacks the row {row}"
