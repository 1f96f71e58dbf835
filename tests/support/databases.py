"""Throw-away PostgreSQL databases for tests: created, migrated from sql/, dropped afterwards.

Standard library only (psql), so every component's test suite can use it.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.stack import postgres


@contextmanager
def scratch_database(prefix: str = "pa_test", until: str | None = None) -> Iterator[Settings]:
    """Settings pointing at a fresh, migrated database (up to migration ``until`` if given);
    PA_PG_DATABASE is set while it lives."""
    base = config.load()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    postgres.psql(base, f'CREATE DATABASE "{name}"', database="postgres")
    previous = os.environ.get("PA_PG_DATABASE")
    os.environ["PA_PG_DATABASE"] = name
    try:
        settings = config.load()
        postgres.migrate(settings, until)
        yield settings
    finally:
        if previous is None:
            os.environ.pop("PA_PG_DATABASE", None)
        else:
            os.environ["PA_PG_DATABASE"] = previous
        postgres.drop_database(base, name)
