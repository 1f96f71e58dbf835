"""Where the generator records what it injected: the ground_truth table and/or a JSONL labels file.

Kept apart from the events topic so that detection cannot read the answer; `make evaluate` and the
tests join incidents against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from patternalarm.config import Settings

INSERT = """
INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, transaction_ids,
                          first_event_time, last_event_time)
VALUES (%(instance_id)s, %(run_id)s, %(pattern)s, %(domain)s, %(actor_id)s, %(transaction_ids)s,
        %(first_event_time)s, %(last_event_time)s)
ON CONFLICT (instance_id) DO NOTHING
"""


class GroundTruthSink:
    def __init__(self, settings: Settings, to_database: bool = True, labels_file: Path | None = None) -> None:
        self._conn = None
        if to_database:
            import psycopg2  # only the streaming venv has it

            self._conn = psycopg2.connect(settings.db_url())
            self._conn.autocommit = True
        self._file = labels_file.open("a") if labels_file else None
        self.recorded = 0

    def record(self, truth: dict[str, Any]) -> None:
        if self._conn is not None:
            with self._conn.cursor() as cur:
                cur.execute(INSERT, {**truth, "transaction_ids": json.dumps(truth["transaction_ids"])})
        if self._file is not None:
            self._file.write(json.dumps(truth) + "\n")
            self._file.flush()
        self.recorded += 1

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._file is not None:
            self._file.close()
