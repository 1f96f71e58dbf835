"""parse_event (the JVM validator, streaming/udf) against the Python contract, payload by payload.

A corpus of valid events of every domain and of every kind of breakage goes through the real table
function in a local Flink (a VALUES source, results collected) and through events.decode: the reject
reason must be the same text (NULL for a valid event) and the typed columns the same values as
event_columns.extract, and, for the feature columns, as features.txn_from_event.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest

from patternalarm import config, events
from patternalarm.features import txn_from_event
from patternalarm.stack import kafka_broker
from streaming import behaviours, contract_sql, event_columns

NOW = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)


def valid(domain: str, index: int = 7, seed: int = 1) -> dict[str, Any]:
    return behaviours.FACTORIES[domain](random.Random(seed), index, NOW)


def dumps(event: Any) -> str:
    return json.dumps(event)  # ensure_ascii: the SQL literal stays ASCII


def changed(kind: str, /, **fields: Any) -> str:
    event = valid(kind)
    event.update(fields)
    return dumps(event)


def without(domain: str, name: str) -> str:
    event = valid(domain)
    del event[name]
    return dumps(event)


def corpus() -> list[tuple[str, str | None]]:
    """(label, payload) pairs; None is a Kafka tombstone (a record without value)."""
    cases: list[tuple[str, str | None]] = []
    for domain in events.DOMAINS:
        for seed in range(3):
            cases.append((f"valid {domain} {seed}", dumps(valid(domain, index=seed * 11 + 4, seed=seed))))
    fintech, ecommerce, iot = valid("fintech"), valid("ecommerce"), valid("iot")
    cases += [
        ("valid: integer amount", changed("fintech", amount=12)),
        ("valid: huge exponent is a number (inf)", dumps(fintech).replace(f'"amount": {fintech["amount"]}',
                                                                          '"amount": 1e400')),
        ("valid: optional fields null or absent", changed("gaming", ip_address=None, test_id=None)),
        ("valid: test_id present", changed("iot", test_id="load-7")),
        ("valid: unknown extra fields", changed("fintech", note={"x": [1, 2]}, flag=True)),
        ("valid: electronics in cart", changed("ecommerce", cart_items=[
            {"product_id": "p-1", "category": "books", "price": 3.0, "quantity": 1},
            {"product_id": "p-2", "category": "electronics", "price": 300.0, "quantity": 1},
            {"product_id": "p-3", "price": 1.0, "quantity": 1}, "not-an-item", {"category": 5}])),
        ("valid: empty cart, numeric shipping country",
         changed("ecommerce", cart_items=[], shipping_address={**ecommerce["shipping_address"], "country": 5})),
        ("valid: shipping address without country", changed("ecommerce", shipping_address={"street": "1 A St"})),
        ("valid: non-ASCII text", changed("gaming", item_name="épée ⚔", payment_method="carte bancaire")),
        ("valid: leap day", changed("iot", timestamp="2024-02-29T23:59:59.999Z")),
        ("valid: duplicate key, last wins", dumps({**iot, "domain": "mars"})[:-1] + ', "domain": "iot"}'),
        ("valid: whitespace around", "  \n" + dumps(fintech) + " \t"),
        ("malformed: text", "this is not json"),
        ("malformed: empty", ""),
        ("malformed: blank", "   "),
        ("malformed: truncated", dumps(fintech)[:-1]),
        ("malformed: trailing data", dumps(fintech) + " x"),
        ("malformed: two objects", dumps(fintech) + dumps(fintech)),
        ("malformed: NaN", dumps(fintech).replace(f'"amount": {fintech["amount"]}', '"amount": NaN')),
        ("malformed: Infinity", dumps(fintech).replace(f'"amount": {fintech["amount"]}', '"amount": -Infinity')),
        ("malformed: single quotes", "{'domain': 'iot'}"),
        ("malformed: comment", '{"domain": "iot" /* c */}'),
        ("malformed: leading zero", dumps(fintech).replace(f'"amount": {fintech["amount"]}', '"amount": 012')),
        ("tombstone", None),
        ("not an object: array", "[1, 2, 3]"),
        ("not an object: string", '"fintech"'),
        ("not an object: null", "null"),
        ("not an object: number", "42"),
        ("unknown domain", changed("fintech", domain="mars")),
        ("domain missing", without("fintech", "domain")),
        ("domain null", changed("fintech", domain=None)),
        ("domain a number", changed("fintech", domain=5)),
        ("domain wrong case", changed("fintech", domain="FINTECH")),
        ("string-number", changed("fintech", amount="12.50")),
        ("boolean as number", changed("gaming", amount=True)),
        ("string-number session", changed("ecommerce", session_duration_sec="90")),
        ("empty string", changed("fintech", currency="")),
        ("object where string expected", changed("fintech", currency={"code": "USD"})),
        ("array where string expected", changed("iot", site_id=["s"])),
        ("number where string expected", changed("gaming", device_id=123)),
        ("boolean where string expected", changed("fintech", transaction_id=False)),
        ("string where array expected", changed("ecommerce", cart_items="books")),
        ("array where object expected", changed("ecommerce", shipping_address=[])),
        ("optional present but empty", changed("iot", test_id="")),
        ("optional present but number", changed("iot", ip_address=10)),
        ("required null is missing", changed("fintech", purpose=None)),
        ("first broken rule wins: wrong kind before missing", dumps({k: v for k, v in {**fintech, "amount": "1"}.items()
                                                                    if k != "purpose"})),
        ("first broken rule wins: missing before timestamp", dumps({**{k: v for k, v in iot.items() if k != "unit"},
                                                                   "timestamp": "yesterday"})),
        ("iot device mismatch", changed("iot", device_id="dev-999999")),
        ("timestamp before mismatch", changed("iot", device_id="dev-999999", timestamp="2026-02-30T00:00:00.000Z")),
        ("timestamp a number", changed("iot", timestamp=1700000000)),
    ]
    for bad in ("2026-03-01 12:00:00.123Z", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00.123+00:00",
                "2026-02-30T00:00:00.000Z", "2023-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z",
                "2026-00-10T00:00:00.000Z", "2026-01-01T24:00:00.000Z", "2026-01-01T00:60:00.000Z",
                "2026-01-01T00:00:60.000Z", "0000-01-01T00:00:00.000Z", "2026-1-31T12:00:00.0000Z",
                "2026-01-31t12:00:00.000Z", "2026-01-31T12:00:00.000z", "\u0662026-01-31T12:00:00.000Z",
                "2026-01-31T12:00:00.1234Z", " 2026-01-31T12:00:00.000Z"):
        cases.append((f"timestamp {bad!r}", changed("gaming", timestamp=bad)))
    for domain in events.DOMAINS:
        for field in events.fields_for(domain):
            if field.required:
                cases.append((f"missing {domain}.{field.name}", without(domain, field.name)))
    return cases


CORPUS = corpus()


def python_reason(payload: str | None) -> str | None:
    if payload is None:
        return events.MALFORMED_JSON  # a tombstone has no JSON at all
    try:
        events.decode(payload.encode())
    except events.InvalidEvent as exc:
        return exc.reason
    return None


def values_sql() -> str:
    rows = ",\n".join(f"({i}, {'CAST(NULL AS STRING)' if p is None else f'CAST({contract_sql.quote(p)} AS STRING)'})"
                      for i, (_, p) in enumerate(CORPUS))
    return f"""
SELECT t.id, {contract_sql.event_time_sql("t.payload")} AS event_time, p.*
FROM (VALUES {rows}) AS t(id, payload),
  {contract_sql.lateral_parse_event("t.payload")}"""


@pytest.fixture(scope="module")
def jvm_rows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, tuple[Any, ...]]]:
    import os

    from pyflink.table import EnvironmentSettings, TableEnvironment

    settings = config.load()
    os.environ.setdefault("FLINK_LOG_DIR", str(tmp_path_factory.mktemp("flink-log")))
    os.environ.setdefault("JVM_ARGS", "-Xmx512m")
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("parallelism.default", "1")
    for statement in contract_sql.create_functions_sql(kafka_broker.udf_jar(settings).resolve().as_uri()):
        t_env.execute_sql(statement)
    with t_env.execute_sql(values_sql()).collect() as results:
        rows = {row[0]: tuple(row)[1:] for row in results}  # event_time, reject_reason, columns...
    yield rows


def test_corpus_is_large_and_covers_every_outcome() -> None:
    reasons = {python_reason(p) for _, p in CORPUS}
    assert len(CORPUS) >= 40
    assert None in reasons and events.MALFORMED_JSON in reasons and events.NOT_AN_OBJECT in reasons
    assert {events.UNKNOWN_DOMAIN, events.BAD_TIMESTAMP, events.IOT_DEVICE_MISMATCH} <= reasons


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[label for label, _ in CORPUS])
def test_reject_reason_matches_python_validator(jvm_rows: dict[int, tuple[Any, ...]], index: int) -> None:
    _, payload = CORPUS[index]
    assert jvm_rows[index][1] == python_reason(payload)


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[label for label, _ in CORPUS])
def test_typed_columns_match_python(jvm_rows: dict[int, tuple[Any, ...]], index: int) -> None:
    _, payload = CORPUS[index]
    got = dict(zip(event_columns.NAMES, jvm_rows[index][2:]))
    if python_reason(payload) is not None:
        assert set(got.values()) == {None}
        return
    event = json.loads(payload)
    assert got == {c.name: event_columns.extract(event, c) for c in event_columns.COLUMNS}
    txn = txn_from_event(event, NOW)
    for name in ("amount", "domain", "payment_method", "session_sec", "country_from", "country_to", "counterparty",
                 "device"):
        assert got[name] == getattr(txn, name), name


def not_json(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def python_event_time(payload: str | None) -> datetime | None:
    """The last top-level timestamp of a JSON object, when the contract accepts it (else NULL)."""
    try:
        event = json.loads(payload, parse_constant=not_json) if payload is not None else None
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("timestamp"), str):
        return None
    try:
        return events.parse_timestamp(event["timestamp"]).replace(tzinfo=None)
    except events.InvalidEvent:
        return None


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[label for label, _ in CORPUS])
def test_event_time_is_the_contract_timestamp(jvm_rows: dict[int, tuple[Any, ...]], index: int) -> None:
    _, payload = CORPUS[index]
    assert jvm_rows[index][0] == python_event_time(payload)


def test_cart_columns_read_the_categories(jvm_rows: dict[int, tuple[Any, ...]]) -> None:
    index = next(i for i, (label, _) in enumerate(CORPUS) if label == "valid: electronics in cart")
    got = dict(zip(event_columns.NAMES, jvm_rows[index][2:]))
    assert got["cart_categories"] == "books,electronics"
    assert got["cart_has_electronics"] is True
    assert got["user_id"] == valid("ecommerce")["user_id"]
    assert got["shipping_zip"] == valid("ecommerce")["shipping_address"]["zip"]
