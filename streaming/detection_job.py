"""The detection job: Kafka events -> validation (dead letters) -> patterns and per-actor windows ->
alerts in PostgreSQL and on the alerts topic; feature windows on the windows topic, which the window
scorer (streaming/window_scorer.py) scores and stores, off the alert path.

    python -m streaming.detection_job          # runs until stopped; resumes from the last checkpoint

Everything is Flink SQL plus Java from streaming/udf: the Kafka source's format (patternalarm-event)
parses and validates each payload once, as it is read, against the contract it gets from
patternalarm/events.py; and two Java keyed process functions, the IoT detectors
(streaming/iot_detectors.py) and the gaming players' history (streaming/player_history.py): the parsed
events become a DataStream once, feeding them and, read back, every SQL statement
(streaming/event_stream.py), so records stay in the JVM. Exactly-once in effect: checkpoints commit
the Kafka offsets, the JDBC sinks upsert rows keyed by deterministic ids (alert ids derive from the
first matched transaction id), and the database groups an alert into an incident only on its first
insert. A restart from a checkpoint or a replay therefore rewrites rows instead of adding them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.stack import processes
from streaming import contract_sql, event_stream, iot_detectors, patterns, player_history
from patternalarm.features import FEATURES, sql_select_list
from patternalarm.history_features import WINDOW_MINUTES

if TYPE_CHECKING:
    from pyflink.common import JobClient
    from pyflink.table import StatementSet, TableEnvironment

log = logging.getLogger("patternalarm.detection")

JOB_NAME = "patternalarm-detection"
# Backquoted: PATTERN and MEASURES are keywords of Flink SQL.
ALERT_COLUMNS = ("alert_id", "`pattern`", "domain", "actor_id", "severity", "first_event_time", "event_time",
                 "transaction_ids", "`measures`")


def kafka_source_ddl(settings: Settings) -> str:
    return f"""
CREATE TABLE events_raw (
  {contract_sql.source_columns_sql()},
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  proc_time AS PROCTIME(),
  -- event time from the contract's timestamp; a malformed one falls back to the broker time so the
  -- watermark never sees NULL (the event itself goes to the dead-letter topic)
  event_time AS COALESCE(contract_time, CAST(kafka_ts AS TIMESTAMP(3))),
  WATERMARK FOR event_time AS event_time - INTERVAL '{settings.watermark_delay_ms / 1000:.3f}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '{settings.topic_events}',
  'properties.bootstrap.servers' = '{settings.kafka_bootstrap}',
  'properties.group.id' = '{JOB_NAME}-{settings.topic_events}',
  'properties.auto.offset.reset' = 'earliest',
  'scan.startup.mode' = 'group-offsets',
  {contract_sql.format_options_sql()}
)"""


def kafka_sink_ddl(name: str, columns: str, topic: str, settings: Settings, key_field: str | None = None) -> str:
    """A JSON sink; with ``key_field``, that column (a STRING) is also the record key, so Kafka
    partitions by it."""
    formats = ("'format' = 'json'" if key_field is None else
               f"'key.format' = 'raw', 'key.fields' = '{key_field}', 'value.format' = 'json', "
               "'value.fields-include' = 'ALL', 'value.json.timestamp-format.standard' = 'ISO-8601'")
    return f"""
CREATE TABLE {name} ({columns}) WITH (
  'connector' = 'kafka',
  'topic' = '{topic}',
  'properties.bootstrap.servers' = '{settings.kafka_bootstrap}',
  {formats},
  'sink.delivery-guarantee' = 'at-least-once'
)"""


# How often the sources emit watermarks and the JDBC sinks flush: each adds up to this much to the
# event->alert latency on top of the watermark delay (Flink's defaults, 200 ms each, cost 0.4 s).
WATERMARK_INTERVAL_MS = 50
JDBC_FLUSH_MS = 50


# Names the job's sessions in pg_stat_activity, next to the window scorer's and the service's.
APPLICATION_NAME = "patternalarm-detection-job"


def jdbc_url(settings: Settings) -> str:
    """stringtype=unspecified lets PostgreSQL cast JSON strings into jsonb columns. On loopback, no TLS:
    it protects nothing there, and its AES-GCM took a sixth of the window sink's CPU (profiled)."""
    url = f"{settings.jdbc_url()}?stringtype=unspecified&ApplicationName={APPLICATION_NAME}"
    sslmode = settings.db_endpoint().sslmode
    return url + f"&sslmode={sslmode}" if sslmode else url


def jdbc_sink_ddl(name: str, table: str, columns: str, settings: Settings) -> str:
    login = settings.db_endpoint()
    return f"""
CREATE TABLE {name} ({columns}) WITH (
  'connector' = 'jdbc',
  'url' = '{jdbc_url(settings)}',
  'table-name' = '{table}',
  'username' = '{login.user}',
  'password' = '{login.password}',
  'sink.buffer-flush.max-rows' = '500',
  'sink.buffer-flush.interval' = '{JDBC_FLUSH_MS}ms',
  'sink.max-retries' = '5'
)"""


ALERT_SCHEMA = """
  alert_id STRING, `pattern` STRING, domain STRING, actor_id STRING, severity STRING,
  first_event_time TIMESTAMP(3), event_time TIMESTAMP(3), emitted_at TIMESTAMP(3),
  transaction_ids STRING, `measures` STRING"""


def events_checked_sql() -> str:
    """Every event with its contract verdict and typed columns, as the source's format parsed them
    (the payload only for rejected events, which the dead-letter topic gets)."""
    return f"""
SELECT payload, kafka_partition, kafka_offset, proc_time, event_time, {", ".join(contract_sql.output_columns())}
FROM events_raw"""


def create_tables(t_env: "TableEnvironment", settings: Settings) -> None:
    for statement in contract_sql.create_functions_sql(udf_jar()):
        t_env.execute_sql(statement)
    t_env.execute_sql(kafka_source_ddl(settings))
    # The IoT detectors and the player history are DataStream functions (event-time timers; one state
    # lookup per purchase instead of four OVER windows): the parsed events go through one Table ->
    # DataStream conversion that feeds them and, read back, every SQL statement below, so the job keeps
    # one Kafka source and one parse (streaming/event_stream.py says why).
    stream = event_stream.to_stream(t_env, t_env.sql_query(events_checked_sql()))
    t_env.create_temporary_view("events_checked", event_stream.as_table(t_env, stream.j_stream))
    t_env.create_temporary_view("iot_alerts", iot_detectors.attach(t_env, stream))
    if player_history.needed():
        t_env.create_temporary_view(player_history.VIEW, player_history.attach(t_env, stream, settings.state_ttl_days))
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW events AS
SELECT {contract_sql.event_view_columns()}
FROM events_checked WHERE reject_reason IS NULL""")
    for domain in patterns.domains_read():  # the patterns read their domain's valid events only
        t_env.create_temporary_view(f"events_checked_{domain}", event_stream.domain_table(t_env, stream, domain))
        t_env.execute_sql(f"CREATE TEMPORARY VIEW events_{domain} AS "
                          f"SELECT {contract_sql.event_view_columns()} FROM events_checked_{domain}")
    t_env.execute_sql(kafka_sink_ddl(
        "dead_letters", "payload STRING, reason STRING, kafka_partition INT, kafka_offset BIGINT, "
        "rejected_at TIMESTAMP(3)", settings.topic_dead_letter, settings))
    t_env.execute_sql(kafka_sink_ddl("alerts_topic", ALERT_SCHEMA, settings.topic_alerts, settings))
    t_env.execute_sql(jdbc_sink_ddl("alerts_db", "alerts", ALERT_SCHEMA + ", PRIMARY KEY (alert_id) NOT ENFORCED",
                                    settings))
    t_env.execute_sql(windows_sink_ddl(settings))
    t_env.execute_sql(jdbc_sink_ddl(
        "stream_throughput_db", "stream_throughput",
        "window_start TIMESTAMP(3), window_end TIMESTAMP(3), valid_events BIGINT, invalid_events BIGINT, "
        "PRIMARY KEY (window_start) NOT ENFORCED", settings))


def alerts_query() -> str:
    """All patterns' alerts (SQL patterns and the IoT detectors), stamped with the moment the job
    emitted them."""
    # Times as plain TIMESTAMP(3): a pattern may pass its rowtime through, and a UNION cannot mix a time
    # attribute with the IoT detectors' plain timestamps.
    columns = ", ".join(f"CAST({c} AS TIMESTAMP(3)) AS {c}" if c in ("first_event_time", "event_time") else c
                        for c in ALERT_COLUMNS)
    selects = [f"SELECT {columns} FROM ({patterns.render(p)})" for p in patterns.enabled()]
    selects.append(iot_detectors.alerts_select("iot_alerts"))
    union = "\nUNION ALL\n".join(selects)
    return f"""
SELECT alert_id, `pattern`, domain, actor_id, severity, first_event_time, event_time,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)) AS emitted_at, transaction_ids, `measures`
FROM ({union})"""


def windows_sink_ddl(settings: Settings) -> str:
    """The windows topic: one flat JSON object per actor window (key = actor_id, ISO-8601 times),
    consumed by the window scorer (streaming/window_scorer.py), which scores it and stores it in
    actor_windows. Only JVM operators: the job never waits for the scoring service."""
    features = ", ".join(f"{f.name} DOUBLE" for f in FEATURES)
    columns = (f"actor_id STRING, domain STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), "
               f"event_count BIGINT, {features}, counterparties ARRAY<STRING>")
    return kafka_sink_ddl("windows_topic", columns, settings.topic_windows, settings, key_field="actor_id")


def actor_windows_query() -> str:
    """Per-actor tumbling feature windows (WINDOW_MINUTES): the model's inputs, from the shared feature
    definitions, with the window's distinct counterparties (for the history features)."""
    return f"""
SELECT actor_id, domain, window_start, window_end, CAST(txn_count AS BIGINT) AS event_count,
  {", ".join(f.name for f in FEATURES)}, counterparties
FROM (
  SELECT actor_id, domain, window_start, window_end,
  {sql_select_list()},
  ARRAY_AGG(DISTINCT counterparty) FILTER (WHERE counterparty IS NOT NULL) AS counterparties
  FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(event_time), INTERVAL '{WINDOW_MINUTES}' MINUTE))
  GROUP BY actor_id, domain, window_start, window_end
)"""


def build_pipeline(t_env: "TableEnvironment", settings: Settings) -> "StatementSet":
    """Declare sources, views and sinks; return the statement set that runs them as one job (with the
    IoT DataStream branch: run it with :func:`submit`, not StatementSet.execute, which would leave
    that branch out)."""
    patterns.check_state_ttl(settings.state_ttl_days)
    create_tables(t_env, settings)
    t_env.execute_sql(f"CREATE TEMPORARY VIEW all_alerts AS {alerts_query()}")
    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO alerts_db SELECT * FROM all_alerts")
    statements.add_insert_sql("INSERT INTO alerts_topic SELECT * FROM all_alerts")
    statements.add_insert_sql("""
INSERT INTO dead_letters
SELECT payload, reject_reason, kafka_partition, kafka_offset, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3))
FROM events_checked WHERE reject_reason IS NOT NULL""")
    statements.add_insert_sql(f"INSERT INTO windows_topic {actor_windows_query()}")
    statements.add_insert_sql("""
INSERT INTO stream_throughput_db
SELECT window_start, window_end,
  SUM(CASE WHEN reject_reason IS NULL THEN 1 ELSE 0 END),
  SUM(CASE WHEN reject_reason IS NULL THEN 0 ELSE 1 END)
FROM TABLE(TUMBLE(TABLE events_checked, DESCRIPTOR(proc_time), INTERVAL '10' SECOND))
GROUP BY window_start, window_end""")
    return statements


def plan_fingerprint() -> str:
    """A hash of the SQL the job runs (patterns with their thresholds, the parse, the feature
    windows). Flink cannot map a checkpoint onto a different plan and refuses to start, so a changed
    plan gets its own checkpoint folder: the new job starts from the consumer group's committed
    offsets instead, losing only the partial pattern and window state of the old plan."""
    # The TTL too: Flink cannot restore state kept without TTL into state with one, or the reverse.
    ttl_days = config.load().state_ttl_days
    text = "\n".join([contract_sql.source_columns_sql(), contract_sql.format_options_sql(),
                      events_checked_sql(), alerts_query(), actor_windows_query(),
                      f"state ttl {ttl_days} d", iot_detectors.plan_text(),
                      event_stream.plan_text(patterns.domains_read()),
                      player_history.plan_text(ttl_days) if player_history.needed() else ""])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def checkpoint_dir(settings: Settings) -> Path:
    return settings.resolved_var_dir() / "flink" / "checkpoints" / plan_fingerprint()


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest complete checkpoint of any earlier run (a chk-N folder holding _metadata)."""
    candidates = list(checkpoint_dir(settings).glob("*/chk-*/_metadata"))
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime).parent


def prune_checkpoints(keep: Path) -> None:
    """Remove the checkpoint folders of earlier runs other than the one being resumed from: each run
    writes into a folder of its own job id and retains its last checkpoints on cancellation, so
    without this every restart left its folder behind."""
    for run in keep.parent.parent.iterdir():
        if run.is_dir() and run != keep.parent:
            shutil.rmtree(run, ignore_errors=True)


def working_dir(settings: Settings) -> Path:
    """This process's Flink working directory (the local cluster's blob store: the job's jars, some
    25 MB), under var/ and one per process. A killed job cannot remove its own, so each start
    removes those of processes that are gone: in /tmp, where Flink puts them by default, hundreds
    had piled up."""
    base = settings.resolved_var_dir() / "flink" / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        if old.name.isdigit() and int(old.name) != os.getpid() and not processes.alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    mine = base / str(os.getpid())
    mine.mkdir(exist_ok=True)
    return mine


def connector_jars() -> list[str]:
    """file:// URLs of the Flink connector jars fetched by scripts/jars.sh (pom.xml)."""
    folder = os.environ.get("PA_FLINK_JARS")
    if not folder:
        raise RuntimeError("PA_FLINK_JARS is not set: run the job through `make up` or set it to the "
                           "flink folder that scripts/jars.sh prints")
    jars = sorted(Path(folder).glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no jars in {folder}: run scripts/jars.sh")
    return [p.resolve().as_uri() for p in jars]


def udf_jar() -> str:
    """file:// URL of the job's Java (event format, functions, IoT detectors) that scripts/udf.sh
    builds from streaming/udf."""
    jar = os.environ.get("PA_UDF_JAR")
    if not jar:
        raise RuntimeError("PA_UDF_JAR is not set: run the job through `make up` or set it to the "
                           "UDF_JAR path that scripts/udf.sh prints")
    if not Path(jar).is_file():
        raise RuntimeError(f"PA_UDF_JAR={jar} does not exist: run scripts/udf.sh")
    return Path(jar).resolve().as_uri()


def table_environment(udf_jar_uri: str, options: dict[str, str] | None = None) -> "TableEnvironment":
    """A streaming table environment on a local execution environment whose user class loader holds
    the job's Java (streaming/udf).

    Why not TableEnvironment.create: its execution environment uses the application class loader,
    and with checkpointing on, the client compiles every generated operator before submitting
    (StreamingJobGraphGenerator.preValidate) with that loader, which cannot see a UDF jar added by
    `pipeline.jars`, `ADD JAR` or `USING JAR` ("Cannot determine simple type name 'io'", FLINK-28897,
    still so in PyFlink 1.20.3). "local" + attached is what LocalStreamEnvironment sets itself.

    ``options`` go into the execution environment's own configuration: the job runs through it
    (:func:`submit`), and options set on the table config only would not reach it (checkpointing,
    pipeline.jars, the restore path). They are set on the table config too: the planner reads its
    options there, and PyFlink puts `pipeline.jars` set there on the loader that finds connectors.
    """
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.java_gateway import get_gateway
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    gateway = get_gateway()
    jvm = gateway.jvm
    urls = gateway.new_array(jvm.java.net.URL, 1)
    urls[0] = jvm.java.net.URL(udf_jar_uri)
    loader = jvm.java.net.URLClassLoader(urls, jvm.Thread.currentThread().getContextClassLoader())
    # Py4J resolves `jvm.io.patternalarm...` (the IoT detector classes) through this thread's loader.
    jvm.Thread.currentThread().setContextClassLoader(loader)
    j_conf = jvm.org.apache.flink.configuration.Configuration()
    j_conf.setString("execution.target", "local")
    j_conf.setString("execution.attached", "true")
    for key, value in (options or {}).items():
        j_conf.setString(key, value)
    j_env = jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment(j_conf, loader)
    t_env = StreamTableEnvironment.create(StreamExecutionEnvironment(j_env), EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    for key, value in (options or {}).items():
        conf.set(key, value)
    return t_env


def create_environment(settings: Settings, resume: bool = True) -> "TableEnvironment":
    options = {
        "pipeline.name": JOB_NAME,
        # the UDF jar too: the IoT detectors are DataStream operators, which USING JAR does not ship
        "pipeline.jars": ";".join([*connector_jars(), udf_jar()]),
        "parallelism.default": str(settings.flink_parallelism),
        "table.local-time-zone": "UTC",
        # SQL operators never keep a reference to an input row they did not copy, so chained operators
        # may hand rows over without the defensive deep copy (about 7 % of the job's CPU, profiled).
        "pipeline.object-reuse": "true",
        "table.exec.source.idle-timeout": f"{settings.idle_timeout_s} s",
        "pipeline.auto-watermark-interval": f"{WATERMARK_INTERVAL_MS} ms",
        "execution.buffer-timeout": f"{settings.flink_buffer_timeout_ms} ms",
        # Bounds the unbounded OVER windows' keys (docs/patterns.md, "State"); windows and CEP clean up
        # by the watermark and do not use it.
        "table.exec.state.ttl": f"{settings.state_ttl_days} d",
        "execution.checkpointing.interval": f"{settings.flink_checkpoint_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.dir": checkpoint_dir(settings).resolve().as_uri(),
        "execution.checkpointing.num-retained": "3",
        "io.tmp.dirs": str(working_dir(settings)),
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "10",
        "restart-strategy.fixed-delay.delay": "2 s",
    }
    if settings.flink_rest_port:
        options["rest.port"] = str(settings.flink_rest_port)
    checkpoint = latest_checkpoint(settings) if resume else None
    if checkpoint:
        options["execution.state-recovery.path"] = checkpoint.resolve().as_uri()
        log.info("resuming from checkpoint %s", checkpoint)
        prune_checkpoints(keep=checkpoint)
    return table_environment(udf_jar(), options)


# PA_FLINK_GC's choices (docs/performance.md measured both on this job). G1 starts its concurrent
# marking at a fixed 75 % of the heap instead of its adaptive threshold: the job's old generation
# fills mostly with state that dies soon after promotion (one cycle found 2.3 GB old, 0.6 GB live),
# so every cycle marked the same ~0.6 GB for little; with the adaptive threshold at 1 M events/min
# marking and its extra pauses took ~0.1-0.2 of the job's 1.08-1.16 cores, with the fixed one a single
# cycle ran and the job used 0.87-0.97 cores (docs/performance.md "2026-12-07, night").
G1_OPTIONS = "-XX:+UseG1GC -XX:-G1UseAdaptiveIHOP -XX:InitiatingHeapOccupancyPercent=75"
GARBAGE_COLLECTORS = {"g1": G1_OPTIONS, "parallel": "-XX:+UseParallelGC"}


def jvm_args(settings: Settings) -> str:
    """The JVM's options from the settings: a bounded heap and the chosen collector."""
    collector = GARBAGE_COLLECTORS.get(settings.flink_gc)
    if collector is None:
        raise ValueError(f"PA_FLINK_GC={settings.flink_gc!r} is not a collector this job knows: set it to "
                         f"one of {', '.join(GARBAGE_COLLECTORS)}")
    return f"-Xmx{settings.flink_heap} {collector}"


def jvm_environment(settings: Settings) -> None:
    """Set before the JVM starts: UTC (JDBC timestamps), heap and collector (JVM_ARGS, when set,
    wins), Flink's logs under var/."""
    os.environ.setdefault("TZ", "UTC")
    os.environ.setdefault("JVM_ARGS", jvm_args(settings))
    log_dir = settings.resolved_var_dir() / "log" / "flink"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(log_dir))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = config.load()
    jvm_environment(settings)
    t_env = create_environment(settings, resume=os.environ.get("PA_FLINK_RESUME", "1") != "0")
    client = submit(t_env, build_pipeline(t_env, settings))
    job_id = client.get_job_id()
    log.info("detection job %s running", job_id)
    print(f"detection job {job_id} running", flush=True)
    client.get_job_execution_result().result()
    return 0


def submit(t_env: "TableEnvironment", statements: "StatementSet") -> "JobClient":
    """Run the SQL statements and the IoT DataStream branch as one job: the statements become
    transformations of the execution environment the IoT branch already lives in."""
    from pyflink.datastream import StreamExecutionEnvironment

    statements.attach_as_datastream()
    env = StreamExecutionEnvironment(t_env._j_tenv.execEnv())  # the Java environment table_environment made
    return env.execute_async(JOB_NAME)


if __name__ == "__main__":
    sys.exit(main())
