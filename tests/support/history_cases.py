"""Windows for the history-feature parity tests: the same rows go through Spark, PostgreSQL and
``patternalarm.history_features.reference``. Standard library only (every suite imports it).

Shape: actors a1..a4 over 8 days of minute-aligned windows at ages that straddle every horizon
edge (1 min, 59-61 min, 1 day +/- 1 min, 7 days +/- 1 min); counterparties shared between actors
(m1 by a1, a2, a3; m2 by a1 and a4) and touched by the actor itself; fraud windows whose label is
known when the window ends (ground truth), inside and outside the delayed fraud-rate ranges.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from patternalarm.history_features import HistoryKey, PastWindow

T0 = datetime(2026, 5, 10, 12, 0, tzinfo=timezone.utc)  # the latest windows start here
LABEL_DELAY_MIN = 60

# (actor, minutes before T0, txn_count, amount_sum, counterparties, fraud)
_ROWS = [
    ("a1", 0, 3, 30.5, ("m1", "m2"), False),
    ("a1", 1, 2, 12.25, ("m1",), False),
    ("a1", 59, 1, 7.0, (), True),
    ("a1", 60, 4, 101.0, ("m2",), False),
    ("a1", 61, 2, 3.5, ("m1",), True),
    ("a1", 119, 1, 1.0, (), False),
    ("a1", 121, 5, 500.0, ("m1",), True),
    ("a1", 1439, 1, 9.0, (), False),
    ("a1", 1441, 2, 20.0, ("m2",), True),
    ("a1", 1500, 1, 2.0, (), False),
    ("a1", 10079, 1, 4.0, ("m1",), True),
    ("a1", 10081, 1, 8.0, (), False),
    ("a1", 11600, 3, 33.0, ("m1",), True),
    ("a2", 0, 1, 40.0, ("m1",), False),
    ("a2", 2, 2, 60.0, ("m1",), True),
    ("a2", 62, 1, 10.0, ("m1",), True),
    ("a2", 90, 1, 11.0, ("m1",), False),
    ("a2", 700, 2, 0.5, ("m1",), True),
    ("a2", 3000, 1, 70.0, ("m1",), False),
    ("a3", 5, 6, 6.0, ("m1", "m3"), False),
    ("a3", 65, 1, 1.0, ("m3",), True),
    ("a3", 2000, 1, 1.5, ("m1",), True),
    ("a4", 0, 1, -3.25, ("m2",), False),
    ("a4", 30, 2, 4.0, ("m2",), False),
    ("a4", 75, 1, 1000.0, ("m2",), True),
    ("a4", 9000, 1, 2.0, ("m2",), False),
    ("a5", 0, 1, 5.0, (), False),
]


def windows() -> list[PastWindow]:
    """Every window; a fraud window's label is known at its end (ground truth)."""
    out = []
    for actor, age, count, amount, parties, fraud in _ROWS:
        start = T0 - timedelta(minutes=age)
        out.append(PastWindow(actor, start, float(count), amount, parties,
                              start + timedelta(minutes=1) if fraud else None))
    return out


def keys() -> list[HistoryKey]:
    """Every window as a window to score, with its own counterparties."""
    return [HistoryKey(w.actor_id, w.window_start, w.counterparties) for w in windows()]


def later_windows() -> list[PastWindow]:
    """Windows after T0 (and a fraud label on them): must not change any key above."""
    return [PastWindow("a1", T0 + timedelta(minutes=1), 9.0, 900.0, ("m1", "m2"), T0 + timedelta(minutes=2)),
            PastWindow("a2", T0 + timedelta(minutes=3), 9.0, 999.0, ("m1",), T0 + timedelta(minutes=4)),
            PastWindow("a4", T0 + timedelta(minutes=1), 9.0, 99.0, ("m2",), T0 + timedelta(minutes=2))]
