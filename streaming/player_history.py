"""The gaming players' look-backs (new device, new IP, running count and sum, first seen) in one
keyed JVM function, io.patternalarm.history.PlayerHistory in streaming/udf, read by
account_takeover and chargeback_fraud as the ``gaming_history`` view.

Why not OVER windows: Flink SQL computes one OVER window per partitioning, so these facts took four
operators, each behind its own keyed exchange (every gaming event serialized and shipped four times)
and each state access paying the state TTL's incremental cleanup; PlayerHistory.java says what it
keeps and why its results are the windows' (docs/patterns.md, "History in arrival order").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streaming import patterns
from streaming.event_stream import DOMAIN_FILTER_COLUMNS, EventStream, as_table, column_positions, internal_type

if TYPE_CHECKING:
    from pyflink.table import StreamTableEnvironment, Table

VIEW = "gaming_history"
# The patterns whose SQL reads the view: the function runs only when one of them is enabled.
READERS = ("account_takeover", "chargeback_fraud")

# The columns the projection reads (PlayerHistory.PURCHASE_FIELDS, in order), with their types.
PURCHASE_COLUMNS = {"actor_id": "STRING", "transaction_id": "STRING", "amount": "DOUBLE", "device": "STRING",
                    "ip_address": "STRING", "payment_method": "STRING", "event_time": "TIMESTAMP(3)"}
# What the function adds (PlayerHistory.HISTORY_FIELDS, in order).
HISTORY_COLUMNS = {"new_device": "BOOLEAN", "new_ip": "BOOLEAN", "purchases": "BIGINT", "spent": "DOUBLE",
                   "first_seen": "TIMESTAMP(3)"}


def needed() -> bool:
    """Whether an enabled pattern reads the view (PA_PATTERNS may leave both readers out)."""
    return any(p in READERS for p in patterns.enabled())


def _row_type(columns: dict[str, str]):
    from pyflink.table import DataTypes

    types = {"STRING": DataTypes.STRING(), "DOUBLE": DataTypes.DOUBLE(), "BOOLEAN": DataTypes.BOOLEAN(),
             "BIGINT": DataTypes.BIGINT(), "TIMESTAMP(3)": DataTypes.TIMESTAMP(3)}
    return DataTypes.ROW([DataTypes.FIELD(name, types[kind]) for name, kind in columns.items()])


def attach(t_env: "StreamTableEnvironment", events: EventStream, ttl_days: int) -> "Table":
    """The valid gaming events projected to PURCHASE_COLUMNS, keyed by player, with the history
    columns; as a Table whose event_time is the rowtime (the source's watermarks)."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    history = jvm.io.patternalarm.history.PlayerHistory
    java_fields = [*history.PURCHASE_FIELDS, *history.HISTORY_FIELDS]
    if java_fields != [*PURCHASE_COLUMNS, *HISTORY_COLUMNS]:
        raise ValueError(f"PlayerHistory.java has the fields {java_fields}, streaming/player_history.py "
                         f"{[*PURCHASE_COLUMNS, *HISTORY_COLUMNS]}: keep the two in step")
    reject_reason, domain = column_positions(events.names, events.types, DOMAIN_FILTER_COLUMNS,
                                             "PlayerHistory.Purchases")
    positions = column_positions(events.names, events.types, PURCHASE_COLUMNS, "PlayerHistory.Purchases")
    j_positions = get_gateway().new_array(jvm.int, len(positions))
    for i, position in enumerate(positions):
        j_positions[i] = position
    purchases = (events.j_stream
                 .flatMap(history.Purchases(reject_reason, domain, j_positions), internal_type(_row_type(PURCHASE_COLUMNS)))
                 .name("gaming purchases").uid("gaming-purchases"))
    with_history = (purchases.keyBy(history.ByPlayer())
                    .process(history(ttl_days), internal_type(_row_type({**PURCHASE_COLUMNS, **HISTORY_COLUMNS})))
                    .name("player history").uid("player-history"))
    return as_table(t_env, with_history, proc_time=False)


def plan_text(ttl_days: int) -> str:
    """What the plan fingerprint must see of this branch: the wiring and the columns."""
    return (f"player history v1: io.patternalarm.history.PlayerHistory keyed by player after Purchases; "
            f"{list(PURCHASE_COLUMNS)} + {list(HISTORY_COLUMNS)}; ttl {ttl_days} d")
