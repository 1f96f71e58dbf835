"""Flink SQL generated from the event contract (patternalarm/events.py) and the feature columns
(patternalarm/features.py), so the job validates and reads events exactly as the contract says.

Everything here is pure string building: unit-testable without a cluster, and all of it runs inside
the JVM (no Python UDF crosses a process boundary on the hot path).
"""

from __future__ import annotations

from patternalarm import events as contract
from patternalarm.features import COLUMN_SOURCES


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path(field: str) -> str:
    return _quote("$." + field)


def _wrapped(field: str) -> str:
    """The field's JSON text inside an array: `["x"]`, `[1.5]`, `[{..}]`, `[[..]]`, `[null]`; NULL if absent."""
    return f"JSON_QUERY(payload, {_path(field)} WITH ARRAY WRAPPER)"


def is_missing(field: str) -> str:
    w = _wrapped(field)
    return f"({w} IS NULL OR {w} = '[]' OR {w} = '[null]')"


def as_double(field: str) -> str:
    """A number field as DOUBLE. Not `RETURNING DOUBLE`: Flink 1.20 throws ClassCastException (and
    fails the job) when the JSON value is a string, so read the text and TRY_CAST it."""
    return f"TRY_CAST(JSON_VALUE(payload, {_path(field)}) AS DOUBLE)"


def has_kind(field: str, kind: str) -> str:
    w = _wrapped(field)
    if kind == contract.STRING:
        return f"({w} LIKE '[\"%' AND {w} <> '[\"\"]')"
    if kind == contract.ARRAY:
        return f"({w} LIKE '[[%')"
    if kind == contract.OBJECT:
        return f"({w} LIKE '[{{%')"
    # a number: not a string, array, object or boolean; JSON_VALUE converts it to DOUBLE
    return (f"({w} NOT LIKE '[\"%' AND {w} NOT LIKE '[[%' AND {w} NOT LIKE '[{{%' "
            f"AND {w} NOT IN ('[true]', '[false]') "
            f"AND {as_double(field)} IS NOT NULL)")


TIMESTAMP_SQL = "JSON_VALUE(payload, '$.timestamp')"
PARSED_TIMESTAMP_SQL = (f"TO_TIMESTAMP(REPLACE(REPLACE({TIMESTAMP_SQL}, 'T', ' '), 'Z', ''), "
                        "'yyyy-MM-dd HH:mm:ss.SSS')")


def timestamp_ok() -> str:
    ts = TIMESTAMP_SQL
    return (f"(CHAR_LENGTH({ts}) = 24 AND {ts} LIKE '____-__-__T__:__:__.___Z' "
            f"AND {PARSED_TIMESTAMP_SQL} IS NOT NULL)")


def reject_reason_sql() -> str:
    """A CASE giving the first broken rule's reason, in the order events.validate checks them."""
    domain = "JSON_VALUE(payload, '$.domain')"
    whens = [
        f"WHEN payload IS NULL OR payload IS NOT JSON THEN {_quote(contract.MALFORMED_JSON)}",
        f"WHEN payload IS NOT JSON OBJECT THEN {_quote(contract.NOT_AN_OBJECT)}",
        f"WHEN {domain} IS NULL OR {domain} NOT IN ({', '.join(map(_quote, contract.DOMAINS))}) "
        f"THEN {_quote(contract.UNKNOWN_DOMAIN)}",
    ]
    for name in contract.DOMAINS:
        for f in contract.fields_for(name):
            if f.required:
                whens.append(f"WHEN {domain} = {_quote(name)} AND {is_missing(f.name)} "
                             f"THEN {_quote(contract.missing_field(f.name, name))}")
            presence = "" if f.required else f"NOT {is_missing(f.name)} AND "
            whens.append(f"WHEN {domain} = {_quote(name)} AND {presence}NOT {has_kind(f.name, f.kind)} "
                         f"THEN {_quote(contract.wrong_kind(f.name, f.kind))}")
    whens.append(f"WHEN NOT {timestamp_ok()} THEN {_quote(contract.BAD_TIMESTAMP)}")
    whens.append(f"WHEN {domain} = 'iot' AND JSON_VALUE(payload, '$.device_id') <> JSON_VALUE(payload, '$.actor_id') "
                 f"THEN {_quote(contract.IOT_DEVICE_MISMATCH)}")
    return "CASE\n    " + "\n    ".join(whens) + "\n    ELSE CAST(NULL AS STRING)\n  END"


def _column(column: str, cast: str = "") -> str:
    """CASE over domains picking the contract field that feeds a feature column."""
    whens = []
    for domain, sources in COLUMN_SOURCES.items():
        if column in sources:
            value = f"JSON_VALUE(payload, {_path(sources[column])})"
            whens.append(f"WHEN {_quote(domain)} THEN {f'TRY_CAST({value} AS {cast})' if cast else value}")
    null = f"CAST(NULL AS {cast or 'STRING'})"
    if not whens:
        return null
    return f"CASE domain {' '.join(whens)} ELSE {null} END"


def typed_event_columns() -> str:
    """Projection of a validated raw event onto the columns detection and features read."""
    amount = f"CASE domain WHEN 'iot' THEN {as_double('value')} ELSE {as_double('amount')} END"
    return ",\n  ".join([
        "JSON_VALUE(payload, '$.transaction_id') AS transaction_id",
        "domain",
        "JSON_VALUE(payload, '$.actor_id') AS actor_id",
        "event_time",
        f"{amount} AS amount",
        f"{_column('payment_method')} AS payment_method",
        f"{_column('session_sec', 'DOUBLE')} AS session_sec",
        f"{_column('country_from')} AS country_from",
        f"{_column('country_to')} AS country_to",
        f"{_column('counterparty')} AS counterparty",
        f"{_column('device')} AS device",
        "JSON_VALUE(payload, '$.ip_address') AS ip_address",
        "JSON_VALUE(payload, '$.test_id') AS test_id",
    ])
