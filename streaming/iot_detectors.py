"""The IoT detectors (spike, flatline, drift, dropout): thresholds here, logic in the JVM.

The four run in one keyed process function per device, io.patternalarm.iot.IotDetector in
streaming/udf (docs/patterns.md says why: dropout needs event-time timers, which Flink SQL 1.20 does
not have, and the other three share the device's window of readings). This module declares their
thresholds, reads their ``PA_RULE_<PATTERN>_<NAME>`` overrides exactly as the SQL patterns do, and
wires the function into the job's one parsed event stream (:func:`attach`, streaming/event_stream.py).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from streaming.event_stream import EventStream, column_positions

if TYPE_CHECKING:
    from pyflink.table import StreamTableEnvironment, Table

Threshold = float | int | str

# pattern -> threshold -> default. Severity is a threshold too: an operator may raise or lower it.
DETECTORS: dict[str, dict[str, Threshold]] = {
    # restart_after_intervals: a silence longer than this many usual intervals restarts the window
    # (and the drift reference), 0 never; the default is the span a full window covers.
    "spike": {"window": 100, "min_readings": 30, "robust_sds": 6.0, "restart_after_intervals": 100.0,
              "severity": "MEDIUM"},
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
    """The positions of READING_COLUMNS in the events' row, in IotReadings' argument order."""
    return column_positions(names, types, READING_COLUMNS, "IotReadings.java")


def attach(t_env: "StreamTableEnvironment", events: EventStream) -> "Table":
    """The IoT detectors on the job's one parsed event stream; their alerts as a Table."""
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    iot = jvm.io.patternalarm.iot
    readings = (events.j_stream
                .flatMap(iot.IotReadings(*reading_positions(events.names, events.types)),
                         jvm.org.apache.flink.api.common.typeinfo.TypeInformation.of(iot.IotReading().getClass()))
                .name("iot readings").uid("iot-readings"))
    alerts = (readings.keyBy(iot.IotReadings.ByDevice())
              .process(iot.IotDetector(thresholds_json()), iot.IotDetector.alertType())
              .name("iot detectors").uid("iot-detectors"))
    return t_env.from_data_stream(DataStream(alerts))


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
