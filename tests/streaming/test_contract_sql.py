"""The pure builders behind the event format: the contract spec, the column list and the SQL around them."""

from __future__ import annotations

import json
import re

from patternalarm import events
from patternalarm.features import COLUMN_SOURCES
from streaming import contract_sql, event_columns
from streaming.detection_job import events_checked_sql

PATTERN_AND_FEATURE_INPUTS = ("transaction_id", "domain", "actor_id", "event_time", "amount", "payment_method",
                              "session_sec", "country_from", "country_to", "counterparty", "device")


def literals(sql: str) -> list[str]:
    """The SQL string literals in order, quotes undoubled."""
    return [m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", sql)]


def test_contract_spec_is_json_and_follows_validate_order() -> None:
    spec = json.loads(json.dumps(events.contract_spec()))
    assert list(spec["domains"]) == list(events.DOMAINS)
    for domain, fields in spec["domains"].items():
        assert [f["name"] for f in fields] == [f.name for f in events.fields_for(domain)]
        for entry, field in zip(fields, events.fields_for(domain)):
            assert entry["kind"] == field.kind and entry["required"] == field.required
            assert entry["missing"] == events.missing_field(field.name, domain)
            assert entry["wrong_kind"] == events.wrong_kind(field.name, field.kind)
    assert (spec["malformed_json"], spec["not_an_object"], spec["unknown_domain"]) == (
        events.MALFORMED_JSON, events.NOT_AN_OBJECT, events.UNKNOWN_DOMAIN)
    assert spec["timestamp"]["reason"] == events.BAD_TIMESTAMP
    assert spec["same_value"] == [{"domain": "iot", "field": "device_id", "other": "actor_id",
                                   "reason": events.IOT_DEVICE_MISMATCH}]


def test_timestamp_rule_in_the_spec_is_the_one_python_applies() -> None:
    ts = events.contract_spec()["timestamp"]
    assert ts["layout"] == "YYYY-MM-DDThh:mm:ss.fffZ" and len(ts["layout"]) == 24
    assert sorted(ts["parts"].values()) == sorted(["year", "month", "day", "hour", "minute", "second",
                                                   "millisecond"])
    pattern = re.compile(events.TIMESTAMP_PATTERN)  # what parse_timestamp matches, built from the layout
    assert pattern.fullmatch("2026-01-31T12:00:00.000Z")
    for text in ("2026-1-31T12:00:00.0000Z", "2026-01-31t12:00:00.000Z", "2026-01-31T12:00:00.000Z ",
                 "2026-01-31T12:00:00+000Z"):
        assert not pattern.fullmatch(text)
    assert ts["min_year"] == 1


def test_every_feature_column_is_read_from_its_feature_source() -> None:
    by_name = {c.name: c for c in event_columns.COLUMNS}
    for domain, sources in COLUMN_SOURCES.items():
        for column, path in sources.items():
            assert by_name[column].sources[domain] == path
    assert by_name["session_sec"].type == "DOUBLE" and by_name["amount"].type == "DOUBLE"
    assert by_name["amount"].sources["iot"] == "value"
    assert len(set(event_columns.NAMES)) == len(event_columns.NAMES)


def test_extract_follows_paths_types_and_array_ops() -> None:
    event = {"domain": "ecommerce", "amount": 3, "user_id": "u-1",
             "shipping_address": {"zip": "62701", "country": 5},
             "cart_items": [{"category": "books"}, {"category": "electronics"}, {"category": 7}, "x"]}
    by_name = {c.name: c for c in event_columns.COLUMNS}
    assert event_columns.extract(event, by_name["amount"]) == 3.0
    assert event_columns.extract(event, by_name["shipping_zip"]) == "62701"
    assert event_columns.extract(event, by_name["country_to"]) is None  # a number is not a string
    assert event_columns.extract(event, by_name["account_to"]) is None  # not an ecommerce field
    assert event_columns.extract(event, by_name["cart_categories"]) == "books,electronics"
    assert event_columns.extract(event, by_name["cart_has_electronics"]) is True
    assert event_columns.extract({**event, "cart_items": []}, by_name["cart_has_electronics"]) is False


def test_quote_doubles_single_quotes() -> None:
    assert contract_sql.quote("it's") == "'it''s'"


def test_format_options_carry_spec_and_columns_as_literals() -> None:
    options = literals(contract_sql.format_options_sql())
    settings = dict(zip(options[0::2], options[1::2], strict=True))
    assert settings["format"] == contract_sql.FORMAT
    assert json.loads(settings[f"{contract_sql.FORMAT}.contract"]) == events.contract_spec()
    assert json.loads(settings[f"{contract_sql.FORMAT}.columns"]) == event_columns.columns_spec()


def test_source_columns_are_the_format_layout() -> None:
    declared = [c.strip().split(" ", 1) for c in contract_sql.source_columns_sql().split(",")]
    assert [name.strip("`") for name, _ in declared] == [
        "payload", "reject_reason", "contract_time", *event_columns.NAMES]
    assert [t for _, t in declared][3:] == [c.type for c in event_columns.COLUMNS]
    assert contract_sql.output_columns()[0] == "reject_reason"


def test_events_view_has_what_patterns_and_features_read() -> None:
    columns = [c.strip() for c in contract_sql.event_view_columns().split(",")]
    assert set(PATTERN_AND_FEATURE_INPUTS) <= set(columns)
    assert columns.index("event_time") == columns.index("actor_id") + 1


def test_events_are_parsed_by_the_source_alone() -> None:
    """The statements read the format's columns; nothing parses the payload again."""
    sql = events_checked_sql()
    assert "JSON_VALUE" not in sql and "JSON_QUERY" not in sql and "LATERAL TABLE" not in sql
    assert ", ".join(contract_sql.output_columns()) in sql
