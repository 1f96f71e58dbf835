"""The event contract: what is accepted, and the exact reason for what is not."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

from patternalarm import events
from streaming import behaviours

NOW = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)


@pytest.mark.parametrize("domain", events.DOMAINS)
def test_generated_events_of_every_domain_are_valid(domain: str) -> None:
    rng = random.Random(3)
    for index in range(50):
        event = behaviours.FACTORIES[domain](rng, index, NOW)
        assert events.decode(events.encode(event)) == event


def valid(domain: str = "fintech") -> dict:
    return behaviours.FACTORIES[domain](random.Random(1), 7, NOW)


def reason(payload: object) -> str:
    raw = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    with pytest.raises(events.InvalidEvent) as caught:
        events.decode(raw)
    return caught.value.reason


def test_timestamp_has_exactly_milliseconds_and_z() -> None:
    assert events.format_timestamp(NOW) == "2026-03-01T12:00:00.123Z"
    assert events.parse_timestamp("2026-03-01T12:00:00.123Z") == NOW


@pytest.mark.parametrize("bad", ["2026-03-01T12:00:00Z", "2026-03-01 12:00:00.123Z", "2026-02-30T12:00:00.000Z",
                                 "2026-03-01T12:00:00.123+00:00", 1700000000])
def test_bad_timestamps_are_rejected(bad: object) -> None:
    event = valid()
    event["timestamp"] = bad
    expected = events.wrong_kind("timestamp", "string") if not isinstance(bad, str) else events.BAD_TIMESTAMP
    assert reason(event) == expected


def test_reasons_name_the_broken_rule() -> None:
    assert reason(b"{not json") == events.MALFORMED_JSON
    assert reason(b'{"amount": NaN}') == events.MALFORMED_JSON
    assert reason([1, 2]) == events.NOT_AN_OBJECT
    assert reason({**valid(), "domain": "mars"}) == events.UNKNOWN_DOMAIN
    missing = valid()
    del missing["purpose"]
    assert reason(missing) == "missing required field 'purpose' for domain fintech"
    assert reason({**valid(), "amount": "12.50"}) == "field 'amount' must be a number"
    assert reason({**valid(), "amount": True}) == "field 'amount' must be a number"
    assert reason({**valid(), "currency": ""}) == "field 'currency' must be a string"
    assert reason({**valid(), "ip_address": 5}) == "field 'ip_address' must be a string"
    assert reason({**valid("ecommerce"), "cart_items": {}}) == "field 'cart_items' must be a array"
    iot = valid("iot")
    assert reason({**iot, "device_id": "someone-else"}) == events.IOT_DEVICE_MISMATCH


def test_optional_fields_may_be_absent_or_null() -> None:
    event = valid()
    event.pop("ip_address")
    event["test_id"] = None
    events.validate(event)
