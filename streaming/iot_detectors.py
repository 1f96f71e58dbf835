"""The IoT detectors (spike, flatline, drift, dropout): thresholds here, logic in the JVM.

The four run in one keyed process function per device, io.patternalarm.iot.IotDetector in
streaming/udf (docs/patterns.md says why: dropout needs event-time timers, which Flink SQL 1.20 does
not have, and the other three share the device's window of readings). This module declares their
thresholds, reads their ``PA_RULE_<PATTERN>_<NAME>`` overrides exactly as the SQL patterns do, and
wires the function into the job's one parsed event stream (:func:`attach`).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyflink.table import StreamTableEnvironment, Table

Threshold = float | int | str

# pattern -> threshold -> default. Severity is a threshold too: an operator may raise or lower it.
DETECTORS: dict[str, dict[str, Threshold]] = {
    "spike": {"window": 100, "min_readings": 30, "robust_sds": 6.0, "severity": "MEDIUM"},
    "flatline": {"min_readings": 30, "severity": "HIGH"},
    "drift": {"min_sds": 3.0, "min_minutes": 10.0, "calm_sds": 1.0, "recent_readings": 10, "severity": "MEDIUM"},
    "dropout": {"interval_factor": 5.0, "min_readings": 20, "severity": "HIGH"},
}
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
DETECTOR_CLASS = "io.patternalarm.iot.IotDetector"


def enabled() -> list[str]:
    """The IoT detectors that PA_PATTERNS selects (all when it is unset or names none of them...
    a PA_PATTERNS naming only SQL patterns turns the IoT detectors off)."""
    chosen = os.environ.get("PA_PATTERNS")
    if not chosen:
        return sorted(DETECTORS)
    wanted = {n.strip() for n in chosen.split(",")}
    return sorted(p for p in DETECTORS if p in wanted)


def _typed(env: str, raw: str, default: Threshold) -> Threshold:
    if isinstance(default, str):
        if raw.upper() not in SEVERITIES:
            raise ValueError(f"{env}={raw!r} is not one of {', '.join(SEVERITIES)}")
        return raw.upper()
    try:
        return type(default)(raw)
    except ValueError:
        raise ValueError(f"{env}={raw!r} is not a {type(default).__name__}") from None


def thresholds(pattern: str) -> dict[str, Threshold]:
    """Defaults overridden by PA_RULE_<PATTERN>_<NAME> environment variables."""
    values = dict(DETECTORS[pattern])
    for name, default in values.items():
        env = f"PA_RULE_{pattern.upper()}_{name.upper()}"
        raw = os.environ.get(env)
        if raw:
            values[name] = _typed(env, raw, default)
    return values


def thresholds_json() -> str:
    """What the JVM function receives: every detector's thresholds (a disabled one never fires: its
    alerts are filtered out in SQL, so its state is the same and a checkpoint stays restorable)."""
    return json.dumps({p: thresholds(p) for p in sorted(DETECTORS)}, sort_keys=True, separators=(",", ":"))


# The columns the IoT flatMap reads, with the types IotReadings.java reads them as.
READING_COLUMNS = {"reject_reason": "STRING", "domain": "STRING", "actor_id": "STRING",
                   "transaction_id": "STRING", "amount": "DOUBLE", "event_time": "TIMESTAMP(3)"}


def reading_positions(names: list[str], types: list[str]) -> list[int]:
    """The positions of READING_COLUMNS in the events' row, in IotReadings' argument order; a missing
    column or another type is an error here, not a wrong field read in the JVM."""
    positions = []
    for column, wanted in READING_COLUMNS.items():
        if column not in names:
            raise ValueError(f"the checked events have no column {column!r}: IotReadings.java reads it; "
                             "keep streaming/event_columns.py and READING_COLUMNS in step")
        position = names.index(column)
        # a time attribute prints as TIMESTAMP(3) *ROWTIME*; nullability as NOT NULL
        if types[position].split(" ")[0] != wanted:
            raise ValueError(f"column {column!r} is {types[position]}, IotReadings.java reads it as {wanted}")
        positions.append(position)
    return positions


def attach(t_env: "StreamTableEnvironment", events_checked: "Table") -> tuple["Table", "Table"]:
    """Convert the parsed events to a DataStream once and return (the same events as a Table for the
    SQL statements, the IoT alerts as a Table).

    Why this wiring: a DataStream converted from a Table is translated on its own, so converting the
    events view next to the SQL statements would run a second Kafka source and a second parse. Here
    the SQL statements read the converted stream back (event_time stays the rowtime column; its
    watermark is the source's, SOURCE_WATERMARK()), so both branches share one source and one parse.

    The stream carries Flink SQL's internal rows (RowData), not Row: with the target type bridged to
    RowData both conversions are the identity, where Row cost a conversion of every column of every
    event each way (a fifth of the job's sampled time, docs/performance.md).
    """
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway
    from pyflink.table import Schema
    from pyflink.table.expressions import col

    jvm = get_gateway().jvm
    # proc_time cannot cross the conversion as a time attribute; it is declared again on the way back
    converted = events_checked.drop_columns(col("proc_time"))
    schema = converted._j_table.getResolvedSchema()
    names = list(schema.getColumnNames())
    types = [str(schema.getColumnDataTypes().get(i)) for i in range(len(names))]
    internal = schema.toPhysicalRowDataType().bridgedTo(jvm.org.apache.flink.table.data.RowData._java_lang_class)
    stream = DataStream(t_env._j_tenv.toDataStream(converted._j_table, internal))
    iot = jvm.io.patternalarm.iot
    readings = (stream._j_data_stream
                .flatMap(iot.IotReadings(*reading_positions(names, types)),
                         jvm.org.apache.flink.api.common.typeinfo.TypeInformation.of(iot.IotReading().getClass()))
                .name("iot readings").uid("iot-readings"))
    alerts = (readings.keyBy(iot.IotReadings.ByDevice())
              .process(iot.IotDetector(thresholds_json()), iot.IotDetector.alertType())
              .name("iot detectors").uid("iot-detectors"))
    events = t_env.from_data_stream(stream, Schema.new_builder()
                                    .column_by_expression("proc_time", "PROCTIME()")
                                    .watermark("event_time", "SOURCE_WATERMARK()")
                                    .build())
    return events, t_env.from_data_stream(DataStream(alerts))


def alerts_select(view: str = "iot_alerts") -> str:
    """The IoT alerts in the alert columns' types, only the enabled detectors."""
    chosen = ", ".join(f"'{p}'" for p in enabled()) or "''"
    return f"""SELECT alert_id, `pattern`, domain, actor_id, severity,
  CAST(first_event_time AS TIMESTAMP(3)) AS first_event_time, CAST(event_time AS TIMESTAMP(3)) AS event_time,
  transaction_ids, `measures`
FROM {view} WHERE `pattern` IN ({chosen})"""


def plan_text() -> str:
    """What the plan fingerprint must see of the IoT branch: the wiring and every threshold."""
    return f"iot wiring v2 (RowData): {DETECTOR_CLASS} keyed by device after IotReadings; {thresholds_json()}"
