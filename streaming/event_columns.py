"""The typed columns the detection job reads from each valid event: one definition, two readers.

The detection job's event format (``patternalarm-event``, streaming/udf) receives :func:`columns_spec` as a JSON literal
and fills these columns while it parses and validates the payload, once per event. :func:`extract` is
the same rule in Python: the reference the parity test holds the JVM to.

A source is a path into the event per domain (``"*"``: every domain): dot-separated object keys, and
``name[]`` to take each element of an array. A domain without a source gets NULL. Values keep their
strict JSON type: a STRING column takes JSON strings only and a DOUBLE column JSON numbers only
(anything else is NULL). Two operations read arrays: ``join`` glues the strings found with ``arg``
(empty string for none), ``contains`` says whether one of them equals ``arg``.

The feature columns (features.py's module docstring) come from features.COLUMN_SOURCES, so the job
prepares them exactly as the Spark job and the scoring service do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from patternalarm.events import DOMAINS
from patternalarm.features import COLUMN_SOURCES

STRING, DOUBLE, BOOLEAN = "STRING", "DOUBLE", "BOOLEAN"
ALL = "*"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # STRING, DOUBLE or BOOLEAN (the Flink SQL type of the output column)
    sources: Mapping[str, str]  # domain (or "*") -> path
    op: str = "value"  # value | join | contains
    arg: str | None = None
    why: str = field(default="", compare=False)

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "sources": dict(self.sources)}
        if self.op != "value":
            out.update(op=self.op, arg=self.arg)
        return out


# Types of the feature columns features.py names; the rest are STRING.
_FEATURE_TYPES = {"session_sec": DOUBLE}


def _feature_columns() -> list[Column]:
    names: list[str] = []
    for sources in COLUMN_SOURCES.values():
        names += [n for n in sources if n not in names]
    return [Column(n, _FEATURE_TYPES.get(n, STRING),
                   {d: COLUMN_SOURCES[d][n] for d in DOMAINS if n in COLUMN_SOURCES.get(d, {})},
                   why="feature input (features.COLUMN_SOURCES)")
            for n in names]


COLUMNS: tuple[Column, ...] = (
    Column("transaction_id", STRING, {ALL: "transaction_id"}, why="alert ids and evidence"),
    Column("domain", STRING, {ALL: "domain"}),
    Column("actor_id", STRING, {ALL: "actor_id"}, why="partition key of patterns and windows"),
    Column("amount", DOUBLE, {"fintech": "amount", "ecommerce": "amount", "gaming": "amount", "iot": "value"},
           why="IoT readings use their value as the amount, like features.txn_from_event"),
    *_feature_columns(),
    Column("ip_address", STRING, {ALL: "ip_address"}),
    Column("test_id", STRING, {ALL: "test_id"}, why="load-test runs"),
    # for the coming patterns
    Column("user_id", STRING, {"ecommerce": "user_id"}),
    Column("account_from", STRING, {"fintech": "account_from"}),
    Column("account_to", STRING, {"fintech": "account_to"}),
    Column("transfer_type", STRING, {"fintech": "transfer_type"}),
    Column("item_type", STRING, {"gaming": "item_type"}),
    Column("shipping_street", STRING, {"ecommerce": "shipping_address.street"}),
    Column("shipping_zip", STRING, {"ecommerce": "shipping_address.zip"}),
    Column("cart_categories", STRING, {"ecommerce": "cart_items[].category"}, op="join", arg=","),
    Column("cart_has_electronics", BOOLEAN, {"ecommerce": "cart_items[].category"}, op="contains",
           arg="electronics"),
)

NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def columns_spec() -> list[dict[str, Any]]:
    return [c.spec() for c in COLUMNS]


def columns_json() -> str:
    return json.dumps(columns_spec(), separators=(",", ":"))


def _walk(value: Any, parts: list[str]) -> list[Any]:
    """Every value the path reaches (a path without `[]` reaches at most one)."""
    if not parts:
        return [value]
    head, rest = parts[0], parts[1:]
    many = head.endswith("[]")
    key = head[:-2] if many else head
    if not isinstance(value, Mapping) or value.get(key) is None:
        return []
    child = value[key]
    if not many:
        return _walk(child, rest)
    if not isinstance(child, list):
        return []
    return [found for item in child for found in _walk(item, rest)]


def _typed(value: Any, sql_type: str) -> Any:
    if sql_type == STRING:
        return value if isinstance(value, str) else None
    if sql_type == DOUBLE:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else None
    return value if isinstance(value, bool) else None


def extract(event: Mapping[str, Any], column: Column) -> Any:
    """The column's value for one valid event: the rule the event format applies in the JVM."""
    path = column.sources.get(str(event["domain"]), column.sources.get(ALL))
    if path is None:
        return None
    found = _walk(event, path.split("."))
    if column.op == "join":
        return (column.arg or "").join(v for v in found if isinstance(v, str))
    if column.op == "contains":
        return any(isinstance(v, str) and v == column.arg for v in found)
    return _typed(found[0], column.type) if found else None
