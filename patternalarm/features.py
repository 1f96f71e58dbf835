"""Feature definitions: the model's inputs, defined once for Spark training, Flink and the API.

Each feature is a SQL aggregate over one actor's transactions in a window, written in the subset of
SQL that Spark SQL and Flink SQL both accept, plus an equivalent pure-Python computation the scoring
service runs on the transactions a request carries. Tests run the same rows through all three and
require the same numbers: that is the guard against training/serving skew.

The aggregates read these columns, which each engine prepares from its own input:
``amount`` (DOUBLE), ``event_time`` (TIMESTAMP), ``domain``, ``payment_method``, ``session_sec``
(DOUBLE), ``country_from``, ``country_to``, ``counterparty``, ``device`` (all nullable STRING except
amount, event_time and domain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Mapping, Sequence

SMALL_AMOUNT = 5.0  # card testers and gold farmers probe with amounts under this
LARGE_AMOUNT = 1000.0
SHORT_SESSION_SEC = 60.0
MISSING = -1.0  # what a feature is when its inputs are all absent (e.g. no session lengths)


@dataclass(frozen=True)
class Txn:
    """One transaction reduced to what features read; built by :func:`txn_from_mapping`."""

    amount: float
    event_time: datetime
    domain: str
    payment_method: str | None = None
    session_sec: float | None = None
    country_from: str | None = None
    country_to: str | None = None
    counterparty: str | None = None
    device: str | None = None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(txns: Sequence[Txn], predicate: Callable[[Txn], bool]) -> float:
    return sum(1.0 if predicate(t) else 0.0 for t in txns) / len(txns)


def _distinct(values: Iterable[str | None]) -> float:
    return float(len({v for v in values if v is not None}))


def _pstdev(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _span_sec(txns: Sequence[Txn]) -> float:
    """Whole seconds between first and last event, truncated like SQL TIMESTAMPDIFF."""
    times = [t.event_time for t in txns]
    return float(math.trunc((max(times) - min(times)).total_seconds()))


def _sessions(txns: Sequence[Txn]) -> list[float]:
    return [t.session_sec for t in txns if t.session_sec is not None]


@dataclass(frozen=True)
class Feature:
    name: str
    sql: str  # aggregate over the columns named in the module docstring
    python: Callable[[Sequence[Txn]], float]
    why: str


def _dbl(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE)"


# Literals inside the aggregates are typed DOUBLE on purpose: a bare 1.0 is DECIMAL(2,1) in Spark and
# Flink SQL, and AVG over a DECIMAL rounds (Spark to 5 places: 2/3 -> 0.66667), as does dividing a
# count by one, so the engines would disagree with the Python definitions by up to 1e-5.
ONE, ZERO, SIXTY = _dbl("1"), _dbl("0"), _dbl("60")


FEATURES: tuple[Feature, ...] = (
    Feature("txn_count", _dbl("COUNT(*)"), lambda t: float(len(t)), "bursts of activity"),
    Feature("amount_sum", _dbl("SUM(amount)"), lambda t: float(sum(x.amount for x in t)), "volume moved"),
    Feature("amount_mean", _dbl("AVG(amount)"), lambda t: sum(x.amount for x in t) / len(t), "typical size"),
    Feature("amount_max", _dbl("MAX(amount)"), lambda t: max(x.amount for x in t), "largest single payment"),
    Feature("amount_min", _dbl("MIN(amount)"), lambda t: min(x.amount for x in t), "probing payments"),
    # Not STDDEV_POP: Flink computes it as sqrt(E[x^2] - E[x]^2), which cancels to a tiny negative
    # for identical amounts (a flatlined sensor) and returns NaN; the clamp gives 0 as Spark and
    # Python do.
    Feature("amount_std", _dbl(f"SQRT(GREATEST(VAR_POP(amount), {ZERO}))"), lambda t: _pstdev([x.amount for x in t]),
            "uniform amounts are scripted"),
    Feature("small_amount_share",
            _dbl(f"AVG(CASE WHEN amount < {SMALL_AMOUNT} THEN {ONE} ELSE {ZERO} END)"),
            lambda t: _share(t, lambda x: x.amount < SMALL_AMOUNT), "card testing, gold farming"),
    Feature("large_amount_share",
            _dbl(f"AVG(CASE WHEN amount >= {LARGE_AMOUNT} THEN {ONE} ELSE {ZERO} END)"),
            lambda t: _share(t, lambda x: x.amount >= LARGE_AMOUNT), "structuring, laundering"),
    Feature("distinct_counterparties", _dbl("COUNT(DISTINCT counterparty)"),
            lambda t: _distinct(x.counterparty for x in t), "fan-out to mules"),
    Feature("distinct_devices", _dbl("COUNT(DISTINCT device)"),
            lambda t: _distinct(x.device for x in t), "account takeover"),
    Feature("distinct_countries", _dbl("COUNT(DISTINCT country_to)"),
            lambda t: _distinct(x.country_to for x in t), "geographic spread"),
    Feature("distinct_payment_methods", _dbl("COUNT(DISTINCT payment_method)"),
            lambda t: _distinct(x.payment_method for x in t), "cycling stolen instruments"),
    Feature("cross_border_share",
            _dbl("AVG(CASE WHEN country_from IS NOT NULL AND country_to IS NOT NULL "
                 f"AND country_from <> country_to THEN {ONE} ELSE {ZERO} END)"),
            lambda t: _share(t, lambda x: x.country_from is not None and x.country_to is not None
                             and x.country_from != x.country_to), "laundering routes"),
    Feature("session_mean", _dbl(f"COALESCE(AVG(session_sec), {MISSING})"),
            lambda t: _mean(_sessions(t)) if _sessions(t) else MISSING, "bots have short sessions"),
    Feature("short_session_share",
            _dbl(f"AVG(CASE WHEN session_sec IS NOT NULL AND session_sec < {SHORT_SESSION_SEC} "
                 f"THEN {ONE} ELSE {ZERO} END)"),
            lambda t: _share(t, lambda x: x.session_sec is not None and x.session_sec < SHORT_SESSION_SEC),
            "scripted checkouts"),
    Feature("window_span_sec", _dbl("TIMESTAMPDIFF(SECOND, MIN(event_time), MAX(event_time))"),
            _span_sec, "how compressed the activity is"),
    Feature("velocity_per_min",
            _dbl(f"{_dbl('COUNT(*)')} / ({_dbl('TIMESTAMPDIFF(SECOND, MIN(event_time), MAX(event_time))')}"
                 f" / {SIXTY} + {ONE})"),
            lambda t: len(t) / (_span_sec(t) / 60.0 + 1.0), "events per minute of activity"),
    *(
        Feature(f"domain_{d}", _dbl(f"MAX(CASE WHEN domain = '{d}' THEN {ONE} ELSE {ZERO} END)"),
                (lambda dom: lambda t: 1.0 if any(x.domain == dom for x in t) else 0.0)(d),
                "patterns differ by domain")
        for d in ("fintech", "ecommerce", "gaming", "iot")
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)


def compute(txns: Sequence[Txn]) -> list[float]:
    """Feature vector in FEATURE_NAMES order; one actor's transactions in one window."""
    if not txns:
        raise ValueError("features need at least one transaction")
    return [float(f.python(txns)) for f in FEATURES]


def sql_select_list() -> str:
    """`expr AS name, ...` for a GROUP BY over the prepared columns (Spark SQL and Flink SQL)."""
    return ",\n  ".join(f"{f.sql} AS {f.name}" for f in FEATURES)


# Which contract field feeds each prepared column, per domain. Used by the generator's labelled
# data, the Spark job and the Flink job when they prepare rows for the aggregates above.
COLUMN_SOURCES: dict[str, dict[str, str]] = {
    "fintech": {"counterparty": "account_to", "payment_method": "transfer_type",
                "country_from": "country_from", "country_to": "country_to"},
    "ecommerce": {"payment_method": "payment_method", "session_sec": "session_duration_sec",
                  "device": "device_fingerprint", "country_to": "shipping_address.country"},
    "gaming": {"payment_method": "payment_method", "session_sec": "session_length_sec",
               "device": "device_id", "counterparty": "game_id"},
    "iot": {"device": "device_id", "counterparty": "metric"},
}


def _lookup(event: Mapping[str, object], dotted: str) -> object:
    value: object = event
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def txn_from_event(event: Mapping[str, object], event_time: datetime) -> Txn:
    """A contract event as a Txn; IoT readings use their value as the amount.

    A text column takes JSON strings only (a number or an object nested in an unvalidated part, such
    as shipping_address.country, counts as absent), as the Flink job's event format does.
    """
    domain = str(event["domain"])
    amount_field = "value" if domain == "iot" else "amount"
    cols = {col: _lookup(event, src) for col, src in COLUMN_SOURCES[domain].items()}
    session = cols.pop("session_sec", None)
    return Txn(amount=float(event[amount_field]), event_time=event_time, domain=domain,
               session_sec=None if session is None else float(session),  # type: ignore[arg-type]
               **{k: (v if isinstance(v, str) else None) for k, v in cols.items()})
