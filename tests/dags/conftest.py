"""Airflow configured like the stack's: metadata in the PostgreSQL `airflow` database, DAGs from dags/.

The environment is set before Airflow is imported (Airflow reads its configuration at import).
"""

from __future__ import annotations

import os
import subprocess
import sys

from patternalarm import config
from patternalarm.stack import postgres, services

_settings = config.load()
postgres.start(_settings)
os.environ.update(services.airflow_env(_settings))
# Migrating is idempotent and quick when the schema is current; a fresh database needs it once.
subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
