"""Flink SQL that applies the event contract (patternalarm/events.py) and the job's typed columns
(streaming/event_columns.py), so the job validates and reads events exactly as the contract says.

Validation and projection are the Kafka source's format, ``patternalarm-event`` (streaming/udf,
EventFormatFactory.java): it parses each payload once as the source reads it and gets the contract and
the column list as JSON literals written here, so the contract is defined in Python only. It replaced
a table function over the raw payload (which needed a second parse for the watermark), which had
replaced a generated SQL CASE of ~400 JSON_QUERY/JSON_VALUE calls, each re-parsing the payload.

Everything here is pure string building: unit-testable without a cluster.
"""

from __future__ import annotations

import json

from patternalarm import events as contract
from streaming import event_columns

# The Kafka source's format (streaming/udf, EventFormatFactory.java): parses, validates and projects
# each event as the source reads it.
FORMAT = "patternalarm-event"
# The physical columns the format fills before the typed event columns: the payload (rejected
# events only), the contract's reason (NULL for a valid event) and the contract timestamp (NULL
# when the contract refuses it), which the source's event time and watermark read.
FORMAT_COLUMNS = (("payload", "STRING"), ("reject_reason", "STRING"), ("contract_time", "TIMESTAMP(3)"))
# The patterns' look-back to an actor's previous event (LAG for a ROWS frame: PreviousTime.java says why).
PREVIOUS_TIME_FUNCTION = "previous_time"
FUNCTIONS = {PREVIOUS_TIME_FUNCTION: "io.patternalarm.udf.PreviousTime"}


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


def source_columns_sql() -> str:
    """The physical columns of a table in the event format, in the order the format fills them."""
    columns = [*FORMAT_COLUMNS, *((c.name, c.type) for c in event_columns.COLUMNS)]
    return ", ".join(f"`{name}` {sql_type}" for name, sql_type in columns)


def format_options_sql() -> str:
    """The WITH options that select the event format, with the contract and the column list as
    literals (the contract is defined in Python only)."""
    return (f"'format' = '{FORMAT}', "
            f"'{FORMAT}.contract' = {quote(_compact(contract.contract_spec()))}, "
            f"'{FORMAT}.columns' = {quote(event_columns.columns_json())}")


def output_columns() -> tuple[str, ...]:
    """The verdict and typed columns every statement reads: the reason first, then the event columns."""
    return ("reject_reason", *event_columns.NAMES)


def event_view_columns() -> str:
    """The select list of the `events` view: typed columns plus the source's event time, and its
    processing time for the look-backs that run in arrival order (docs/patterns.md)."""
    names = list(event_columns.NAMES)
    names.insert(names.index("actor_id") + 1, "event_time")
    return ", ".join([*names, "proc_time"])
