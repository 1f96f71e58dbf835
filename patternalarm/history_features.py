"""History features: the actor's and its counterparties' earlier windows, defined once.

A window (one actor, one 1-minute event-time window starting at ``ws``) is scored with its own
aggregates (``patternalarm.features``) plus these, read from *earlier* windows only. Three engines
compute them and tests hold them to :func:`reference` (the Python definition below, 1e-9):

* PostgreSQL (:func:`postgres_sql`): the window scorer, per micro-batch, from ``actor_windows`` and
  the labels (streaming/history_lookup.py), and the retrain extraction for windows stored without
  them (spark_jobs/retrain.py);
* Spark window functions (spark_jobs/training_data.py ``add_history``): ``make train`` (generated
  data or a user's labelled history file) and ``make backtest``.

Definitions, per horizon H in :data:`HORIZONS` (1 hour, 1 day, 7 days) and label delay D
(``PA_LABEL_DELAY_MIN``); windows are minute-aligned, so "start in [a, b)" is exact:

* ``actor_txn_count_H``: transactions in the actor's windows starting in [ws - H, ws); 0 when none.
* ``actor_amount_mean_H``: their amount sum / their transactions; MISSING (-1) when none.
* ``actor_fraud_rate_H``: among the actor's windows starting in [ws - D - H, ws - D), the share whose
  fraud label was known by ws - D; MISSING when there are none. The range is shifted by the delay
  (the Fraud Detection Handbook's "delay period") so every horizon sees labels that have had time
  to arrive; a label known later (a verdict given after ws - D) does not count, so nothing after the
  window's start minus D can leak in.
* ``cp_window_count_H``: for each counterparty of the window, the windows of OTHER actors that
  touched it starting in [ws - H, ws); the largest over the window's counterparties (fan-in of a
  mule account, a terminal under attack); 0 without counterparties.
* ``cp_amount_mean_H``: over those windows (all counterparties together) amount sum / transactions;
  MISSING when none. A window's whole amount counts, also what it paid to other counterparties.
* ``cp_fraud_rate_H``: per counterparty, the share of fraud among other actors' windows touching it
  starting in [ws - D - H, ws - D); the largest over the counterparties; MISSING when none has any.

* ``history_coverage_min``: minutes from the earliest window the history store holds (of any
  actor) to ``ws``, capped at the longest horizon (:data:`COVERAGE_CAP_MIN`, 7 days); 0 when the
  store holds no window before ``ws`` (empty, or ``ws`` is its first window). Where the store is
  the ``actor_windows`` table (PostgreSQL) it is ``min(window_start)``, read through an index
  (migration 012); in Spark the earliest window of the data set; in :func:`reference` the earliest
  window given. Only a start before ``ws`` can count, so later windows change nothing.

Why coverage: "no history" means "new actor" only once the store is old enough to have seen the
actor. Training data starts with every actor new (benign new actors crowd its first minutes, while
fraudulent new accounts appear throughout), and so does a freshly started deployment; without this
feature a model learns "no history + large amount = fraud" and flags the fresh stream's ordinary
first windows (issue #5, docs/status.md "Model quality on a fresh stream"). With it, the model can
learn that an empty history means little while the store is young.

Why other actors only: the actor's own history is already in the actor features, and "who else
pays this account / uses this terminal, and how often they turned out fraudulent" is the signal.
Why max over counterparties: one compromised terminal or mule among a window's counterparties is
what matters, an average would dilute it.

Empty history (:data:`EMPTY`): counts 0, means and rates MISSING, the same in every engine. The
scoring service uses it when a request carries no history (``/predict`` with transactions and no
``history``): such an actor is scored as one seen for the first time, which is what training saw
for first windows. A label here is "fraud" (1) or not: after the delay every window counts as
labelled, unlabelled meaning legitimate, as the retrain's unalerted sample assumes.

Standard library only (every virtualenv imports it).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, NamedTuple, Sequence

from patternalarm.features import FEATURE_NAMES, MISSING

HORIZONS: tuple[tuple[str, int], ...] = (("1h", 60), ("1d", 1440), ("7d", 10080))  # (suffix, minutes)
# The stream's tumbling window, defined here once: the detection job's TUMBLE, training's Spark
# window and the history ranges use it; the database refuses longer windows (migration 017).
WINDOW_MINUTES = 1

_KINDS = ("actor_txn_count", "actor_amount_mean", "actor_fraud_rate",
          "cp_window_count", "cp_amount_mean", "cp_fraud_rate")
COVERAGE = "history_coverage_min"
COVERAGE_CAP_MIN = max(m for _, m in HORIZONS)  # beyond the longest horizon the store's age changes nothing
HISTORY_FEATURE_NAMES: tuple[str, ...] = (tuple(f"{kind}_{h}" for h, _ in HORIZONS for kind in _KINDS)
                                          + (COVERAGE,))
# The model's inputs in the order every model is trained and served with: window features, then
# history features. Training (VectorAssembler), the serving file, the API and the GX suite use this.
MODEL_FEATURE_NAMES: tuple[str, ...] = FEATURE_NAMES + HISTORY_FEATURE_NAMES
EMPTY: dict[str, float] = {n: (0.0 if "_count_" in n or n == COVERAGE else MISSING) for n in HISTORY_FEATURE_NAMES}


class HistoryKey(NamedTuple):
    """The window to compute history for: its actor, its start and its distinct counterparties."""

    actor_id: str
    window_start: datetime
    counterparties: Sequence[str]


@dataclass(frozen=True)
class PastWindow:
    """One stored window as history reads it; ``fraud_known_at`` None: never labelled fraud."""

    actor_id: str
    window_start: datetime
    txn_count: float
    amount_sum: float
    counterparties: tuple[str, ...] = ()
    fraud_known_at: datetime | None = None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


@dataclass
class _Acc:
    windows: int = 0
    txns: float = 0.0
    amount: float = 0.0
    labelled: int = 0
    fraud: int = 0


def _accumulate(rows: Iterable[PastWindow], key: HistoryKey, minutes: int, delay: int) -> tuple[_Acc, _Acc]:
    """(count-range accumulator, fraud-range accumulator) over rows for one horizon."""
    counts, rates = _Acc(), _Acc()
    cutoff = key.window_start - timedelta(minutes=delay)
    for w in rows:
        age = _minutes(key.window_start - w.window_start)
        if 1 <= age <= minutes:
            counts.windows += 1
            counts.txns += w.txn_count
            counts.amount += w.amount_sum
        if delay + 1 <= age <= delay + minutes:
            rates.labelled += 1
            rates.fraud += int(w.fraud_known_at is not None and w.fraud_known_at <= cutoff)
    return counts, rates


def reference(history: Sequence[PastWindow], key: HistoryKey, label_delay_min: int) -> dict[str, float]:
    """The history features of ``key`` from the stored windows (any order, later ones ignored)."""
    out: dict[str, float] = {}
    own = [w for w in history if w.actor_id == key.actor_id]
    parties = sorted({c for c in key.counterparties if c is not None})
    for suffix, minutes in HORIZONS:
        counts, rates = _accumulate(own, key, minutes, label_delay_min)
        out[f"actor_txn_count_{suffix}"] = counts.txns
        out[f"actor_amount_mean_{suffix}"] = counts.amount / counts.txns if counts.txns else MISSING
        out[f"actor_fraud_rate_{suffix}"] = rates.fraud / rates.labelled if rates.labelled else MISSING
        windows, txns, amount, fraud_rates = 0, 0.0, 0.0, []
        for party in parties:
            others = [w for w in history if w.actor_id != key.actor_id and party in w.counterparties]
            c_counts, c_rates = _accumulate(others, key, minutes, label_delay_min)
            windows = max(windows, c_counts.windows)
            txns, amount = txns + c_counts.txns, amount + c_counts.amount
            if c_rates.labelled:
                fraud_rates.append(c_rates.fraud / c_rates.labelled)
        out[f"cp_window_count_{suffix}"] = float(windows)
        out[f"cp_amount_mean_{suffix}"] = amount / txns if txns else MISSING
        out[f"cp_fraud_rate_{suffix}"] = max(fraud_rates) if fraud_rates else MISSING
    out[COVERAGE] = coverage(min((w.window_start for w in history), default=key.window_start), key.window_start)
    return {n: out[n] for n in HISTORY_FEATURE_NAMES}


def coverage(store_first: datetime, window_start: datetime) -> float:
    """``history_coverage_min`` of a window starting at ``window_start`` when the store's earliest
    window starts at ``store_first`` (pass ``window_start`` itself for an empty store)."""
    return float(min(max(_minutes(window_start - store_first), 0), COVERAGE_CAP_MIN))


def model_row(window_values: Sequence[float], history: dict[str, float] | None) -> list[float]:
    """MODEL_FEATURE_NAMES-ordered vector from the window's features and its history (EMPTY if None)."""
    past = EMPTY if history is None else history
    return [*map(float, window_values), *(float(past[n]) for n in HISTORY_FEATURE_NAMES)]


# --- PostgreSQL -----------------------------------------------------------------------------------
# Ranges as timestamps, per key: the count range of horizon H is [n_H, ws) with n_H = ws - H, the
# fraud-rate range [r_H, cutoff) with r_H = cutoff - H and cutoff = ws - D (windows are
# minute-aligned, so these are the reference's minute ranges). Counterparties read whole UTC hours
# from counterparty_hours (migration 011) and the hours a range only partly covers from
# counterparty_minutes (014: one row per counterparty and window start, however many actors share
# it); the actor's own windows are then taken out (other actors only). The actor's side has the same
# shape (019): whole hours from actor_hours and actor_counterparty_hours, the partly covered hours
# from the actor's windows themselves (at most 60 an hour), so the cost of a key no longer grows
# with the actor's history (a week of a window every minute: 12 ms a key before, 1.6 ms after).
# Of a partly covered hour only the part inside the range is read (_edge_runs), and nothing before
# the hour of the store's first window (_bounds).

def _ranges() -> list[tuple[str, str, str]]:
    """(name, start column, end column) of every range history reads: n_H counts, r_H rates."""
    out = []
    for suffix, _ in HORIZONS:
        out += [(f"n_{suffix}", f"n_{suffix}", "ws"), (f"r_{suffix}", f"r_{suffix}", "cutoff")]
    return out


def _bounds() -> str:
    """The keys' range starts (n_H, r_H), cutoff, and ``first``: where the reads start, the earliest
    start of any range or the hour of the store's first window if later (nothing is stored before
    it, and the hourly rollups key it by its hour). In a store younger than the horizons the runs
    of the ranges' far ends then lie before ``first`` and edge_runs drops them: no index probe."""
    cols = ["k0.ws - make_interval(mins => %(delay)s) AS cutoff"]
    for suffix, minutes in HORIZONS:
        cols += [f"k0.ws - interval '{minutes} minutes' AS n_{suffix}",
                 f"k0.ws - make_interval(mins => %(delay)s + {minutes}) AS r_{suffix}"]
    longest = max(m for _, m in HORIZONS)
    cols.append(f"GREATEST(LEAST(k0.ws - interval '{longest} minutes', "
                f"k0.ws - make_interval(mins => %(delay)s + {longest})), "
                f"date_trunc('hour', s0.first, 'UTC')) AS first")
    return ", ".join(cols)


def _party_sums(inside: str, windows: str, txns: str, amount: str, amounts: str) -> list[str]:
    """windows/txns/amount/amounts per range; ``inside`` formats to the filter of rows in {a}..{b}."""
    parts = []
    for name, a, b in _ranges():
        cond = inside.format(a=f"c.{a}", b=f"c.{b}")
        parts.append(f"COALESCE(SUM({windows}) FILTER (WHERE {cond}), 0) AS windows_{name}")
        if name.startswith("n_"):
            parts += [f"COALESCE(SUM({txns}) FILTER (WHERE {cond}), 0) AS txns_{name}",
                      f"COALESCE(SUM({amount}) FILTER (WHERE {cond}), 0) AS amount_{name}",
                      f"COALESCE(SUM({amounts}) FILTER (WHERE {cond}), 0) AS amounts_{name}"]
    return parts


def _party_columns() -> list[str]:
    """Per (key, counterparty): other actors' windows = all windows (hours + edges) - the actor's own."""
    cols = []
    for suffix, _ in HORIZONS:
        n, r = f"n_{suffix}", f"r_{suffix}"
        parts = {m: f"(COALESCE(f.{m}_{{0}}, 0) + COALESCE(e.{m}_{{0}}, 0) - COALESCE(o.{m}_{{0}}, 0)"
                    f" - COALESCE(q.{m}_{{0}}, 0))"
                 for m in ("windows", "txns", "amount", "amounts")}
        cols += [parts["windows"].format(n) + f" AS windows_{suffix}",
                 parts["txns"].format(n) + f" AS txns_{suffix}",
                 f"CASE WHEN {parts['amounts'].format(n)} > 0 THEN {parts['amount'].format(n)} END AS amount_{suffix}",
                 parts["windows"].format(r) + f" AS labelled_{suffix}",
                 f"COALESCE(x.fraud_{suffix}, 0) AS fraud_{suffix}"]
    return cols


def _actor_columns() -> list[str]:
    """Per key: the actor's own windows = whole hours (f) + partly covered hours (e); fraud (x)."""
    cols = []
    for suffix, _ in HORIZONS:
        n, r = f"n_{suffix}", f"r_{suffix}"
        parts = {m: f"(COALESCE(f.{m}_{{0}}, 0) + COALESCE(e.{m}_{{0}}, 0))"
                 for m in ("windows", "txns", "amount", "amounts")}
        cols += [parts["txns"].format(n) + f" AS txns_{suffix}",
                 f"CASE WHEN {parts['amounts'].format(n)} > 0 THEN {parts['amount'].format(n)} END AS amount_{suffix}",
                 parts["windows"].format(r) + f" AS labelled_{suffix}",
                 f"COALESCE(x.fraud_{suffix}, 0) AS fraud_{suffix}"]
    return cols


def _final_columns() -> list[str]:
    cols = []
    for suffix, _ in HORIZONS:
        cols += [f"COALESCE(a.txns_{suffix}, 0)::float8 AS actor_txn_count_{suffix}",
                 f"COALESCE(a.amount_{suffix} / NULLIF(a.txns_{suffix}, 0), {MISSING})::float8 "
                 f"AS actor_amount_mean_{suffix}",
                 f"COALESCE(a.fraud_{suffix}::float8 / NULLIF(a.labelled_{suffix}, 0), {MISSING})::float8 "
                 f"AS actor_fraud_rate_{suffix}",
                 f"COALESCE(c.windows_{suffix}, 0)::float8 AS cp_window_count_{suffix}",
                 f"COALESCE(c.amount_{suffix} / NULLIF(c.txns_{suffix}, 0), {MISSING})::float8 "
                 f"AS cp_amount_mean_{suffix}",
                 f"COALESCE(c.rate_{suffix}, {MISSING})::float8 AS cp_fraud_rate_{suffix}"]
    return cols


def _cp_combine() -> list[str]:
    cols = []
    for suffix, _ in HORIZONS:
        cols += [f"MAX(windows_{suffix}) AS windows_{suffix}", f"SUM(txns_{suffix}) AS txns_{suffix}",
                 f"SUM(amount_{suffix}) AS amount_{suffix}",
                 f"MAX(fraud_{suffix}::float8 / NULLIF(labelled_{suffix}, 0)) AS rate_{suffix}"]
    return cols


def _edge_runs() -> str:
    """The parts of hours the ranges of ``c`` (a ws and its range bounds) only partly cover, merged
    into runs [lo, hi): one index range scan per run, key and counterparty. A range [a, b) reads
    whole hours from the rollups and, from the windows, at most [a, next hour) and [hour of b, b)
    (empty when a or b is on the hour); overlapping or adjacent pieces are one run. At a week of a
    window every minute that is ~240 windows a key where whole edge hours were ~360."""
    pieces = " UNION ALL ".join(
        [f"SELECT {a}, date_trunc('hour', {a}, 'UTC') + interval '1 hour' WHERE {a} > date_trunc('hour', {a}, 'UTC')"
         for a in sorted({f"c.{a}" for _, a, _ in _ranges()})]
        + [f"SELECT date_trunc('hour', {b}, 'UTC'), {b} WHERE {b} > date_trunc('hour', {b}, 'UTC')"
           for b in ("c.ws", "c.cutoff")])
    return ("SELECT min(lo) AS lo, max(hi) AS hi FROM ("
            "SELECT lo, hi, count(*) FILTER (WHERE lo > reach) OVER (ORDER BY lo, hi) AS run FROM ("
            "SELECT lo, hi, coalesce(max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),"
            f" lo) AS reach FROM ({pieces}) AS t(lo, hi)) p) r GROUP BY run")


def postgres_sql(keys_sql: str, key_parties_sql: str) -> str:
    """One statement computing HISTORY_FEATURE_NAMES for a set of keys, in key order.

    ``keys_sql`` selects (i bigint, actor_id text, ws timestamptz), one row per key; ``key_parties_sql``
    selects (i, cp text), the key's counterparties. Parameter: ``%(delay)s`` (minutes, int). Output
    columns: i, then HISTORY_FEATURE_NAMES. Reads actor_windows with its ``fraud_known_at`` (migration
    010; the labelled ones through the partial index of 019), counterparty_hours (011),
    counterparty_minutes (014), the fraud windows' counterparty rows (counterparty_fraud_windows,
    018), the actor's rollups (actor_hours, actor_counterparty_hours, 019), the actor's windows only
    in the hours a range partly covers, and the table's earliest ``window_start`` (index of 012)
    for ``history_coverage_min``; each distinct (counterparty, ws) of the batch is summed once,
    whatever the number of keys sharing it.
    """
    hour = "interval '1 hour'"
    whole_hour = "h.hour >= {a} AND h.hour <= {b} - " + hour
    edge_row = ("w.window_start >= {a} AND w.window_start < {b} "
                "AND NOT (w.hour >= {a} AND w.hour <= {b} - " + hour + ")")
    fraud_counts = ", ".join(f"COUNT(*) FILTER (WHERE w.window_start >= k.r_{s}) AS fraud_{s}" for s, _ in HORIZONS)
    edge_sums = _party_sums(edge_row, "1", "w.event_count::float8", "COALESCE(w.amount_sum, 0)",
                            "(w.amount_sum IS NOT NULL)::int")
    return f"""
WITH store AS MATERIALIZED (  -- the store's first window: one descent of actor_windows_start_idx (012)
  SELECT min(w.window_start) AS first FROM actor_windows w
), keys AS MATERIALIZED (
  SELECT k0.i, k0.actor_id, k0.ws, {_bounds()} FROM ({keys_sql}) k0 CROSS JOIN store s0
), key_parties AS MATERIALIZED (
  SELECT DISTINCT kp.i, kp.cp, k.actor_id, k.ws, k.cutoff, {', '.join(f'k.r_{s}' for s, _ in HORIZONS)}, k.first
    FROM ({key_parties_sql}) kp JOIN keys k USING (i) WHERE kp.cp IS NOT NULL
), cp_keys AS MATERIALIZED (
  SELECT DISTINCT k.cp, {', '.join(f'k2.{c}' for c in ('ws', 'cutoff', 'first'))},
         {', '.join(f'k2.{a}' for _, a, _ in _ranges())}
    FROM key_parties k JOIN keys k2 USING (i)
), edge_runs AS MATERIALIZED (  -- per distinct ws (a batch usually has one): what its ranges partly cover
  SELECT c.ws, GREATEST(e.lo, c.first) AS lo, LEAST(e.hi, c.ws) AS hi
    FROM (SELECT DISTINCT ws, cutoff, first, {', '.join(a for _, a, _ in _ranges())} FROM keys) c
    CROSS JOIN LATERAL ({_edge_runs()}) e
   WHERE GREATEST(e.lo, c.first) < LEAST(e.hi, c.ws)
), actor_edges AS MATERIALIZED (  -- the actor's windows in the hours its ranges only partly cover
  SELECT c.i, w.window_start, date_trunc('hour', w.window_start, 'UTC') AS hour, w.event_count, w.amount_sum,
         w.counterparties
    FROM keys c JOIN edge_runs e USING (ws)
    CROSS JOIN LATERAL (
      SELECT w.window_start, w.event_count, w.amount_sum, w.counterparties
        FROM actor_windows w
       WHERE w.actor_id = c.actor_id AND w.window_start >= e.lo AND w.window_start < e.hi OFFSET 0) w
), actor_whole AS (
  SELECT c.i, {', '.join(_party_sums(whole_hour, 'h.windows', 'h.txns', 'h.amount', 'h.amounts'))}
    FROM keys c JOIN actor_hours h ON h.actor_id = c.actor_id AND h.hour >= c.first AND h.hour < c.ws
   GROUP BY c.i
), actor_part AS (
  SELECT c.i, {', '.join(edge_sums)}
    FROM keys c JOIN actor_edges w USING (i)
   GROUP BY c.i
), actor_fraud AS (
  SELECT k.i, {fraud_counts}
    FROM keys k JOIN actor_windows w
      ON w.actor_id = k.actor_id AND w.fraud_known_at IS NOT NULL AND w.fraud_known_at <= k.cutoff
     AND w.window_start >= k.first AND w.window_start < k.cutoff
   GROUP BY k.i
), actor_hist AS (
  SELECT k.i, {', '.join(_actor_columns())}
    FROM keys k LEFT JOIN actor_whole f USING (i) LEFT JOIN actor_part e USING (i) LEFT JOIN actor_fraud x USING (i)
), cp_hours AS (
  SELECT c.cp, c.ws, {', '.join(_party_sums(whole_hour, 'h.windows', 'h.txns', 'h.amount', 'h.amounts'))}
    FROM cp_keys c JOIN counterparty_hours h
      ON h.counterparty = c.cp AND h.hour >= c.first AND h.hour < c.ws
   GROUP BY c.cp, c.ws
), cp_edges AS (
  SELECT c.cp, c.ws, {', '.join(_party_sums(edge_row, 'w.windows', 'w.txns', 'w.amount', 'w.amounts'))}
    FROM cp_keys c JOIN edge_runs e USING (ws)
    CROSS JOIN LATERAL (  -- OFFSET 0: one index range scan per run, not one of the whole range
      SELECT w.window_start, date_trunc('hour', w.window_start, 'UTC') AS hour, w.windows, w.txns, w.amount,
             w.amounts
        FROM counterparty_minutes w
       WHERE w.counterparty = c.cp AND w.window_start >= e.lo AND w.window_start < e.hi OFFSET 0) w
   GROUP BY c.cp, c.ws
), own_whole AS (  -- the actor's own windows touching the counterparty, taken out below
  SELECT c.i, c.cp, {', '.join(_party_sums(whole_hour, 'h.windows', 'h.txns', 'h.amount', 'h.amounts'))}
    FROM (SELECT kp.cp, k.* FROM key_parties kp JOIN keys k USING (i)) c
    JOIN actor_counterparty_hours h
      ON h.actor_id = c.actor_id AND h.counterparty = c.cp AND h.hour >= c.first AND h.hour < c.ws
   GROUP BY c.i, c.cp
), own_part AS (
  SELECT c.i, c.cp, {', '.join(edge_sums)}
    FROM (SELECT kp.cp, k.* FROM key_parties kp JOIN keys k USING (i)) c
    JOIN actor_edges w ON w.i = c.i AND c.cp = ANY (w.counterparties)
   GROUP BY c.i, c.cp
), cp_fraud AS (
  SELECT k.i, k.cp, {fraud_counts}
    FROM key_parties k JOIN counterparty_fraud_windows w
      ON w.counterparty = k.cp AND w.fraud_known_at <= k.cutoff
     AND w.window_start >= k.first AND w.window_start < k.cutoff AND w.actor_id <> k.actor_id
   GROUP BY k.i, k.cp
), party_hist AS (
  SELECT kp.i, {', '.join(_party_columns())}
    FROM key_parties kp
    LEFT JOIN cp_hours f ON f.cp = kp.cp AND f.ws = kp.ws
    LEFT JOIN cp_edges e ON e.cp = kp.cp AND e.ws = kp.ws
    LEFT JOIN own_whole o ON o.i = kp.i AND o.cp = kp.cp
    LEFT JOIN own_part q ON q.i = kp.i AND q.cp = kp.cp
    LEFT JOIN cp_fraud x ON x.i = kp.i AND x.cp = kp.cp
), cp_hist AS (
  SELECT i, {', '.join(_cp_combine())} FROM party_hist GROUP BY i
)
SELECT k.i, {', '.join(_final_columns())},
       COALESCE(LEAST({COVERAGE_CAP_MIN}, GREATEST(0, floor(extract(epoch FROM k.ws - s.first) / 60))), 0)::float8
       AS {COVERAGE}
  FROM keys k LEFT JOIN actor_hist a USING (i) LEFT JOIN cp_hist c USING (i)
 CROSS JOIN store s
 ORDER BY k.i"""


def definition_text() -> str:
    """What a model's history inputs mean (for the training run's feature fingerprint): the names and
    constants and the Python definition's source, not an engine's query. The query is an
    implementation held to the definition by the parity tests, so rewriting it for speed (as the
    migrations 018 and 019 did) must not change the fingerprint; changing a definition must."""
    definition = (_Acc, _minutes, _accumulate, reference, coverage, model_row)
    return "|".join([repr((MODEL_FEATURE_NAMES, HORIZONS, WINDOW_MINUTES, MISSING, COVERAGE_CAP_MIN, EMPTY)),
                     *(inspect.getsource(part) for part in definition)])
