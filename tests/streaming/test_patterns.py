"""Pattern files: thresholds declared in the file, overridable from the environment, never blank."""

from __future__ import annotations

import re

import pytest

from streaming import patterns


def test_every_pattern_renders_with_its_declared_thresholds() -> None:
    for name in patterns.enabled():
        sql = patterns.render(name)
        assert "{{" not in sql and "--" not in sql
        assert patterns.defaults(name), f"{name}.sql declares no @threshold"


def test_environment_overrides_a_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_RULE_CARD_TESTING_MIN_PURCHASES", "7")
    assert patterns.thresholds("card_testing")["min_purchases"] == 7
    assert "PATTERN (S{7})" in patterns.render("card_testing")


def test_bad_override_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_RULE_CARD_TESTING_MIN_PURCHASES", "many")
    with pytest.raises(ValueError, match="PA_RULE_CARD_TESTING_MIN_PURCHASES"):
        patterns.thresholds("card_testing")


def test_pattern_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_PATTERNS", "card_testing")
    assert patterns.enabled() == ["card_testing"]
    monkeypatch.setenv("PA_PATTERNS", "card_testing,nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        patterns.enabled()


def test_state_ttl_shorter_than_a_look_back_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    patterns.check_state_ttl(30)  # friendly_fraud looks back 30 days by default
    patterns.check_state_ttl(0)  # 0 keeps state forever
    with pytest.raises(ValueError, match="PA_STATE_TTL_DAYS=29 .*friendly_fraud.*PA_RULE_FRIENDLY_FRAUD_QUIET_DAYS"):
        patterns.check_state_ttl(29)
    monkeypatch.setenv("PA_RULE_FRIENDLY_FRAUD_QUIET_DAYS", "10")
    patterns.check_state_ttl(10)
    monkeypatch.setenv("PA_RULE_FRIENDLY_FRAUD_QUIET_DAYS", "2")
    monkeypatch.setenv("PA_RULE_PROMO_ABUSE_WITHIN_HOURS", "96")
    with pytest.raises(ValueError, match="promo_abuse.*4 days"):
        patterns.check_state_ttl(3)


def test_only_the_domains_the_chosen_patterns_read_get_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A domain table nobody reads would still run its filter on every event."""
    monkeypatch.setenv("PA_PATTERNS", "card_testing,promo_abuse,spike")
    assert patterns.domains_read() == ["ecommerce"]
    monkeypatch.setenv("PA_PATTERNS", "account_takeover")  # reads the player history, not events_gaming
    assert patterns.domains_read() == []
    monkeypatch.delenv("PA_PATTERNS")
    for name in patterns.enabled():
        assert not re.search(r"\bFROM\s+events\b", patterns.render(name)), f"{name} reads the all-domain view"
