"""The event format (the JVM validator, streaming/udf) against the Python contract, payload by payload.

A corpus of valid events of every domain and of every kind of breakage (a Kafka tombstone too) is
published to a fresh topic and read back by a local Flink through a Kafka table in the
`patternalarm-event` format, as the detection job's source reads it, and goes through events.decode:
the reject reason must be the same text (NULL for a valid event), the typed columns the same values as
event_columns.extract and, for the feature columns, as features.txn_from_event; the event time the
contract timestamp; the payload kept for rejected events only.
"""

from __future__ import annotations

import json
import random
import re
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
    return cases + unread_parts_cases(fintech, ecommerce) + mutated_cases()


def unread_parts_cases(fintech: dict[str, Any], ecommerce: dict[str, Any]) -> list[tuple[str, str]]:
    """The format reads only the fields the contract and the columns name and lets the tokenizer skip
    the rest: a syntax error there is still malformed, and a key given twice keeps its last value
    whole, nested ones too. In order, so a value left over from the previous record would show."""
    base = dumps(fintech)[:-1]
    address = ecommerce["shipping_address"]
    two_addresses = dumps({k: v for k, v in ecommerce.items() if k != "shipping_address"})[:-1]
    return [
        ("malformed: bracket in an unread field", base + ', "note": {"x": [1, 2}}'),
        ("malformed: bad escape in an unread string", base + r', "note": "a \q b"}'),
        ("malformed: raw tab in an unread string", base + ', "note": "a\tb"}'),
        ("malformed: missing colon in an unread object", base + ', "note": {"a" 1}}'),
        ("malformed: unterminated unread array", base + ', "note": [1, [2, 3]}'),
        ("valid: deep unread nesting", base + ', "note": ' + "[" * 40 + "{}" + "]" * 40 + "}"),
        ("valid: cart of one after a full cart", changed("ecommerce", cart_items=[{"category": "toys"}])),
        ("valid: shipping address given twice, last wins whole",
         two_addresses + f', "shipping_address": {dumps(address)}, "shipping_address": {{"street": "9 B Rd"}}}}'),
        ("valid: category given twice in an item, last wins",
         changed("ecommerce", cart_items=[{"category": "electronics", "category": "books"}])),
        ("valid: cart given twice, last wins",
         dumps({k: v for k, v in ecommerce.items() if k != "cart_items"})[:-1]
         + ', "cart_items": [{"category": "electronics"}], "cart_items": [{"category": "food"}]}'),
        ("valid: nested values of unread types", changed("ecommerce", cart_items=[[{"category": "electronics"}], None,
                                                                                  {"category": None}, True, 3.5])),
        ("valid: amount a huge integer", changed("gaming", amount=10 ** 30)),
    ]


def mutated_cases(count: int = 60) -> list[tuple[str, str]]:
    """Valid events with one random edit (a character dropped, inserted or swapped, ASCII only):
    mostly malformed, some still valid or broken in another way, whatever Python's decoder says."""
    rng = random.Random(11)
    alphabet = '{}[],:" \\0123456789.-eE+tfnaxyz'
    cases = []
    for i in range(count):
        domain = events.DOMAINS[i % len(events.DOMAINS)]
        text = dumps(valid(domain, index=i, seed=i))
        at = rng.randrange(len(text))
        edit = rng.choice(("drop", "insert", "swap"))
        if edit == "drop":
            text = text[:at] + text[at + 1:]
        elif edit == "insert":
            text = text[:at] + rng.choice(alphabet) + text[at:]
        else:
            other = rng.randrange(len(text) - 1)
            other += other >= at  # another position than at, so the swap edits something
            low, high = sorted((at, other))
            text = text[:low] + text[high] + text[low + 1:high] + text[low] + text[high + 1:]
            edit = f"swap with {other}"
        cases.append((f"mutated {i}: {edit} at {at}", text))
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


def publish_corpus(settings: config.Settings, topic: str) -> None:
    """The corpus into a one-partition topic, in order, so each record's offset is its index."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    for _, payload in CORPUS:
        producer.produce(topic, value=None if payload is None else payload.encode())
    assert producer.flush(30) == 0


def corpus_table_ddl(settings: config.Settings, topic: str) -> str:
    return f"""
CREATE TABLE corpus ({contract_sql.source_columns_sql()},
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{settings.kafka_bootstrap}',
  'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
  {contract_sql.format_options_sql()}
)"""


COLUMNS = len(event_columns.NAMES)


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """A table environment as the job builds it, and the corpus topic, published once."""
    import os
    import uuid

    from streaming import detection_job

    settings = config.load()
    os.environ.setdefault("FLINK_LOG_DIR", str(tmp_path_factory.mktemp("flink-log")))
    os.environ.setdefault("JVM_ARGS", "-Xmx512m")
    topic = f"pa.test.format.{uuid.uuid4().hex[:8]}"
    publish_corpus(settings, topic)
    udf = kafka_broker.udf_jar(settings).resolve().as_uri()
    connectors = [p.resolve().as_uri() for p in sorted(kafka_broker.jar_folder(settings, "flink").glob("*.jar"))]
    options = {"pipeline.jars": ";".join([*connectors, udf]), "parallelism.default": "1"}
    t_env = detection_job.table_environment(udf, options)
    try:
        yield t_env, topic
    finally:
        kafka_broker.delete_topics(settings, re.escape(topic))


@pytest.fixture(scope="module")
def jvm_rows(corpus_env: tuple[Any, str]) -> dict[int, tuple[Any, ...]]:
    """Per corpus index: (event_time, reject_reason, the typed columns..., payload)."""
    t_env, topic = corpus_env
    t_env.execute_sql(corpus_table_ddl(config.load(), topic))
    query = (f"SELECT kafka_offset, contract_time, {', '.join(contract_sql.output_columns())}, payload "
             "FROM corpus")
    with t_env.execute_sql(query).collect() as results:
        return {row[0]: tuple(row)[1:] for row in results}


def test_a_table_with_other_columns_is_refused_with_the_fix(corpus_env: tuple[Any, str]) -> None:
    """Columns out of the format's order would be filled with the wrong values: refused at planning."""
    from py4j.protocol import Py4JJavaError

    t_env, topic = corpus_env
    ddl = corpus_table_ddl(config.load(), topic).replace("CREATE TABLE corpus (", "CREATE TABLE swapped (", 1)
    ddl = ddl.replace("`payload` STRING, `reject_reason` STRING", "`reject_reason` STRING, `payload` STRING", 1)
    t_env.execute_sql(ddl)
    with pytest.raises(Py4JJavaError) as refused:
        t_env.execute_sql("SELECT reject_reason FROM swapped").collect().close()
    message = str(refused.value)
    assert "patternalarm-event fills the physical columns (payload STRING, reject_reason STRING" in message
    assert "source_columns_sql()" in message


@pytest.mark.parametrize("field, kind", [("cart_items", "array"), ("shipping_address", "object")])
def test_a_same_value_rule_on_a_whole_value_is_refused_with_the_fix(corpus_env: tuple[Any, str], field: str,
                                                                    kind: str) -> None:
    """The format compares scalars only (it keeps just the parts of an object or array it reads): a
    rule on an array or object would reject every event of its domain, so it is refused at planning."""
    from py4j.protocol import Py4JJavaError

    t_env, topic = corpus_env
    spec = events.contract_spec()
    spec["same_value"] = [{"domain": "ecommerce", "field": field, "other": "actor_id", "reason": "differs"}]
    option = f"'{contract_sql.FORMAT}.contract' = {contract_sql.quote(json.dumps(spec))}"
    ddl = re.sub(rf"'{re.escape(contract_sql.FORMAT)}\.contract' = '(?:[^']|'')*'", lambda _: option,
                 corpus_table_ddl(config.load(), topic).replace("CREATE TABLE corpus (", f"CREATE TABLE rule_{kind} (", 1))
    assert option in ddl
    t_env.execute_sql(ddl)
    with pytest.raises(Py4JJavaError) as refused:
        t_env.execute_sql(f"SELECT reject_reason FROM rule_{kind}").collect().close()
    message = str(refused.value)
    assert f"compares '{field}', a {kind} field of domain ecommerce" in message
    assert "SAME_VALUE_RULES (patternalarm/events.py)" in message


def typed_columns(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(event_columns.NAMES, row[2:2 + COLUMNS], strict=True))


def test_every_corpus_record_is_read_once(jvm_rows: dict[int, tuple[Any, ...]]) -> None:
    assert sorted(jvm_rows) == list(range(len(CORPUS)))


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[label for label, _ in CORPUS])
def test_only_rejected_events_carry_their_payload(jvm_rows: dict[int, tuple[Any, ...]], index: int) -> None:
    _, payload = CORPUS[index]
    expected = None if python_reason(payload) is None else payload
    assert jvm_rows[index][-1] == expected


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
    got = typed_columns(jvm_rows[index])
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
    got = typed_columns(jvm_rows[index])
    assert got["cart_categories"] == "books,electronics"
    assert got["cart_has_electronics"] is True
    assert got["user_id"] == valid("ecommerce")["user_id"]
    assert got["shipping_zip"] == valid("ecommerce")["shipping_address"]["zip"]
