"""The event contract: the one definition of what travels on the events topic.

The generator writes it, ``make replay`` checks files against it, and the Flink job validates with a
JVM table function (streaming/udf) that receives :func:`contract_spec` as a JSON literal, so the JVM
applies these very definitions; tests run one corpus through both validators. A field is added here or
nowhere. See docs/event-contract.md for the prose version.

One JSON object per Kafka message, key = ``actor_id``, snake_case. Ground truth (injected pattern,
fraud flag) never travels with an event: the generator records it separately.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import MINYEAR, datetime, timezone
from typing import Any, Mapping

DOMAINS = ("fintech", "ecommerce", "gaming", "iot")

STRING, NUMBER, ARRAY, OBJECT = "string", "number", "array", "object"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # one of STRING, NUMBER, ARRAY, OBJECT
    required: bool = True


COMMON_FIELDS: tuple[Field, ...] = (
    Field("transaction_id", STRING),
    Field("domain", STRING),
    Field("actor_id", STRING),
    Field("timestamp", STRING),  # ISO-8601 UTC with milliseconds, e.g. 2026-11-29T06:40:00.123Z
    Field("test_id", STRING, required=False),  # the load-test run that produced the event
    Field("ip_address", STRING, required=False),
)

DOMAIN_FIELDS: dict[str, tuple[Field, ...]] = {
    "gaming": (
        Field("player_id", STRING), Field("game_id", STRING), Field("item_type", STRING),
        Field("item_name", STRING), Field("amount", NUMBER), Field("currency", STRING),
        Field("payment_method", STRING), Field("device_id", STRING), Field("session_length_sec", NUMBER),
    ),
    "fintech": (
        Field("account_from", STRING), Field("account_to", STRING), Field("amount", NUMBER),
        Field("currency", STRING), Field("transfer_type", STRING), Field("country_from", STRING),
        Field("country_to", STRING), Field("purpose", STRING),
    ),
    "ecommerce": (
        Field("user_id", STRING), Field("cart_items", ARRAY), Field("amount", NUMBER),
        Field("currency", STRING), Field("payment_method", STRING), Field("shipping_address", OBJECT),
        Field("billing_address", OBJECT), Field("device_fingerprint", STRING),
        Field("session_duration_sec", NUMBER),
    ),
    "iot": (
        Field("device_id", STRING), Field("site_id", STRING), Field("metric", STRING),
        Field("value", NUMBER), Field("unit", STRING),
    ),
}

ADDRESS_FIELDS = ("street", "city", "state", "zip", "country")
CART_ITEM_FIELDS = ("product_id", "category", "price", "quantity")

# The only timestamp form, as a fixed-width layout: each letter stands for one ASCII digit of a part,
# any other character for itself. A timestamp must also name a real moment (month 1-12, a day the
# month has, hour < 24, minute and second < 60, year >= MINYEAR). Not strptime, which also takes
# one-digit fields, a lowercase 't' and non-ASCII digits. The JVM validator checks the same layout
# character by character (a regex there cost a tenth of the job's CPU).
TIMESTAMP_LAYOUT = "YYYY-MM-DDThh:mm:ss.fffZ"
TIMESTAMP_PARTS = {"Y": "year", "M": "month", "D": "day", "h": "hour", "m": "minute", "s": "second",
                   "f": "millisecond"}


def _layout_regex(layout: str) -> str:
    """The layout as a regex: a group of ASCII digits per run of one part's letter, the rest literal."""
    runs = [(ch, len(list(group))) for ch, group in itertools.groupby(layout)]
    return "".join(f"([0-9]{{{n}}})" if ch in TIMESTAMP_PARTS else re.escape(ch * n) for ch, n in runs)


TIMESTAMP_PATTERN = _layout_regex(TIMESTAMP_LAYOUT)
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
_TIMESTAMP_GROUPS = [TIMESTAMP_PARTS[ch] for ch, _ in itertools.groupby(TIMESTAMP_LAYOUT) if ch in TIMESTAMP_PARTS]

# Rejection reasons. They carry no values so the JVM validator reproduces the very same text (tests
# compare the two); the dead-letter record keeps the original payload beside the reason.
MALFORMED_JSON = "malformed JSON"
NOT_AN_OBJECT = "event is not a JSON object"
UNKNOWN_DOMAIN = f"unknown domain; expected one of {', '.join(DOMAINS)}"
BAD_TIMESTAMP = "timestamp is not ISO-8601 UTC with milliseconds, e.g. 2026-01-31T12:00:00.000Z"
IOT_DEVICE_MISMATCH = "iot events must have device_id equal to actor_id"

# Checked last, in this order: (domain, field, other field that must hold the same string, reason).
SAME_VALUE_RULES: tuple[tuple[str, str, str, str], ...] = (
    ("iot", "device_id", "actor_id", IOT_DEVICE_MISMATCH),
)


def missing_field(name: str, domain: str) -> str:
    return f"missing required field '{name}' for domain {domain}"


def wrong_kind(name: str, kind: str) -> str:
    return f"field '{name}' must be a {kind}"


class InvalidEvent(ValueError):
    """An event that breaks the contract; ``reason`` is what the dead-letter record carries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with exactly three fractional digits, the contract's only timestamp form."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    match = _TIMESTAMP_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidEvent(BAD_TIMESTAMP)
    part = dict(zip(_TIMESTAMP_GROUPS, map(int, match.groups())))
    try:  # datetime refuses year 0, month 13, Feb 30, hour 24, second 60
        return datetime(part["year"], part["month"], part["day"], part["hour"], part["minute"], part["second"],
                        part["millisecond"] * 1000, tzinfo=timezone.utc)
    except ValueError as exc:
        raise InvalidEvent(BAD_TIMESTAMP) from exc


def _kind_matches(value: Any, kind: str) -> bool:
    if kind == STRING:
        return isinstance(value, str) and value != ""
    if kind == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if kind == ARRAY:
        return isinstance(value, list)
    return isinstance(value, dict)


def fields_for(domain: str) -> tuple[Field, ...]:
    return COMMON_FIELDS + DOMAIN_FIELDS[domain]


def validate(event: Any) -> None:
    """Raise InvalidEvent naming the first broken rule; the JVM validator follows contract_spec(), same order."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(NOT_AN_OBJECT)
    domain = event.get("domain")
    if domain not in DOMAINS:
        raise InvalidEvent(UNKNOWN_DOMAIN)
    for f in fields_for(domain):
        value = event.get(f.name)
        if value is None:
            if f.required:
                raise InvalidEvent(missing_field(f.name, domain))
            continue
        if not _kind_matches(value, f.kind):
            raise InvalidEvent(wrong_kind(f.name, f.kind))
    parse_timestamp(event["timestamp"])
    for rule_domain, field, other, reason in SAME_VALUE_RULES:
        if domain == rule_domain and event[field] != event[other]:
            raise InvalidEvent(reason)


def contract_spec() -> dict[str, Any]:
    """The contract as JSON-ready data for the JVM validator (streaming/udf, the job's event format).

    Everything the validator needs, in the order :func:`validate` checks it, with every reason text
    already produced by this module's own functions, so the JVM never builds a message itself.
    """
    return {
        "malformed_json": MALFORMED_JSON,
        "not_an_object": NOT_AN_OBJECT,
        "unknown_domain": UNKNOWN_DOMAIN,
        "domains": {
            domain: [{"name": f.name, "kind": f.kind, "required": f.required,
                      "missing": missing_field(f.name, domain), "wrong_kind": wrong_kind(f.name, f.kind)}
                     for f in fields_for(domain)]
            for domain in DOMAINS
        },
        "timestamp": {"field": "timestamp", "layout": TIMESTAMP_LAYOUT, "parts": TIMESTAMP_PARTS,
                      "min_year": MINYEAR, "reason": BAD_TIMESTAMP},
        "same_value": [{"domain": d, "field": f, "other": o, "reason": r} for d, f, o, r in SAME_VALUE_RULES],
    }


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # Python accepts NaN/Infinity; JSON (and Flink) do not


def decode(payload: bytes | str) -> dict[str, Any]:
    """Parse and validate one message; InvalidEvent carries the reason for the dead-letter topic."""
    try:
        event = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent(MALFORMED_JSON) from exc
    validate(event)
    return event


def encode(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the wire form on Kafka and in replay files."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
