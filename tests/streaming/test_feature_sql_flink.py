"""The feature SQL in Flink equals features.compute (Spark's side is tests/model/test_training_data.py):
the same windows through Flink SQL's aggregates and through the Python definitions."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from patternalarm import features

T0 = datetime(2026, 3, 2, 10, 0)


def _txn(amount: float, second: int, domain: str = "iot", **cols: object) -> features.Txn:
    return features.Txn(amount=amount, event_time=T0 + timedelta(seconds=second), domain=domain, **cols)


WINDOWS: dict[str, list[features.Txn]] = {
    # a flatlined sensor: identical readings, where sqrt(E[x^2] - E[x]^2) turns NaN
    "flat": [_txn(32.07, i * 3, device="dev-1", counterparty="temp") for i in range(20)],
    "flat-large": [_txn(9_876.543, i, domain="fintech", counterparty="acct-x") for i in range(7)],
    "mixed": [_txn(4.99, 0, "ecommerce", payment_method="card", session_sec=30.0, country_to="US"),
              _txn(1.5, 20, "ecommerce", payment_method="card", session_sec=12.0, country_to="US"),
              _txn(1200.0, 50, "ecommerce", payment_method="paypal", device="fp-1")],
    "single": [_txn(250.0, 5, "gaming", payment_method="card", session_sec=900.0, device="d", counterparty="g")],
}


@pytest.fixture(scope="module")
def flink_rows() -> dict[str, dict[str, float]]:
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("parallelism.default", "1")
    t_env.get_config().set("table.local-time-zone", "UTC")
    rows = [(key, t.amount, t.event_time, t.domain, t.payment_method, t.session_sec, t.country_from, t.country_to,
             t.counterparty, t.device) for key, txns in WINDOWS.items() for t in txns]
    schema = DataTypes.ROW([
        DataTypes.FIELD("w", DataTypes.STRING()), DataTypes.FIELD("amount", DataTypes.DOUBLE()),
        DataTypes.FIELD("event_time", DataTypes.TIMESTAMP(3)), DataTypes.FIELD("domain", DataTypes.STRING()),
        DataTypes.FIELD("payment_method", DataTypes.STRING()), DataTypes.FIELD("session_sec", DataTypes.DOUBLE()),
        DataTypes.FIELD("country_from", DataTypes.STRING()), DataTypes.FIELD("country_to", DataTypes.STRING()),
        DataTypes.FIELD("counterparty", DataTypes.STRING()), DataTypes.FIELD("device", DataTypes.STRING())])
    t_env.create_temporary_view("prepared", t_env.from_elements(rows, schema))
    result = t_env.execute_sql(f"SELECT w, {features.sql_select_list()} FROM prepared GROUP BY w")
    out: dict[str, dict[str, float]] = {}
    with result.collect() as results:
        for row in results:
            out[row[0]] = dict(zip(features.FEATURE_NAMES, (float(v) for v in row[1:])))
    return out


@pytest.mark.parametrize("window", sorted(WINDOWS))
def test_flink_features_equal_the_python_definitions(flink_rows: dict[str, dict[str, float]], window: str) -> None:
    want = dict(zip(features.FEATURE_NAMES, features.compute(WINDOWS[window])))
    got = flink_rows[window]
    assert all(math.isfinite(v) for v in got.values()), got
    for name in features.FEATURE_NAMES:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-9), name
