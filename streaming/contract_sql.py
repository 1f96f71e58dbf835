"""Flink SQL that applies the event contract (patternalarm/events.py) and the job's typed columns
(streaming/event_columns.py), so the job validates and reads events exactly as the contract says.

Validation and projection are one JVM table function, ``parse_event`` (streaming/udf): it parses each
payload once and gets the contract and the column list as JSON literals written here, so the contract
is defined in Python only. It replaced a generated SQL CASE of ~400 JSON_QUERY/JSON_VALUE calls, each
re-parsing the payload, which the planner also copied into every consumer of the validated stream.

Everything here is pure string building: unit-testable without a cluster.
"""

from __future__ import annotations

import json

from patternalarm import events as contract
from streaming import event_columns

FUNCTION_NAME = "parse_event"
# The event time of the source's watermark (a watermark can only be declared in the source DDL, where
# Flink evaluates it twice per event): a JVM scalar that only tokenizes the payload's top level.
EVENT_TIME_FUNCTION = "event_time_of"
# The patterns' look-back to an actor's previous event (LAG for a ROWS frame: PreviousTime.java says why).
PREVIOUS_TIME_FUNCTION = "previous_time"
FUNCTIONS = {FUNCTION_NAME: "io.patternalarm.udf.ParseEvent", EVENT_TIME_FUNCTION: "io.patternalarm.udf.EventTime",
             PREVIOUS_TIME_FUNCTION: "io.patternalarm.udf.PreviousTime"}


def quote(text: str) -> str:
    """A SQL string literal (quotes doubled; Flink SQL has no backslash escapes)."""
    return "'" + text.replace("'", "''") + "'"


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def create_functions_sql(jar_uri: str) -> list[str]:
    """Register the UDF jar's functions. `USING JAR` puts the jar on the planner's class loader and ships
    it with the job (the client's pre-compilation needs more: detection_job.table_environment)."""
    return [f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{cls}' LANGUAGE JAVA USING JAR {quote(jar_uri)}"
            for name, cls in FUNCTIONS.items()]


def event_time_sql(payload: str = "payload") -> str:
    """The contract timestamp as TIMESTAMP(3), NULL when the payload has none the contract accepts."""
    return f"{EVENT_TIME_FUNCTION}({payload}, {quote(_compact(contract.contract_spec()['timestamp']))})"


def output_columns() -> tuple[str, ...]:
    """parse_event's output columns, in order: the reason first, then the typed event columns."""
    return ("reject_reason", *event_columns.NAMES)


def parse_event_call(payload: str = "payload") -> str:
    """The call with its two literals: the contract spec and the column list."""
    return (f"{FUNCTION_NAME}({payload}, {quote(_compact(contract.contract_spec()))}, "
            f"{quote(event_columns.columns_json())})")


def lateral_parse_event(payload: str = "payload", alias: str = "p") -> str:
    """`LATERAL TABLE(parse_event(...)) AS p(reject_reason, ...)` to join to the raw events' FROM."""
    return f"LATERAL TABLE({parse_event_call(payload)}) AS {alias}({', '.join(output_columns())})"


def event_view_columns() -> str:
    """The select list of the `events` view: typed columns plus the source's event time, and its
    processing time for the look-backs that run in arrival order (docs/patterns.md)."""
    names = list(event_columns.NAMES)
    names.insert(names.index("actor_id") + 1, "event_time")
    return ", ".join([*names, "proc_time"])
