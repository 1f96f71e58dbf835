"""Fintech patterns through the real job: positive cases and near misses just below each threshold.

Accounts are numbered per case so no two cases share one; an "established" account made one small
transfer 8 days before its case, so it is not new for synthetic_identity (first seen < 7 days).
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from patternalarm import events
from streaming import behaviours, patterns
from streaming.generator import EventStream, run_offline
from tests.streaming.pattern_harness import Outcome, PatternCase, at, run_cases, stamp, assert_case

HOUR = 3600.0
DAY = 24 * HOUR


def acct(index: int) -> str:
    return behaviours.actor_id("fintech", index)


def transfer(sender: int, recipient: int, offset_s: float, amount: float, transfer_type: str = "WIRE",
             country_from: str = "US", country_to: str = "US") -> dict[str, Any]:
    """One contract transfer from account `sender` to account `recipient`, offset_s after the base day."""
    rng = random.Random(f"{sender}-{recipient}-{offset_s}-{amount}")
    moment = at(timedelta(seconds=offset_s))
    event = behaviours.fintech(rng, sender, moment)
    event.update(account_to=acct(recipient), amount=amount, transfer_type=transfer_type,
                 country_from=country_from, country_to=country_to)
    return stamp(event, moment)


def established(account: int) -> list[dict[str, Any]]:
    """A small transfer 8 days before the cases: the account was first seen more than 7 days earlier."""
    return [transfer(account, 8_999_999, -8 * DAY, 120.0)]


def case(name: str, events: list[dict[str, Any]], fires: dict[int, str] | None = None,
         quiet: dict[int, str] | None = None) -> PatternCase:
    return PatternCase(name, events, expect={acct(a): p for a, p in (fires or {}).items()},
                       expect_none={acct(a): p for a, p in (quiet or {}).items()})


CASES = [
    # structuring: >= 3 transfers of $9,000-$9,999.99 from one account within 24 h
    case("structuring: three transfers just under $10,000 within a day, ordinary ones in between",
         established(8_000_001) + [transfer(8_000_001, 8_100_001, 0, 9_000.00),
                                   transfer(8_000_001, 8_100_002, 2 * HOUR, 350.00),
                                   transfer(8_000_001, 8_100_003, 9 * HOUR, 9_999.99),
                                   transfer(8_000_001, 8_100_001, 23.5 * HOUR, 9_450.00)],
         fires={8_000_001: "structuring"}),
    case("structuring near miss: two in the band, the third at $10,000.00",
         established(8_000_002) + [transfer(8_000_002, 8_100_004, 0, 9_500.00),
                                   transfer(8_000_002, 8_100_004, HOUR, 9_800.00),
                                   transfer(8_000_002, 8_100_004, 2 * HOUR, 10_000.00)],
         quiet={8_000_002: "structuring"}),
    case("structuring near miss: the third comes after 24 hours",
         established(8_000_003) + [transfer(8_000_003, 8_100_005, 0, 9_500.00),
                                   transfer(8_000_003, 8_100_005, 12 * HOUR, 9_600.00),
                                   transfer(8_000_003, 8_100_005, DAY + 60, 9_700.00)],
         quiet={8_000_003: "structuring"}),
    case("structuring from a new account is structuring, not also synthetic_identity",
         [transfer(8_000_004, 8_100_006, 0, 9_100.00), transfer(8_000_004, 8_100_006, 600, 9_200.00),
          transfer(8_000_004, 8_100_006, 1_200, 9_300.00)],
         fires={8_000_004: "structuring"}, quiet={8_000_004: "synthetic_identity"}),

    # money_laundering, pass-through: receives >= $50,000, forwards >= 90 % within 1 h
    case("money_laundering: $60,000 in, $55,000 (92 %) on to another account 40 minutes later",
         established(8_000_011) + [transfer(8_200_011, 8_000_011, 0, 60_000.00),
                                   transfer(8_000_011, 8_300_011, 40 * 60, 55_000.00)],
         fires={8_000_011: "money_laundering"}, quiet={8_300_011: "money_laundering"}),
    case("money_laundering: $80,000 in, forwarded in two chunks totalling 91 %",
         established(8_000_012) + [transfer(8_200_012, 8_000_012, 0, 80_000.00),
                                   transfer(8_000_012, 8_300_012, 10 * 60, 40_000.00),
                                   transfer(8_000_012, 8_300_013, 50 * 60, 32_800.00)],
         fires={8_000_012: "money_laundering"}),
    case("money_laundering near miss: forwards 89 %",
         established(8_000_013) + [transfer(8_200_013, 8_000_013, 0, 60_000.00),
                                   transfer(8_000_013, 8_300_014, 30 * 60, 53_400.00)],
         quiet={8_000_013: "money_laundering"}),
    case("money_laundering near miss: forwards 95 % but 61 minutes later",
         established(8_000_014) + [transfer(8_200_014, 8_000_014, 0, 60_000.00),
                                   transfer(8_000_014, 8_300_015, 61 * 60, 57_000.00)],
         quiet={8_000_014: "money_laundering"}),
    case("money_laundering near miss: receives $49,999.99 and forwards all of it",
         established(8_000_015) + [transfer(8_200_015, 8_000_015, 0, 49_999.99),
                                   transfer(8_000_015, 8_300_016, 5 * 60, 49_999.99)],
         quiet={8_000_015: "money_laundering"}),
    case("money_laundering near miss: the money goes back to the sender (a refund)",
         established(8_000_016) + [transfer(8_200_016, 8_000_016, 0, 60_000.00),
                                   transfer(8_000_016, 8_200_016, 20 * 60, 60_000.00)],
         quiet={8_000_016: "money_laundering"}),

    # money_laundering, SWIFT: >= 3 SWIFT transfers >= $50,000 touching a high-risk country within 1 h
    case("money_laundering: three SWIFT transfers of >= $50,000 to KY, PA and VG within an hour",
         established(8_000_021) + [transfer(8_000_021, 8_400_021, 0, 50_000.00, "SWIFT", "US", "KY"),
                                   transfer(8_000_021, 8_400_022, 20 * 60, 120_000.00, "SWIFT", "US", "PA"),
                                   transfer(8_000_021, 8_400_023, 55 * 60, 75_500.00, "SWIFT", "US", "VG")],
         fires={8_000_021: "money_laundering"}),
    case("money_laundering: three high-risk SWIFT transfers into one account (from BZ)",
         established(8_000_022) + [transfer(8_400_024 + i, 8_000_022, i * 600, 90_000.00, "SWIFT", "BZ", "US")
                                   for i in range(3)],
         fires={8_000_022: "money_laundering"}),
    case("money_laundering near miss: two SWIFT transfers",
         established(8_000_023) + [transfer(8_000_023, 8_400_031, 0, 200_000.00, "SWIFT", "US", "KY"),
                                   transfer(8_000_023, 8_400_032, 600, 200_000.00, "SWIFT", "US", "KY")],
         quiet={8_000_023: "money_laundering"}),
    case("money_laundering near miss: the third SWIFT transfer touches no high-risk country",
         established(8_000_024) + [transfer(8_000_024, 8_400_033, 0, 90_000.00, "SWIFT", "US", "KY"),
                                   transfer(8_000_024, 8_400_034, 600, 90_000.00, "SWIFT", "US", "PA"),
                                   transfer(8_000_024, 8_400_035, 1_200, 90_000.00, "SWIFT", "US", "DE")],
         quiet={8_000_024: "money_laundering"}),

    # synthetic_identity: first seen < 7 days earlier, >= 3 transfers of $5,000-$50,000 within 24 h
    case("synthetic_identity: a new account sends $12,000, $48,000 and $5,000 within a day",
         [transfer(8_000_031, 8_500_031, 0, 12_000.00), transfer(8_000_031, 8_500_032, 10 * HOUR, 48_000.00),
          transfer(8_000_031, 8_500_033, 23 * HOUR, 5_000.00)],
         fires={8_000_031: "synthetic_identity"}),
    case("synthetic_identity: first seen (receiving) 6 days earlier, then three big transfers",
         [transfer(8_200_032, 8_000_032, -6 * DAY, 300.00)]
         + [transfer(8_000_032, 8_500_034, i * HOUR, 20_000.00) for i in range(3)],
         fires={8_000_032: "synthetic_identity"}),
    case("synthetic_identity near miss: the account was first seen 8 days earlier",
         established(8_000_033) + [transfer(8_000_033, 8_500_035, i * HOUR, 20_000.00) for i in range(3)],
         quiet={8_000_033: "synthetic_identity"}),
    case("synthetic_identity near miss: first seen receiving 8 days earlier, never sending until now",
         [transfer(8_200_035, 8_000_035, -8 * DAY, 2_500.00)]
         + [transfer(8_000_035, 8_500_037, i * HOUR, 20_000.00) for i in range(3)],
         quiet={8_000_035: "synthetic_identity"}),
    case("synthetic_identity near miss: only two transfers in the range (the third is $4,999.99)",
         [transfer(8_000_034, 8_500_036, 0, 20_000.00), transfer(8_000_034, 8_500_036, HOUR, 20_000.00),
          transfer(8_000_034, 8_500_036, 2 * HOUR, 4_999.99)],
         quiet={8_000_034: "synthetic_identity"}),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run_cases(CASES, Path(tmp_path_factory.mktemp("fintech-job")))


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(case: PatternCase, outcome: Outcome) -> None:
    assert_case(case, outcome)


def test_high_risk_countries_are_a_list_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    assert patterns.thresholds("money_laundering")["high_risk_countries"] == ("KY", "PA", "BZ", "VG")
    monkeypatch.setenv("PA_RULE_MONEY_LAUNDERING_HIGH_RISK_COUNTRIES", "KY, AE")
    assert "IN ('KY', 'AE')" in patterns.render("money_laundering")
    monkeypatch.setenv("PA_RULE_MONEY_LAUNDERING_HIGH_RISK_COUNTRIES", "KY,'); DROP")
    with pytest.raises(ValueError, match="PA_RULE_MONEY_LAUNDERING_HIGH_RISK_COUNTRIES"):
        patterns.thresholds("money_laundering")


def test_synthetic_identity_defers_to_structuring_band() -> None:
    """synthetic_identity leaves runs made only of structuring's band to structuring: the two bands agree."""
    synthetic, structuring = patterns.defaults("synthetic_identity"), patterns.defaults("structuring")
    assert synthetic["structuring_min_amount"] == structuring["min_amount"]
    assert synthetic["structuring_max_amount"] == structuring["max_amount"]


def _generated(seconds: float = 120) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    stream = EventStream(3, 0.01, "run-test", patterns=("structuring", "money_laundering", "synthetic_identity"))
    run_offline(stream, sent.append, truth.append, 10_000, seconds, at(timedelta(0)))
    return sent, truth


def test_scenarios_record_the_partition_key_and_have_their_pattern_shape() -> None:
    sent, truth = _generated()
    by_id = {e["transaction_id"]: e for e in sent}
    assert {t["pattern"] for t in truth} == {"structuring", "money_laundering", "synthetic_identity"}
    for instance in truth:
        key, txns = instance["actor_id"], [by_id[t] for t in instance["transaction_ids"]]
        outgoing = [e for e in txns if e["account_from"] == key]
        span = (events.parse_timestamp(txns[-1]["timestamp"]) - events.parse_timestamp(txns[0]["timestamp"]))
        assert span <= timedelta(seconds=100), "instances stay short in real time (make demo waits for them)"
        if instance["pattern"] == "structuring":
            assert len(outgoing) == len(txns) >= 3 and all(9_000 <= e["amount"] <= 9_999.99 for e in txns)
        elif instance["pattern"] == "synthetic_identity":
            assert txns[0]["account_to"] == key and txns[0]["amount"] < 5_000  # the account's first sight
            assert len(outgoing) >= 3 and all(5_000 <= e["amount"] <= 50_000 for e in outgoing)
            assert not any(9_000 <= e["amount"] < 10_000 for e in outgoing)
        elif outgoing[0]["transfer_type"] == "SWIFT":
            assert len(outgoing) == len(txns) >= 3
            assert all(e["amount"] > 50_000 and e["country_to"] in ("KY", "PA", "BZ", "VG") for e in txns)
        else:
            received, forwards = txns[0], txns[1:]
            assert received["account_to"] == key and received["amount"] >= 50_000
            assert 1 <= len(forwards) <= 2 and all(e["account_from"] == key for e in forwards)
            assert sum(e["amount"] for e in forwards) >= 0.9 * received["amount"]
        # fresh accounts: no background event touches the partition key
        touching = [e for e in sent if key in (e.get("account_from"), e.get("account_to"))]
        assert len(touching) == len(txns)


def test_legit_transfers_stay_under_every_fintech_floor() -> None:
    rng = random.Random(11)
    amounts = [behaviours.fintech(rng, i % behaviours.POPULATION["fintech"], at(timedelta(0)))["amount"]
               for i in range(200_000)]
    assert max(amounts) < 5_000 and min(amounts) > 0
    assert sum(a > 2_000 for a in amounts) > 1_000, "savers still make sizeable transfers"
