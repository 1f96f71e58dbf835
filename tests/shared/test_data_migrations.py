"""Migrations that repair data written by earlier versions, run against a real scratch database."""

from __future__ import annotations

import json

from patternalarm.config import REPO_ROOT
from patternalarm.stack import postgres
from tests.support.databases import scratch_database

REPAIR_NAN_STD = REPO_ROOT / "sql" / "migrations" / "013_repair_nan_amount_std.sql"


def test_nan_amount_std_written_by_the_old_job_becomes_zero() -> None:
    with scratch_database() as settings:
        postgres.psql(settings, """
            INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, features) VALUES
              ('dev-1', 'iot', '2026-11-29 11:41:00+00', '2026-11-29 11:42:00+00', 20,
               '{"amount_std": "NaN", "txn_count": 20.0}'),
              ('user-1', 'ecommerce', '2026-11-29 11:41:00+00', '2026-11-29 11:42:00+00', 2,
               '{"amount_std": 1.5, "txn_count": 2.0}')""")
        postgres.psql(settings, REPAIR_NAN_STD.read_text())
        rows = postgres.psql(settings, "SELECT json_agg(json_build_object('a', actor_id, 'f', features) "
                                       "ORDER BY actor_id) FROM actor_windows")
    assert [(r["a"], r["f"]["amount_std"], r["f"]["txn_count"]) for r in json.loads(rows)] == [
        ("dev-1", 0, 20.0), ("user-1", 1.5, 2.0)]
