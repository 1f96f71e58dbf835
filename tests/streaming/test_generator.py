"""Generator: deterministic, true to its rate, and its ground truth matches what it sent."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from patternalarm import events
from streaming.generator import EventStream, parse_duration, run_offline
from streaming.load_profile import MODES_PER_MIN, Pacer, rate_function

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def generate(seed: int, seconds: float = 120, rate: float = 10_000, fraud: float = 0.01,
             patterns: tuple[str, ...] | None = None):
    sent: list[dict] = []
    truth: list[dict] = []
    stream = EventStream(seed, fraud, "run-test", patterns)
    run_offline(stream, sent.append, truth.append, rate, seconds, START)
    return sent, truth


def test_same_seed_same_stream_and_different_seed_differs() -> None:
    a, truth_a = generate(5)
    b, truth_b = generate(5)
    c, _ = generate(6)
    assert a == b and truth_a == truth_b
    assert a != c


def test_offline_rate_and_validity() -> None:
    sent, truth = generate(1, seconds=60, rate=10_000)
    assert len(sent) >= 10_000  # plus background while the last injected instances finish
    for event in sent:
        events.validate(event)
    first = events.parse_timestamp(sent[0]["timestamp"])
    assert (events.parse_timestamp(sent[10_000]["timestamp"]) - first).total_seconds() == pytest.approx(60, abs=0.01)
    assert truth, "a 1% fraud rate over 10,000 events injects instances"


def test_ground_truth_lists_exactly_the_injected_card_testing_events() -> None:
    sent, truth = generate(2, fraud=0.02, patterns=("card_testing",))
    by_id = {e["transaction_id"]: e for e in sent}
    for instance in truth:
        assert instance["pattern"] == "card_testing"
        assert 5 <= len(instance["transaction_ids"]) <= 8
        attack = [by_id[t] for t in instance["transaction_ids"]]
        assert all(e["actor_id"] == instance["actor_id"] and e["amount"] < 5 for e in attack)
        assert all(e["session_duration_sec"] < 60 for e in attack)
        span = events.parse_timestamp(attack[-1]["timestamp"]) - events.parse_timestamp(attack[0]["timestamp"])
        assert span.total_seconds() < 600
        # nobody else's events interleave with the attacker's: the attacker id is not a background actor
        assert sum(1 for e in sent if e["actor_id"] == instance["actor_id"]) == len(attack)
    assert "fraud" not in str(sent[0]) and all("pattern" not in e for e in sent)


def test_modes_and_spike_profile() -> None:
    assert rate_function("MINI")(0) == 5 and rate_function("crisis")(10) == MODES_PER_MIN["CRISIS"]
    spike = rate_function("SPIKE")
    assert spike(0) == 10_000 and spike(45) == 200_000 and spike(120) == 10_000
    assert rate_function("1234")(0) == 1234
    with pytest.raises(ValueError, match="unknown load mode"):
        rate_function("HUGE")


def test_pacer_is_a_token_bucket_not_a_burst() -> None:
    now = [0.0]
    pacer = Pacer(lambda _t: 600.0, clock=lambda: now[0])  # 10 events per second
    assert pacer.due() == 1  # the first event goes at once
    now[0] = 0.5
    assert pacer.due() == 5
    now[0] = 100.0  # a long stall refills at most max_burst
    assert pacer.due() == pacer.max_burst


def test_durations() -> None:
    assert parse_duration("60s") == 60 and parse_duration("5m") == 300 and parse_duration("90") == 90
    assert parse_duration(None) is None
    with pytest.raises(SystemExit):
        parse_duration("soon")



def test_pace_compresses_attacks_only() -> None:
    """The demo runs attacks faster: the same seed injects the same instance, its gaps times the pace."""
    def one_instance(pace: float) -> tuple[str, float]:
        stream = EventStream(11, 1.0, "run-pace", ("account_takeover",), pace=pace)
        stream.next_event(START)  # fraud rate 1: the first event starts an instance
        stream.fraud_rate = 0.0
        truth: list[dict] = []
        run_offline(stream, lambda e: None, truth.append, 6000, 0, START)
        (t,) = truth
        span = datetime.fromisoformat(t["last_event_time"]) - datetime.fromisoformat(t["first_event_time"])
        return t["instance_id"], span.total_seconds()

    normal_id, normal = one_instance(1.0)
    fast_id, fast = one_instance(0.25)
    assert normal_id == fast_id and normal > 60
    assert abs(fast - normal * 0.25) <= 0.1  # events land on the 10 ms ticks of the offline clock


def test_finish_within_abandons_slow_attacks_without_ground_truth() -> None:
    """A bounded demo: attacks still running when the finishing time runs out get no ground truth."""
    from streaming.generator import run

    stream = EventStream(5, 0.05, "run-finish", ("account_takeover",), rate_per_min=6000)
    sent: list[dict] = []
    truth: list[dict] = []
    stats = run(stream, sent.append, truth.append, "6000", duration_s=0.5, tail_s=0.0, finish_within_s=0.5)
    assert stats.abandoned == stream.unfinished() > 0
    assert truth == []  # account takeovers take minutes: none finished, none recorded
    assert stats.as_dict(0.0)["abandoned_instances"] == stats.abandoned
    assert stats.produced == len(sent) > 0
