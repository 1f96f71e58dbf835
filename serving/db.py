"""The alerts database as SQLAlchemy Core sees it: engine, the tables this service reads and writes.

The schema itself is owned by sql/migrations (applied by ``patternalarm.stack.postgres.migrate``);
these Table objects only name the columns the queries use, and the tests run them against the
migrated schema, which catches drift.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, MetaData, Table, Text, create_engine, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from serving.settings import ServingSettings

metadata = MetaData()

alerts = Table(
    "alerts", metadata,
    Column("alert_id", Text, primary_key=True),
    Column("pattern", Text, nullable=False),
    Column("domain", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("score", Float),
    Column("score_status", Text, nullable=False),
    Column("model_version", Text),
    Column("first_event_time", DateTime(timezone=True), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("emitted_at", DateTime(timezone=True), nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Column("transaction_ids", JSONB, nullable=False),
    Column("measures", JSONB, nullable=False),
    Column("incident_id", Text),
)

incidents = Table(
    "incidents", metadata,
    Column("incident_id", Text, primary_key=True),
    Column("pattern", Text, nullable=False),
    Column("domain", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("score", Float),
    Column("first_event_time", DateTime(timezone=True), nullable=False),
    Column("last_event_time", DateTime(timezone=True), nullable=False),
    Column("alert_count", Integer, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("verdict", Text),
    Column("verdict_note", Text),
    Column("verdict_by", Text),
    Column("verdict_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

incident_verdicts = Table(
    "incident_verdicts", metadata,
    Column("verdict_id", BigInteger, primary_key=True),
    Column("incident_id", Text, nullable=False),
    Column("verdict", Text, nullable=False),
    Column("note", Text),
    Column("analyst", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def make_engine(settings: ServingSettings) -> Engine:
    """A small pool (one uvicorn worker, a threadpool of DB routes); connections are checked before
    use so a database restart costs one failed ping, not a burst of 500s. Nothing connects here."""
    return create_engine(settings.db_url(driver="postgresql+psycopg"), pool_size=5, max_overflow=5,
                         pool_pre_ping=True, pool_timeout=settings.db_timeout_s,
                         connect_args={"connect_timeout": settings.db_timeout_s,
                                       "application_name": "patternalarm-serving"})


def ping(engine: Engine) -> tuple[bool, str]:
    """(reachable, detail) for /health: one round trip plus the schema version."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            version = conn.execute(text("SELECT coalesce(max(version), 'none') FROM schema_migrations")).scalar()
    except Exception as exc:  # any failure is "unreachable" for health purposes; the detail says which
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"{engine.url.render_as_string(hide_password=True)}: {first}"
    return True, f"reachable, schema at {version}"
