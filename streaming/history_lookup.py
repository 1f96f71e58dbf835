"""History features of a micro-batch of windows, in ONE PostgreSQL query (the window scorer's).

    from streaming.history_lookup import history_features
    rows = history_features(cursor, [HistoryKey(actor_id, window_start, counterparties), ...])
    # rows[i]: {name: value for name in HISTORY_FEATURE_NAMES}, for windows[i]

The definitions and the SQL are ``patternalarm.history_features`` (one definition, held to the
Python reference and to Spark by tests); this module only binds a batch to it. Reads
``actor_windows`` with its ``fraud_known_at`` labels (migration 010), the counterparty rollups (011,
014), the fraud windows' counterparty rows (018) and the actor's rollups (019); the windows being
scored need not be stored yet (only earlier ones are read). ``label_delay_min`` defaults to
PA_LABEL_DELAY_MIN, which training must share. Cost: streaming/bench_history_lookup.py.
"""

from __future__ import annotations

from typing import Any, Sequence

from patternalarm import config
from patternalarm.history_features import HISTORY_FEATURE_NAMES, HistoryKey, postgres_sql

__all__ = ["HistoryKey", "history_features", "lookup_parameters", "LOOKUP_SQL"]

LOOKUP_SQL = postgres_sql(
    "SELECT k.i, k.actor_id, k.ws FROM unnest(%(actors)s::text[], %(starts)s::timestamptz[]) "
    "WITH ORDINALITY AS k(actor_id, ws, i)",
    "SELECT p.i, p.cp FROM unnest(%(party_keys)s::bigint[], %(parties)s::text[]) AS p(i, cp)")


def lookup_parameters(windows: Sequence[HistoryKey], label_delay_min: int | None = None) -> dict[str, Any]:
    """LOOKUP_SQL's parameters for a batch: the keys as arrays, each counterparty with its key's
    1-based position. ``label_delay_min`` defaults to PA_LABEL_DELAY_MIN."""
    delay = config.load().label_delay_min if label_delay_min is None else label_delay_min
    return {"actors": [w.actor_id for w in windows], "starts": [w.window_start for w in windows],
            "party_keys": [i for i, w in enumerate(windows, start=1) for _ in (w.counterparties or ())],
            "parties": [p for w in windows for p in (w.counterparties or ())], "delay": int(delay)}


def history_features(cursor: Any, windows: Sequence[HistoryKey],
                     label_delay_min: int | None = None) -> list[dict[str, float]]:
    """HISTORY_FEATURE_NAMES for each window, in the order given (psycopg2 cursor, one round trip)."""
    if not windows:
        return []
    cursor.execute(LOOKUP_SQL, lookup_parameters(windows, label_delay_min))
    rows = cursor.fetchall()
    if len(rows) != len(windows):
        raise RuntimeError(f"history query returned {len(rows)} rows for {len(windows)} windows")
    return [dict(zip(HISTORY_FEATURE_NAMES, map(float, row[1:]), strict=True)) for row in rows]
