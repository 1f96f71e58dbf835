"""Every setting PatternAlarm reads, in one place.

Each component (stack CLI, generator, Flink job, scoring service, DAGs, Spark jobs) reads its
configuration through :func:`load` so that one environment variable means the same thing
everywhere. Defaults describe the single-machine stack that ``make up`` starts; override them with
environment variables (documented in docs/configuration.md, which a test keeps in sync with this file).

This module is imported by every virtualenv, so it uses the standard library only and has no
import-time side effects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
# Host names that mean this machine: a service there needs no TLS, and its pids are ours to see.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where a PostgreSQL database is and who logs in (Settings.db_endpoint)."""

    host: str
    port: int
    database: str
    user: str
    password: str

    @property
    def on_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def sslmode(self) -> str | None:
        """``disable`` on this machine: TLS there protects nothing, and its encryption is paid by the
        hottest sessions on both ends (a sixth of the job's window sink CPU when profiled;
        docs/performance.md); None elsewhere, leaving the client's default (prefer)."""
        return "disable" if self.on_loopback else None


def _url_host(host: str) -> str:
    """A host as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not an integer; set it to a whole number or unset it") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number; set it to a number or unset it") from exc


def _setting(env: str, default: object, doc: str) -> object:
    """Declare a setting: its environment variable, default and meaning travel together."""
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :func:`load`; fields name their environment variable."""

    cache_dir: str = _setting("PATTERNALARM_CACHE", "~/.cache/patternalarm",
                              "Virtualenvs and jars, outside the repo, keyed by hashes of their pins")
    var_dir: str = _setting("PA_VAR_DIR", str(REPO_ROOT / "var"), "Logs, pid files, service data (git-ignored)")

    # PostgreSQL
    pg_host: str = _setting("PA_PG_HOST", "127.0.0.1", "PostgreSQL host")
    pg_port: int = _setting("PA_PG_PORT", 5432, "PostgreSQL port")
    pg_user: str = _setting("PA_PG_USER", "patternalarm", "PostgreSQL role owning the project's databases")
    pg_password: str = _setting("PA_PG_PASSWORD", "patternalarm", "Password of that role")
    pg_database: str = _setting("PA_PG_DATABASE", "patternalarm", "Database holding alerts, incidents, labels")
    database_url: str = _setting("PA_DATABASE_URL", "",
                                 "Full URL of the alerts database; overrides the PA_PG_* parts when set")

    # Kafka
    kafka_bootstrap: str = _setting("PA_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers")
    kafka_port: int = _setting("PA_KAFKA_PORT", 9092, "Port of the local broker that `make up` starts")
    kafka_controller_port: int = _setting("PA_KAFKA_CONTROLLER_PORT", 9093, "KRaft controller port")
    topic_events: str = _setting("PA_TOPIC_EVENTS", "pa.events", "Topic of incoming events (key = actor_id)")
    topic_alerts: str = _setting("PA_TOPIC_ALERTS", "pa.alerts", "Topic the job publishes alerts to")
    topic_dead_letter: str = _setting("PA_TOPIC_DEAD_LETTER", "pa.dead-letter",
                                      "Malformed events with the reason they were rejected")
    topic_windows: str = _setting("PA_TOPIC_WINDOWS", "pa.windows",
                                  "Per-actor 1-minute feature windows, from the job to the window scorer")
    topic_partitions: int = _setting("PA_TOPIC_PARTITIONS", 4, "Partitions per topic (at least 2)")

    # Scoring service
    serving_host: str = _setting("PA_SERVING_HOST", "127.0.0.1", "Address the scoring API binds")
    serving_port: int = _setting("PA_SERVING_PORT", 8000, "Port of the scoring API")
    serving_url: str = _setting("PA_SERVING_URL", "", "Base URL clients use; default http://host:port")
    api_key: str = _setting("PA_API_KEY", "dev-only-change-me",
                            "Key for verdict and admin endpoints (header X-API-Key)")

    # Scoring of actor windows by the window scorer (streaming/window_scorer.py)
    scoring_batch_size: int = _setting("PA_SCORING_BATCH_SIZE", 100,
                                       "Most actor windows the scorer sends in one POST /predict/batch")
    scoring_max_wait_ms: int = _setting("PA_SCORING_MAX_WAIT_MS", 1000,
                                        "Longest a window waits for its micro-batch to fill before it is sent")
    scoring_timeout_s: float = _setting("PA_SCORING_TIMEOUT_S", 2.0,
                                        "Timeout of one scoring request (connect and response)")
    scoring_attempts: int = _setting("PA_SCORING_ATTEMPTS", 3,
                                     "Tries per micro-batch before its windows are stored as unscored")
    scoring_backoff_ms: int = _setting("PA_SCORING_BACKOFF_MS", 200,
                                       "Wait before the first retry; doubled before each further one")
    scoring_cooldown_s: float = _setting("PA_SCORING_COOLDOWN_S", 30.0,
                                         "After a batch exhausts its tries, later batches are unscored "
                                         "without a request for this long, then one request probes again")
    suspicious_threshold: float = _setting("PA_SUSPICIOUS_THRESHOLD", 0.8,
                                           "A window scored at least this with no rule alert of its actor "
                                           "becomes a suspicious_activity alert")
    rescore_interval_s: float = _setting("PA_RESCORE_INTERVAL_S", 30.0,
                                         "How often the window scorer retries windows stored unscored "
                                         "(scoring service was down); 0: never")
    history_lookup: bool = _setting("PA_HISTORY_LOOKUP", True,
                                    "The window scorer adds each window's history features (one PostgreSQL "
                                    "query per micro-batch, streaming/history_lookup.py) and stores them "
                                    "with the window; off: windows are scored as first seen (empty history)")
    scorer_nice: int = _setting("PA_SCORER_NICE", 10,
                                "The window scorer lowers its CPU priority by this much (0-19): where the job "
                                "and the scorer share cores, alerts go first and scores follow")
    scorer_workers: int = _setting("PA_SCORER_WORKERS", 2,
                                   "Scoring loops the window scorer runs side by side (threads in one consumer "
                                   "group, each with its own consumer and PostgreSQL connection; at most "
                                   "PA_TOPIC_PARTITIONS): while one waits for PostgreSQL or the scoring service "
                                   "the other works, so a minute's burst of windows is scored sooner")
    scorer_lookup_batches: int = _setting("PA_SCORER_LOOKUP_BATCHES", 3,
                                          "Micro-batches a scorer worker reads together for one history query "
                                          "(its cost per window falls with its size); each is still its own "
                                          "POST /predict/batch and its own transaction of at most "
                                          "PA_SCORING_BATCH_SIZE windows")
    scorer_db_nice: int = _setting("PA_SCORER_DB_NICE", 0,
                                   "Niceness for the scorer's PostgreSQL backend (0-19, a database on this host "
                                   "only). Off by default: at a live 1 M events/min 10 kept rule alerts at p50 "
                                   "1.7 s instead of 7.9 s, but at CRISIS the alerts' p99 rose above 1 s "
                                   "(docs/performance.md)")
    rescore_max_age_h: float = _setting("PA_RESCORE_MAX_AGE_H", 24.0,
                                        "Windows stored unscored longer ago than this are not retried: their "
                                        "alerts have long been triaged")

    # MLflow
    mlflow_port: int = _setting("PA_MLFLOW_PORT", 5000, "Port of the MLflow tracking server")
    mlflow_url: str = _setting("PA_MLFLOW_URL", "", "MLflow tracking URI; default http://127.0.0.1:port")
    model_name: str = _setting("PA_MODEL_NAME", "patternalarm-fraud", "Registered model name")
    model_alias: str = _setting("PA_MODEL_ALIAS", "champion", "Registry alias the scoring service serves")

    # Model metrics and backtests (spark_jobs/metrics.py)
    alert_budget: str = _setting("PA_ALERT_BUDGET", "1%",
                                 "Windows analysts can review, for precision/recall at the alert budget: a share "
                                 "of windows ('1%', '0.01') or alerts per UTC day ('50/day')")
    backtest_k: int = _setting("PA_BACKTEST_K", 100,
                               "k of the backtest's precision/recall@k and card precision@k (per day)")

    # Airflow
    airflow_port: int = _setting("PA_AIRFLOW_PORT", 8080, "Port of the Airflow webserver")

    # Flink
    flink_parallelism: int = _setting("PA_FLINK_PARALLELISM", 1,
                                      "Parallelism of the detection job (1 drains 1.5x faster than 2 on two "
                                      "cores: docs/performance.md)")
    flink_rest_port: int = _setting("PA_FLINK_REST_PORT", 8081,
                                    "Flink web UI / REST port of the detection job (0: any free port)")
    flink_heap: str = _setting("PA_FLINK_HEAP", "3g",
                               "Maximum heap of the detection job's JVM (its keyed state lives there; the "
                               "garbage collector took a third of its CPU at 1g, 16 % at 3g: "
                               "docs/performance.md)")
    flink_gc: str = _setting("PA_FLINK_GC", "g1",
                             "Garbage collector of the detection job's JVM: g1 (pauses under 0.2 s, "
                             "for the event->alert tail; marking from a fixed 75 % of the heap: at 1 M "
                             "events/min the job used 0.87-0.97 cores instead of 1.08-1.16) or "
                             "parallel (a quarter less CPU per event, for "
                             "draining a backlog, but pauses of 0.1-0.7 s and full collections of "
                             "1-3 s under load: docs/performance.md)")
    flink_checkpoint_ms: int = _setting("PA_FLINK_CHECKPOINT_MS", 15000,
                                     "Checkpoint interval: the most a restart replays; each checkpoint "
                                     "flushes the windows' pre-aggregation and copies all keyed state "
                                     "(at 5000 a seventh of the job's CPU: docs/performance.md). Alerts "
                                     "do not wait for it")
    flink_buffer_timeout_ms: int = _setting("PA_FLINK_BUFFER_TIMEOUT_MS", 10,
                                         "Longest a partly filled network buffer waits before it goes to the "
                                         "next operator; an alert and the watermark cross several such "
                                         "exchanges, so this adds up on the event->alert latency (Flink's "
                                         "default 100: CRISIS p99 0.2 s longer, docs/performance.md). 0 "
                                         "sends every record at once, at a CPU cost")
    watermark_delay_ms: int = _setting("PA_WATERMARK_DELAY_MS", 500,
                                       "Allowed event-time disorder within a Kafka partition; every pattern "
                                       "waits this long for the watermark, so it is the floor of the "
                                       "event->alert latency")
    state_ttl_days: int = _setting("PA_STATE_TTL_DAYS", 90,
                                   "Per-key state of the unbounded history windows (first seen, devices and "
                                   "IPs seen, purchase means) expires after this many days without an "
                                   "event of that key (processing time; 0: never). A key silent longer "
                                   "looks new again; must exceed every pattern's horizon (30 days)")
    idle_timeout_s: int = _setting("PA_IDLE_TIMEOUT_S", 30,
                                   "A Kafka partition silent this long stops holding back the watermark "
                                   "(0: never). Short values lose events as late while the job catches up "
                                   "on a backlog (restart, replay)")

    # History features (patternalarm/history_features.py)
    label_delay_min: int = _setting("PA_LABEL_DELAY_MIN", 60,
                                    "Minutes after a window ends before its label (ground truth, fraud verdict) "
                                    "may feed the fraud-rate history features of later windows; real "
                                    "operations wait days for chargebacks (the Fraud Detection Handbook uses 7 "
                                    "days). Training and serving must use the same value")
    history_retention_days: float = _setting("PA_HISTORY_RETENTION_DAYS", 38.0,
                                             "Scored windows (the history store) older than this many days are "
                                             "deleted daily (DAG history_store_retention, make prune-history): "
                                             "the retrain's 30-day lookback plus the 7-day history horizon and "
                                             "the label delay. Shorter than the horizon plus the delay is refused")

    # Generator
    generator_seed: int = _setting("PA_SEED", 42, "Default seed of the event generator")
    fraud_rate: float = _setting("PA_FRAUD_RATE", 0.002, "Share of generated events that start an attack")

    # Analyst simulator (streaming/analyst_simulator.py): verdicts from ground truth, for unattended loops
    analyst_delay_s: float = _setting("PA_ANALYST_DELAY_S", 30.0,
                                      "Seconds the simulated analyst waits after first seeing an incident")
    analyst_error_rate: float = _setting("PA_ANALYST_ERROR_RATE", 0.05,
                                         "Share of the simulated analyst's verdicts that are wrong (0-1)")

    def resolved_cache_dir(self) -> Path:
        return Path(os.path.expanduser(self.cache_dir))

    def resolved_var_dir(self) -> Path:
        return Path(os.path.expanduser(self.var_dir))

    def db_url(self, database: str | None = None, driver: str = "postgresql") -> str:
        """URL of one of the project's databases (alerts by default; also mlflow, airflow), on the
        server that PA_DATABASE_URL names when it is set, else on PA_PG_HOST:PA_PG_PORT."""
        if self.database_url:
            parts = urlsplit(self.database_url)
            path = parts.path if database is None else f"/{database}"
            return urlunsplit((driver, parts.netloc, path, parts.query, parts.fragment))
        name = database or self.pg_database
        host = _url_host(self.pg_host)
        # percent-encoded: a password holding '@', '/', ':' or '%' would otherwise change the URL's
        # meaning, and '$' would be expanded by Airflow, which reads the URL from its environment
        return (f"{driver}://{quote(self.pg_user, safe='')}:{quote(self.pg_password, safe='')}@{host}:"
                f"{self.pg_port}/{quote(name, safe='')}")

    def db_endpoint(self, database: str | None = None) -> DatabaseEndpoint:
        """db_url's parts, for clients that take them apart (JDBC, the loopback checks): so that
        PA_DATABASE_URL, when set, names the server for every client, not only the URL-taking ones."""
        parts = urlsplit(self.db_url(database))
        return DatabaseEndpoint(host=parts.hostname or self.pg_host, port=parts.port or 5432,
                                database=unquote(parts.path.lstrip("/")) or self.pg_database,
                                user=unquote(parts.username or self.pg_user),
                                password=unquote(parts.password or ""))

    def jdbc_url(self, database: str | None = None) -> str:
        end = self.db_endpoint(database)
        return f"jdbc:postgresql://{_url_host(end.host)}:{end.port}/{end.database}"

    def resolved_serving_url(self) -> str:
        return self.serving_url or f"http://{self.serving_host}:{self.serving_port}"

    def resolved_mlflow_url(self) -> str:
        return self.mlflow_url or f"http://127.0.0.1:{self.mlflow_port}"


def load() -> Settings:
    """Read the environment now (not at import) so tests and subprocesses can override it."""
    values: dict[str, object] = {}
    for f in fields(Settings):
        env = f.metadata["env"]
        if isinstance(f.default, bool):
            values[f.name] = _env(env, str(f.default)).lower() in ("1", "true", "yes")
        elif isinstance(f.default, int):
            values[f.name] = _env_int(env, f.default)
        elif isinstance(f.default, float):
            values[f.name] = _env_float(env, f.default)
        else:
            values[f.name] = _env(env, str(f.default))
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.topic_partitions < 2:
        raise ValueError("PA_TOPIC_PARTITIONS must be at least 2 so the job is tested across partitions")
    if not 1 <= settings.scorer_workers <= settings.topic_partitions:
        raise ValueError(f"PA_SCORER_WORKERS={settings.scorer_workers}: use 1 to PA_TOPIC_PARTITIONS "
                         f"({settings.topic_partitions}); a worker beyond the partitions would get none")
    if settings.scorer_lookup_batches < 1:
        raise ValueError(f"PA_SCORER_LOOKUP_BATCHES={settings.scorer_lookup_batches}: use 1 or more "
                         "(1: a history query per micro-batch)")
    return settings


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows: the source of docs/configuration.md."""
    # Defaults under the checkout are shown relative to it, so the page is the same in every clone.
    return [(f.metadata["env"], str(f.default).replace(str(REPO_ROOT), "<repo>"), f.metadata["doc"])
            for f in fields(Settings)]
