"""End-to-end proof of the streaming environment: Kafka -> PyFlink SQL -> PostgreSQL through JDBC.

Checks, in one bounded job on the local mini-cluster, what the detection job relies on:
  * the Kafka SQL connector (raw format, JSON parsed in SQL, event-time watermark) from the
    jars that scripts/jars.sh fetched, given to Flink as ``pipeline.jars`` file:// URLs;
  * a JDBC upsert sink into PostgreSQL (PRIMARY KEY ... NOT ENFORCED: a re-sent key updates its row);
  * MATCH_RECOGNIZE with WITHIN on event time.

It uses a throw-away topic and throw-away tables (dropped afterwards) so it never touches the events
topic or the alerts schema. The Kafka broker must run (``make up`` or
``python3 -m patternalarm.stack.kafka_broker start``) and PostgreSQL must answer.

Run:  PYTHONPATH=. "$(python3 scripts/envs.py python streaming)" streaming/smoke_check.py
Exit status 0 and a last line "smoke: ok" when everything holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg2
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pyflink.table import EnvironmentSettings, TableEnvironment

from patternalarm.config import Settings, load
from patternalarm.stack.kafka_broker import jar_folder

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def iso(ts: datetime) -> str:
    """The contract's timestamp form: ISO-8601 UTC with milliseconds and a Z."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def test_events() -> list[tuple[str, bytes]]:
    """(key, value) messages whose expected outcome is known.

    a1: small probes then a big payment within a minute -> one match; the re-sent t-a1-1 is a
    fourth probe at the same instant, so the match counts 4 probes.
    a2: one big payment only -> no match.  a3: a probe, then a big payment 2 minutes later -> no
    match (WITHIN 1 minute).  t-a1-1 is sent twice: the upsert keeps one row with the later amount.
    One malformed message must be skipped without failing the job.
    """
    rows = [
        ("a1", "t-a1-1", 1.0, 0), ("a1", "t-a1-2", 2.0, 1), ("a1", "t-a1-3", 3.0, 2), ("a1", "t-a1-4", 500.0, 3),
        ("a2", "t-a2-1", 800.0, 0),
        ("a3", "t-a3-1", 4.0, 0), ("a3", "t-a3-2", 900.0, 120),
        ("a1", "t-a1-1", 1.5, 0),  # re-sent: same key, new amount
    ]
    messages = [(actor, json.dumps({"transaction_id": tx, "domain": "fintech", "actor_id": actor,
                                    "timestamp": iso(T0 + timedelta(seconds=sec)), "amount": amount}).encode())
                for actor, tx, amount, sec in rows]
    messages.append(("a9", b"{not json"))
    return messages


def produce(settings: Settings, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=settings.topic_partitions, replication_factor=1)])
    futures[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    for key, value in test_events():
        producer.produce(topic, key=key.encode(), value=value)
    if producer.flush(30) != 0:
        raise SystemExit(f"smoke: could not deliver test messages to {settings.kafka_bootstrap}")


def delete_topic(settings: Settings, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    try:
        admin.delete_topics([topic])[topic].result(timeout=30)
    except Exception as exc:  # the topic may never have been created; cleanup must not hide the cause
        print(f"smoke: could not delete topic {topic}: {exc}", file=sys.stderr)


def table_env(settings: Settings, parallelism: int) -> TableEnvironment:
    """A streaming TableEnvironment on the local mini-cluster with the connector jars attached."""
    jars = sorted(jar_folder(settings, "flink").glob("*.jar"))
    # The gateway JVM logs to $FLINK_LOG_DIR, by default inside the (shared) venv: keep it under var/.
    log_dir = settings.resolved_var_dir() / "log" / "flink"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(log_dir))
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("pipeline.jars", ";".join(jar.as_uri() for jar in jars))
    conf.set("parallelism.default", str(parallelism))
    conf.set("table.local-time-zone", "UTC")
    # Some of the topic's partitions get no message: don't let them hold the watermark back.
    conf.set("table.exec.source.idle-timeout", f"{settings.idle_timeout_s} s")
    return t_env


def run_job(settings: Settings, topic: str, events_table: str, matches_table: str, parallelism: int) -> None:
    t_env = table_env(settings, parallelism)
    jdbc = (f"'connector' = 'jdbc', 'url' = '{settings.jdbc_url()}', 'username' = '{settings.pg_user}', "
            f"'password' = '{settings.pg_password}'")
    t_env.execute_sql(f"""
        CREATE TABLE events (
          payload STRING,
          actor_id AS JSON_VALUE(payload, '$.actor_id'),
          transaction_id AS JSON_VALUE(payload, '$.transaction_id'),
          amount AS TRY_CAST(JSON_VALUE(payload, '$.amount') AS DOUBLE),
          event_time AS TO_TIMESTAMP(REPLACE(REPLACE(JSON_VALUE(payload, '$.timestamp'), 'T', ' '), 'Z', ''),
                                     'yyyy-MM-dd HH:mm:ss.SSS'),
          WATERMARK FOR event_time AS event_time - INTERVAL '{settings.watermark_delay_s}' SECOND
        ) WITH (
          'connector' = 'kafka', 'topic' = '{topic}',
          'properties.bootstrap.servers' = '{settings.kafka_bootstrap}',
          'properties.group.id' = 'patternalarm-smoke',
          'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
          'format' = 'raw')""")
    t_env.execute_sql(f"""
        CREATE TABLE pg_events (
          transaction_id STRING, actor_id STRING, amount DOUBLE, event_time TIMESTAMP(3),
          PRIMARY KEY (transaction_id) NOT ENFORCED
        ) WITH ({jdbc}, 'table-name' = '{events_table}')""")
    t_env.execute_sql(f"""
        CREATE TABLE pg_matches (
          actor_id STRING, start_time TIMESTAMP(3), end_time TIMESTAMP(3), probes BIGINT, big_amount DOUBLE,
          PRIMARY KEY (actor_id, start_time) NOT ENFORCED
        ) WITH ({jdbc}, 'table-name' = '{matches_table}')""")
    # A view without the malformed rows: MATCH_RECOGNIZE needs the rowtime, so filter before it.
    t_env.execute_sql("""
        CREATE TEMPORARY VIEW valid_events AS
        SELECT actor_id, transaction_id, amount, event_time FROM events
        WHERE actor_id IS NOT NULL AND amount IS NOT NULL AND event_time IS NOT NULL""")
    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO pg_events SELECT transaction_id, actor_id, amount, event_time "
                              "FROM valid_events")
    statements.add_insert_sql("""
        INSERT INTO pg_matches
        SELECT actor_id, start_time, end_time, probes, big_amount
        FROM valid_events
        MATCH_RECOGNIZE (
          PARTITION BY actor_id
          ORDER BY event_time
          MEASURES FIRST(S.event_time) AS start_time, E.event_time AS end_time,
                   COUNT(S.amount) AS probes, E.amount AS big_amount
          ONE ROW PER MATCH
          AFTER MATCH SKIP PAST LAST ROW
          PATTERN (S+ E) WITHIN INTERVAL '1' MINUTE
          DEFINE S AS S.amount < 100, E AS E.amount >= 100
        )""")
    statements.execute().wait()


def check_results(conn, events_table: str, matches_table: str) -> list[str]:
    """Compare what landed in PostgreSQL with what test_events promises; return the differences."""
    problems = []
    with conn.cursor() as cur:
        cur.execute(f"SELECT transaction_id, amount FROM {events_table} ORDER BY transaction_id")
        events = dict(cur.fetchall())
        cur.execute(f"SELECT actor_id, start_time, end_time, probes, big_amount FROM {matches_table}")
        matches = cur.fetchall()
    if len(events) != 7:
        problems.append(f"expected 7 event rows (8 valid messages, one key re-sent), got {len(events)}: {events}")
    if events.get("t-a1-1") != 1.5:
        problems.append(f"upsert kept amount {events.get('t-a1-1')} for t-a1-1, expected the re-sent 1.5")
    expected = [("a1", T0.replace(tzinfo=None), (T0 + timedelta(seconds=3)).replace(tzinfo=None), 4, 500.0)]
    if [tuple(m) for m in matches] != expected:
        problems.append(f"MATCH_RECOGNIZE rows {matches} != expected {expected}")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the topic and tables for inspection")
    args = parser.parse_args(argv)
    settings = load()
    suffix = uuid.uuid4().hex[:8]
    topic = f"{settings.topic_events}.smoke-{suffix}"
    events_table, matches_table = f"smoke_events_{suffix}", f"smoke_matches_{suffix}"
    conn = psycopg2.connect(settings.db_url())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {events_table} (transaction_id text PRIMARY KEY, actor_id text, "
                    "amount double precision, event_time timestamp)")
        cur.execute(f"CREATE TABLE {matches_table} (actor_id text, start_time timestamp, end_time timestamp, "
                    "probes bigint, big_amount double precision, PRIMARY KEY (actor_id, start_time))")
    started = time.monotonic()
    try:
        produce(settings, topic)
        run_job(settings, topic, events_table, matches_table, args.parallelism)
        problems = check_results(conn, events_table, matches_table)
    finally:
        if not args.keep:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {events_table}, {matches_table}")
            delete_topic(settings, topic)
        conn.close()
    for problem in problems:
        print(f"smoke: FAIL {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"smoke: ok ({time.monotonic() - started:.0f}s; topic {topic}, tables {events_table}, {matches_table})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
