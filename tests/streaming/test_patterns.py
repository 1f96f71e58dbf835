"""Pattern files: thresholds declared in the file, overridable from the environment, never blank."""

from __future__ import annotations

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
