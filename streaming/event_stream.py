"""The parsed events as one DataStream, shared by the JVM functions and, read back, by the SQL.

Why this wiring: a DataStream converted from a Table is translated on its own, so converting the
events view once per consumer would run a Kafka source and a parse per consumer. Here the events are
converted once; the IoT detectors (streaming/iot_detectors.py) and the player history
(streaming/player_history.py) read that stream, and the SQL statements read it back (event_time
stays the rowtime column; its watermark is the source's, SOURCE_WATERMARK()), so every branch shares
one source and one parse. The patterns read it back per domain (:func:`domain_table`), the feature
windows, the dead letters and the throughput whole.

The stream carries Flink SQL's internal rows (RowData), not Row: with the target type bridged to
RowData both conversions are the identity, where Row cost a conversion of every column of every
event each way (a fifth of the job's sampled time, docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from pyflink.table import StreamTableEnvironment, Table


@dataclass(frozen=True)
class EventStream:
    """The converted events (a Java DataStream<RowData>) with their column names and types."""
    j_stream: Any
    names: list[str]
    types: list[str]


def column_positions(names: list[str], types: list[str], wanted: Mapping[str, str], reader: str) -> list[int]:
    """The positions of ``wanted`` (column -> the type ``reader`` reads it as), in that order; a
    missing column or another type is an error here, not a wrong field read in the JVM."""
    positions = []
    for column, want in wanted.items():
        if column not in names:
            raise ValueError(f"the checked events have no column {column!r}: {reader} reads it; "
                             "keep streaming/event_columns.py and its column list in step")
        position = names.index(column)
        # a time attribute prints as TIMESTAMP(3) *ROWTIME*; nullability as NOT NULL
        if types[position].split(" ")[0] != want:
            raise ValueError(f"column {column!r} is {types[position]}, {reader} reads it as {want}")
        positions.append(position)
    return positions


def to_stream(t_env: "StreamTableEnvironment", events_checked: "Table") -> EventStream:
    """Convert the checked events (events_checked_sql's table) to a DataStream of RowData."""
    from pyflink.java_gateway import get_gateway
    from pyflink.table.expressions import col

    jvm = get_gateway().jvm
    # proc_time cannot cross the conversion as a time attribute; it is declared again on the way back
    converted = events_checked.drop_columns(col("proc_time"))
    schema = converted._j_table.getResolvedSchema()
    names = list(schema.getColumnNames())
    types = [str(schema.getColumnDataTypes().get(i)) for i in range(len(names))]
    internal = schema.toPhysicalRowDataType().bridgedTo(jvm.org.apache.flink.table.data.RowData._java_lang_class)
    return EventStream(t_env._j_tenv.toDataStream(converted._j_table, internal), names, types)


def as_table(t_env: "StreamTableEnvironment", j_stream: Any, proc_time: bool = True) -> "Table":
    """A RowData stream with an `event_time` column back as a Table: event_time the rowtime with the
    stream's own watermarks, and a processing-time column `proc_time` if asked."""
    from pyflink.datastream import DataStream
    from pyflink.table import Schema

    schema = Schema.new_builder()
    if proc_time:
        schema = schema.column_by_expression("proc_time", "PROCTIME()")
    return t_env.from_data_stream(DataStream(j_stream), schema.watermark("event_time", "SOURCE_WATERMARK()").build())


# The columns a JVM branch reading one domain tests (DomainEvents.isValidOf), with their types.
DOMAIN_FILTER_COLUMNS = {"reject_reason": "STRING", "domain": "STRING"}


def domain_table(t_env: "StreamTableEnvironment", events: EventStream, domain: str) -> "Table":
    """The valid events of one domain as a Table (event_time the rowtime, proc_time declared).

    Why: each SQL statement over the shared events table gets its own Calc over every event, which
    copies the string columns its expressions read before its WHERE runs, so a statement about one
    domain paid for all four. Filtered here once per domain (io.patternalarm.udf.DomainEvents, a
    string compare in place), a domain's statements see only its rows."""
    from pyflink.java_gateway import get_gateway

    reject_reason, domain_column = column_positions(events.names, events.types, DOMAIN_FILTER_COLUMNS,
                                                    "DomainEvents.java")
    kept = (events.j_stream
            .filter(get_gateway().jvm.io.patternalarm.udf.DomainEvents(reject_reason, domain_column, domain))
            .name(f"{domain} events").uid(f"events-{domain}"))
    return as_table(t_env, kept)


def plan_text(domains: list[str]) -> str:
    """What the plan fingerprint must see of the wiring: the domain tables built."""
    return f"domain tables v1 (io.patternalarm.udf.DomainEvents after the conversion): {domains}"


def internal_type(row_type: Any) -> Any:
    """Flink SQL's TypeInformation for RowData of a PyFlink ROW DataType: what a JVM function
    emitting RowData declares as its output type."""
    from pyflink.java_gateway import get_gateway
    from pyflink.table.types import _to_java_data_type

    jvm = get_gateway().jvm
    return jvm.org.apache.flink.table.runtime.typeutils.InternalTypeInfo.of(
        _to_java_data_type(row_type).getLogicalType())
