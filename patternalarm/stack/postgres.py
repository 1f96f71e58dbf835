"""PostgreSQL: the machine's Debian cluster (or any server named by PA_DATABASE_URL), roles, databases
and schema migrations.

Uses the ``psql`` client rather than a Python driver because it runs before any virtualenv exists.
Migrations are the ordered files in sql/migrations/, each applied once in its own transaction and
recorded in ``schema_migrations``; re-running is a no-op.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from patternalarm.config import REPO_ROOT, Settings

MIGRATIONS_DIR = REPO_ROOT / "sql" / "migrations"
PROJECT_DATABASES = ("mlflow", "airflow")  # besides settings.pg_database


class PostgresError(RuntimeError):
    pass


def _is_local(settings: Settings) -> bool:
    return settings.pg_host in ("127.0.0.1", "localhost") and not settings.database_url


def _debian_cluster() -> tuple[str, str, str] | None:
    """(version, name, status) of the machine's first Debian cluster, if pg_lsclusters exists."""
    if not shutil.which("pg_lsclusters"):
        return None
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            return parts[0], parts[1], parts[3]
    return None


def start(settings: Settings) -> None:
    """Start the local Debian cluster when the settings point at this machine and it is down."""
    if not _is_local(settings):
        return
    cluster = _debian_cluster()
    if cluster is None:
        raise PostgresError("no PostgreSQL cluster on this machine: run `make setup` "
                            "(installs Debian's postgresql) or set PA_DATABASE_URL to a running server")
    version, name, status = cluster
    if status != "online":
        proc = subprocess.run(["pg_ctlcluster", version, name, "start"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise PostgresError(f"pg_ctlcluster {version} {name} start failed: {proc.stderr.strip()}\n"
                                f"see /var/log/postgresql/postgresql-{version}-{name}.log")
    _ensure_role_and_databases(settings)


def stop(settings: Settings) -> None:
    """Stop the Debian cluster only when this stack runs it; an external server is left alone."""
    cluster = _debian_cluster()
    if _is_local(settings) and cluster and cluster[2] == "online":
        subprocess.run(["pg_ctlcluster", cluster[0], cluster[1], "stop"], capture_output=True)


def _as_postgres(sql: str) -> str:
    """Run SQL as the cluster's superuser through the local socket (peer authentication)."""
    cmd = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        raise PostgresError(f"psql as postgres failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def sql_literal(value: str) -> str:
    """A string constant for SQL built as text (psql -c here, the analyst simulator's look-up): a
    quote inside, as in a password from the environment, must not end the string."""
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _ensure_role_and_databases(settings: Settings) -> None:
    role, password = settings.pg_user, settings.pg_password
    if _as_postgres(f"SELECT 1 FROM pg_roles WHERE rolname = {sql_literal(role)}") != "1":
        # CREATEDB lets the test suite make throw-away databases.
        _as_postgres(f"CREATE ROLE {sql_identifier(role)} LOGIN CREATEDB PASSWORD {sql_literal(password)}")
    for database in (settings.pg_database, *PROJECT_DATABASES):
        if _as_postgres(f"SELECT 1 FROM pg_database WHERE datname = {sql_literal(database)}") != "1":
            _as_postgres(f"CREATE DATABASE {sql_identifier(database)} OWNER {sql_identifier(role)}")


def psql(settings: Settings, sql: str | None = None, file: Path | None = None,
         database: str | None = None, single_transaction: bool = False) -> str:
    """Run SQL as the project role; raise PostgresError with psql's message on failure."""
    cmd = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", settings.db_url(database)]
    if single_transaction:
        cmd.append("--single-transaction")
    cmd += ["-f", str(file)] if file else ["-c", sql or ""]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        target = file.name if file else (sql or "")[:80]
        raise PostgresError(f"psql failed on {target}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def drop_database(settings: Settings, name: str, attempts: int = 10) -> None:
    """Drop a throw-away database (tests, benchmarks), ending the sessions still connected to it.

    WITH (FORCE) refuses when an autovacuum worker is in the database (PostgreSQL 15 checks the
    worker's role like a session's, and the project role may not signal it: "must be a member of
    the role whose process is being terminated"); a plain DROP DATABASE stops autovacuum workers
    itself, so that is tried next, again until the last session is gone."""
    force = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    for attempt in range(1, attempts + 1):
        try:
            psql(settings, force, database="postgres")
            return
        except PostgresError as exc:
            if "member of the role" not in str(exc) or attempt == attempts:
                raise
        try:
            psql(settings, f'DROP DATABASE IF EXISTS "{name}"', database="postgres")
            return
        except PostgresError:
            time.sleep(0.5 * attempt)


def healthy(settings: Settings) -> tuple[bool, str]:
    try:
        version = psql(settings, "SHOW server_version")
        applied = psql(settings, "SELECT coalesce(max(version), 'none') FROM schema_migrations")
    except PostgresError as exc:
        return False, str(exc).splitlines()[0]
    return True, f"server {version}, schema at {applied}"


def migrate(settings: Settings, until: str | None = None) -> list[str]:
    """Apply pending migrations in order; return the versions applied now.

    ``until`` (a version's number, e.g. "017") stops after that migration: tests of a migration on
    data written under the schema before it, and benches comparing the two, start there."""
    psql(settings, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    done = set(psql(settings, "SELECT version FROM schema_migrations").split())
    applied = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        version = path.stem
        if version in done:
            continue
        if until is not None and version.split("_", 1)[0] > until:
            break
        wrapped = path.read_text() + f"\nINSERT INTO schema_migrations (version) VALUES ('{version}');\n"
        psql(settings, wrapped, single_transaction=True)
        applied.append(version)
    return applied
