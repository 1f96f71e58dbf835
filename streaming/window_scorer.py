"""The window scorer: actor windows from the windows topic -> POST /predict/batch -> actor_windows.

The detection job publishes every per-actor 1-minute feature window to PA_TOPIC_WINDOWS. This
process consumes them in micro-batches (at most PA_SCORING_BATCH_SIZE windows, waiting at most
PA_SCORING_MAX_WAIT_MS for a batch to fill), scores each batch with one request through
streaming/scoring_client.py (retries, backoff, circuit breaker) and upserts the windows with their
scores into actor_windows, whose triggers attach scores to alerts and raise suspicious_activity
alerts (sql/migrations/004_window_scoring.sql). It is the only writer of actor_windows. When
windows queue up (a minute's burst), a worker reads up to PA_SCORER_LOOKUP_BATCHES micro-batches at
once and gives them one history query, whose cost per window falls with its size; each micro-batch
is still its own request and its own transaction (docs/performance.md "2026-12-06, night").

Why a separate process and not an operator of the job: windows close together at each minute
boundary (one per active actor: ~48,000 at once at CRISIS), and scoring them synchronously inside the
job backpressured its shared source, so alerts waited behind scoring (docs/performance.md). Here the
job's alerts never wait for the scoring service.

Workers: PA_SCORER_WORKERS loops run side by side in this process (threads in one consumer group,
each with its own consumer, PostgreSQL connection and scoring client), because one loop spends most
of its time waiting (for the history query, the service, the upsert and its triggers) and a minute's
windows arrive together: with two, one works while the other waits, and their database backends
use both cores (docs/status.md, "2026-12-06"). Each worker owns its partitions, hence its
actors; the counterparty rollups both write are locked in key order per statement (migration 015),
so they do not deadlock. Only the first worker rescores.

Delivery: Kafka offsets are committed only after the batch's database transaction commits, so a
crash re-reads at most the uncommitted batches, and the upsert makes a re-read (or the job's
at-least-once replay of a window) rewrite the same row: exactly-once in effect. While PostgreSQL is
down the batch is retried, never skipped. While the scoring service is down windows are stored
`unscored` at once (nothing waits for it); every PA_RESCORE_INTERVAL_S the scorer scores them again,
newest first, once the service answers.

score_status per window: ``scored``; ``unscored`` (service unavailable after the retries, breaker
open, or a feature not finite); ``not_applicable`` (iot: the model is trained for payments and gaming,
so those windows are never sent). ``suspicious`` is score >= PA_SUSPICIOUS_THRESHOLD.

    python -m streaming.window_scorer              # runs until SIGTERM (the stack's window-scorer)
    python -m streaming.window_scorer --once       # drain what is there, rescore once, exit
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from patternalarm import config
from patternalarm.config import Settings
from patternalarm.features import FEATURE_NAMES
from patternalarm.history_features import HISTORY_FEATURE_NAMES
from streaming.history_lookup import HistoryKey, history_features
from streaming.scoring_client import BatchResult, RetryPolicy, ScoringClient, WindowFeatures

log = logging.getLogger("patternalarm.window_scorer")

SCORED, UNSCORED, NOT_APPLICABLE = "scored", "unscored", "not_applicable"
UNSCORED_DOMAINS = frozenset({"iot"})  # the model learned payments and gaming fraud only
RESCORE_BATCHES_PER_PASS = 20  # bounds a pass so the live windows do not wait behind a long backlog
DB_RETRY_MAX_S = 5.0
# Where the loop's wall time goes (WindowScorer.stage_seconds): reading the topic, parsing the
# records, the history query, the scoring request, the upsert with its triggers and the commit,
# and Kafka's offset commit.
STAGES = ("consume", "parse", "history", "score", "store", "commit")
SCHEDSTAT = Path("/proc/thread-self/schedstat")
# JIT off for the scorer's session: the history query's estimated cost grows faster than its batch
# (a nested-loop estimate), and past jit_above_cost PostgreSQL spends ~200 ms compiling it, where it
# runs in ~20 ms per 100 windows without (measured on a 1 M events/min run's tables: at 300 windows
# 310 ms with JIT, ~65 ms without; docs/performance.md "2026-12-06, night"). Its statements are
# many and short, which JIT never pays off for.
SESSION_SETTINGS = {"jit": "off"}
SESSION_OPTIONS = " ".join(f"-c {name}={value}" for name, value in SESSION_SETTINGS.items())
APPLICATION_NAME = "patternalarm-window-scorer"  # who the session is, in pg_stat_activity


def thread_clock() -> tuple[float, float]:
    """(CPU seconds, seconds spent runnable but waiting for a core) of the calling thread; the second
    from the kernel's scheduler statistics, zero where there are none. The two tell a stage that
    waits for the broker or the database (neither grows) from one starved of CPU (the second grows:
    a niced scorer on busy cores)."""
    try:
        waiting_ns = int(SCHEDSTAT.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        waiting_ns = 0
    return time.thread_time(), waiting_ns / 1e9


class MalformedWindow(ValueError):
    """A record on the windows topic that is not a window the job writes (a bug, or a foreign
    producer): it goes to the dead-letter topic with this reason, the batch goes on."""


@dataclass(frozen=True)
class Window:
    actor_id: str
    domain: str
    window_start: datetime
    window_end: datetime
    event_count: int
    features: dict[str, float | None]  # FEATURE_NAMES; None where the job wrote null
    counterparties: tuple[str, ...]
    history: dict[str, float] | None = None  # HISTORY_FEATURE_NAMES as logged when first scored

    @property
    def key(self) -> tuple[str, datetime]:
        return self.actor_id, self.window_start


@dataclass(frozen=True)
class Score:
    score: float | None
    status: str
    model_version: str | None
    suspicious: bool


def _timestamp(value: Any, field_name: str) -> datetime:
    """The job writes ISO-8601 without a zone; its session time zone is UTC."""
    if not isinstance(value, str):
        raise MalformedWindow(f"{field_name} is {value!r}, not an ISO-8601 timestamp")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedWindow(f"{field_name} {value!r}: {exc}") from exc
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _feature(data: dict[str, Any], name: str) -> float | None:
    """A feature's number; None when absent or not finite (a bare NaN in the JSON): the window is
    then stored with null there and left unscored, instead of failing the batch's insert (jsonb has
    no NaN)."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedWindow(f"feature {name} is {value!r}, not a number")
    return float(value) if math.isfinite(value) else None


def parse_window(value: bytes | None) -> Window:
    """A windows-topic record as the job writes it (detection_job.windows_sink_ddl)."""
    try:
        data = json.loads(value or b"")
    except ValueError as exc:
        raise MalformedWindow(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedWindow("not a JSON object")
    missing = [k for k in ("actor_id", "domain", "window_start", "window_end", "event_count", *FEATURE_NAMES)
               if k not in data]
    if missing:
        raise MalformedWindow(f"missing fields {missing}")
    actor_id, domain = data["actor_id"], data["domain"]
    if not isinstance(actor_id, str) or not actor_id or not isinstance(domain, str) or not domain:
        raise MalformedWindow("actor_id and domain must be non-empty strings")
    count = data["event_count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise MalformedWindow(f"event_count is {count!r}, not a positive integer")
    parties = data.get("counterparties") or []
    if not isinstance(parties, list):
        raise MalformedWindow("counterparties is not a list")
    return Window(actor_id, domain, _timestamp(data["window_start"], "window_start"),
                  _timestamp(data["window_end"], "window_end"), count,
                  {name: _feature(data, name) for name in FEATURE_NAMES},
                  tuple(sorted({str(p) for p in parties if p is not None})))


def model_features(cursor: Any, windows: Sequence[Window], with_history: bool) -> list[dict[str, float | None]]:
    """The feature dict the model gets for each window, in order: the window's own aggregates and,
    ``with_history``, the actor's and counterparties' history (patternalarm/history_features.py),
    one query per batch, for the windows that will be sent (not iot). A window scored before keeps
    the history it was first scored with, so a rescore sees what the first score saw (and training
    what serving saw: the dict is stored)."""
    wanted = [w for w in windows if w.domain not in UNSCORED_DOMAINS and (w.history is not None or with_history)]
    lookup = [w for w in wanted if w.history is None]
    found = history_features(cursor, [HistoryKey(w.actor_id, w.window_start, list(w.counterparties))
                                      for w in lookup]) if lookup else []
    history = {w.key: h for w, h in zip(lookup, found, strict=True)}
    history.update({w.key: w.history for w in wanted if w.history is not None})
    return [{**w.features, **history[w.key]} if w.key in history else dict(w.features) for w in windows]


def _finite(values: Sequence[float | None]) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def score_windows(client: ScoringClient, windows: Sequence[Window],
                  features: Sequence[dict[str, float | None]], threshold: float) -> list[Score]:
    """One request for the windows the model applies to; a Score for every window, in order."""
    sendable = [i for i, w in enumerate(windows)
                if w.domain not in UNSCORED_DOMAINS and _finite(list(features[i].values()))]
    request = [WindowFeatures(windows[i].actor_id, windows[i].domain, features[i]) for i in sendable]
    result = client.score(request) if request else BatchResult([], None, 0)
    out = [Score(None, NOT_APPLICABLE if w.domain in UNSCORED_DOMAINS else UNSCORED, None, False)
           for w in windows]
    if result.scores is not None:
        for i, score in zip(sendable, result.scores):
            out[i] = Score(score, SCORED, result.model_version, score >= threshold)
    elif request:
        log.warning("%d windows stored unscored: %s", len(request), result.error)
    return out


UPSERT = """
INSERT INTO actor_windows (actor_id, domain, window_start, window_end, event_count, amount_sum, features,
                           counterparties, score, score_status, model_version, suspicious, scored_at)
VALUES %s
ON CONFLICT (actor_id, window_start) DO UPDATE SET
    domain = EXCLUDED.domain, window_end = EXCLUDED.window_end, event_count = EXCLUDED.event_count,
    amount_sum = EXCLUDED.amount_sum, features = EXCLUDED.features, counterparties = EXCLUDED.counterparties,
    score = EXCLUDED.score, score_status = EXCLUDED.score_status, model_version = EXCLUDED.model_version,
    suspicious = EXCLUDED.suspicious, scored_at = EXCLUDED.scored_at"""

UNSCORED_BATCH = """
SELECT actor_id, domain, window_start, window_end, event_count, features, counterparties
  FROM actor_windows
 WHERE score_status = 'unscored' AND stored_at > clock_timestamp() - make_interval(secs => %s)
 ORDER BY stored_at DESC LIMIT %s"""


def _row(window: Window, features: dict[str, float | None], score: Score, scored_at: datetime) -> tuple[Any, ...]:
    return (window.actor_id, window.domain, window.window_start, window.window_end, window.event_count,
            window.features.get("amount_sum"), json.dumps(features), list(window.counterparties),
            score.score, score.status, score.model_version, score.suspicious, scored_at)


def upsert(cur: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """One INSERT ... ON CONFLICT statement for the rows (_row): the per-statement triggers of
    migrations 015 and 016 then run once for all of them."""
    from psycopg2.extras import execute_values

    if rows:
        execute_values(cur, UPSERT, rows, page_size=len(rows))


def by_window_start(windows: Sequence[Window]) -> list[list[Window]]:
    """The windows grouped by start, earliest first. A batch read while the scorer is behind can
    hold two minutes of windows; stored group by group, a later minute's history query sees the
    earlier minute's windows, as training's history does, instead of missing them because they were
    read together."""
    groups: dict[datetime, list[Window]] = {}
    for window in windows:
        groups.setdefault(window.window_start, []).append(window)
    return [groups[start] for start in sorted(groups)]


def latest_per_key(windows: Sequence[Window]) -> list[Window]:
    """One window per (actor, start), the last read: a batch may hold a replayed copy, and one
    INSERT ... ON CONFLICT cannot touch the same row twice."""
    return list({w.key: w for w in windows}.values())


def lower_backend_priority(conn: Any, settings: Settings) -> int | None:
    """Lower the priority of the scorer's PostgreSQL backend by PA_SCORER_DB_NICE; its pid, if done.

    The history queries and the upserts with their triggers run in that backend process, not in the
    scorer, so PA_SCORER_NICE leaves them competing with the job at full priority. Measured: at a
    live 1 M events/min, niceness 10 here kept rule alerts at p50 1.7 s instead of 7.9 s; at CRISIS
    the alerts' p99 rose to 1.0-2.3 s (0.9-0.95 s without), likely because the niced backend holds
    incident rows that the job's alert inserts wait for. Hence off by default. Done only for a
    database on this host (a pid means nothing elsewhere) and when allowed to renice its processes;
    otherwise logged, and scoring goes on at full priority."""
    if settings.scorer_db_nice <= 0 or not settings.db_endpoint().on_loopback:
        return None
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = int(cur.fetchone()[0])
    conn.rollback()  # end the transaction that SELECT opened
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            raise OSError("not a local postgres process")
        os.setpriority(os.PRIO_PROCESS, pid, min(19, settings.scorer_db_nice))
    except OSError as exc:
        log.info("could not lower the priority of PostgreSQL backend %s (%s): the scorer's database work "
                 "competes with the job at full priority", pid, exc)
        return None
    return pid


class WindowStore:
    """actor_windows through one connection; every write retried until it commits (or stop)."""

    def __init__(self, settings: Settings, stopping: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings
        self.stopping = stopping
        self.conn: Any = None

    def _connect(self) -> Any:
        import psycopg2

        if self.conn is None or self.conn.closed:
            tls = {"sslmode": mode} if (mode := self.settings.db_endpoint().sslmode) else {}
            self.conn = psycopg2.connect(self.settings.db_url(), options=SESSION_OPTIONS,
                                         application_name=APPLICATION_NAME, **tls)
            lower_backend_priority(self.conn, self.settings)
        return self.conn

    def transact(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work(cursor)`` in one transaction; on a database error wait (doubling up to
        DB_RETRY_MAX_S), reconnect and run it again. Raises only when asked to stop meanwhile, so
        the caller does not commit its Kafka offsets and the windows are read again."""
        import psycopg2

        wait = 0.2
        while True:
            try:
                conn = self._connect()
                with conn, conn.cursor() as cur:
                    return work(cur)
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if self.stopping():
                    raise
                log.warning("database unavailable, retrying in %.1f s: %s", wait, str(exc).strip()[:200])
                if self.conn is not None and not self.conn.closed:
                    self.conn.close()
                time.sleep(wait)
                wait = min(DB_RETRY_MAX_S, wait * 2)

    def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.close()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _window_from_row(row: tuple[Any, ...]) -> Window:
    """A stored window; its history only if it was stored with all of it."""
    actor_id, domain, start, end, count, features, parties = row
    history = ({n: float(features[n]) for n in HISTORY_FEATURE_NAMES}
               if all(features.get(n) is not None for n in HISTORY_FEATURE_NAMES) else None)
    return Window(actor_id, domain, start, end, int(count),
                  {name: _number(features.get(name)) for name in FEATURE_NAMES}, tuple(parties or ()), history)


class WindowScorer:
    """The consume -> score -> store -> commit loop, and the rescoring of unscored windows."""

    def __init__(self, settings: Settings, client: ScoringClient | None = None, group_id: str | None = None) -> None:
        from confluent_kafka import Consumer, Producer

        self.settings = settings
        self.stop_requested = False
        self.client = client or ScoringClient(settings.resolved_serving_url(), settings.api_key,
                                              retry_policy(settings))
        self.store = WindowStore(settings, lambda: self.stop_requested)
        self.consumer = Consumer({
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group_id or f"patternalarm-window-scorer-{settings.topic_windows}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })
        self.consumer.subscribe([settings.topic_windows])
        self.dead_letters = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
                                      "enable.idempotence": True})
        self.counts = {SCORED: 0, UNSCORED: 0, NOT_APPLICABLE: 0, "dead_letters": 0, "rescored": 0}
        self.stage_seconds = {stage: 0.0 for stage in STAGES}
        self.stage_cpu_seconds = {stage: 0.0 for stage in STAGES}  # the loop thread's own CPU
        self.stage_runqueue_seconds = {stage: 0.0 for stage in STAGES}  # runnable, waiting for a core
        # consume calls, the records they returned and the calls that returned fewer than a batch
        # (the topic drained, or PA_SCORING_MAX_WAIT_MS ran out first)
        self.consumption = {"calls": 0, "records": 0, "short_calls": 0}
        self.consumer_closed = False
        self.last_rescore = time.monotonic()

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Adds the wall time of the block to ``stage_seconds[stage]``: where a falling-behind
        scorer spends its rounds (heartbeat, `make status`, bench_latency)."""
        began, (cpu, waiting) = time.perf_counter(), thread_clock()
        try:
            yield
        finally:
            self.stage_seconds[stage] += time.perf_counter() - began
            cpu_now, waiting_now = thread_clock()
            self.stage_cpu_seconds[stage] += cpu_now - cpu
            self.stage_runqueue_seconds[stage] += waiting_now - waiting

    def lag(self) -> int | None:
        """Windows on the topic not yet read by this scorer (its assigned partitions' end offsets
        minus its positions, from the consumer's cache: no request); None before an assignment and
        once closed (the last heartbeat is written after close())."""
        if self.consumer_closed:
            return None
        assigned = self.consumer.assignment()
        if not assigned:
            return None
        behind = 0
        for tp in self.consumer.position(assigned):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                behind += max(0, high - tp.offset)
        return behind

    # --- live windows --------------------------------------------------------------------------

    def poll_batch(self) -> int:
        """Read up to PA_SCORER_LOOKUP_BATCHES micro-batches, look up their history together, score
        and store each (one request, one transaction), commit their offsets; windows read. A window
        still waits at most PA_SCORING_MAX_WAIT_MS to be read: a bigger read only takes more of what
        is already there."""
        with self.timed("consume"):
            messages = self.consumer.consume(num_messages=read_size(self.settings),
                                             timeout=max(0.001, self.settings.scoring_max_wait_ms / 1000.0))
        self.consumption["calls"] += 1
        self.consumption["records"] += len(messages)
        self.consumption["short_calls"] += len(messages) < read_size(self.settings)
        windows: list[Window] = []
        sources: dict[tuple[str, datetime], Any] = {}  # window -> its message, for a dead letter
        with self.timed("parse"):
            for message in messages:
                if message.error():
                    log.warning("consumer error: %s", message.error())
                    continue
                try:
                    window = parse_window(message.value())
                except MalformedWindow as exc:
                    self._dead_letter(message, str(exc))
                    continue
                windows.append(window)
                sources[window.key] = message
        if windows:
            self._store_or_isolate(latest_per_key(windows), sources)
        if messages:
            with self.timed("commit"):
                self.dead_letters.flush(30)  # dead letters are on the broker before their offsets commit
                self.consumer.commit(asynchronous=False)
        return len(windows)

    def _store_or_isolate(self, windows: Sequence[Window], sources: dict[tuple[str, datetime], Any]) -> None:
        """Store the batch; if the database refuses its content (not a connection problem: those
        are retried), store the windows one by one and send the refused one to the dead letters
        with the database's reason, so one bad window neither blocks the topic nor loses the rest."""
        import psycopg2

        refused = (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.ProgrammingError,
                   psycopg2.InternalError, psycopg2.NotSupportedError, ValueError)
        try:
            self._score_and_store(windows)
        except refused as exc:
            if len(windows) > 1:
                for window in windows:
                    self._store_or_isolate([window], sources)
            else:
                self._dead_letter(sources[windows[0].key], f"database refused it: {str(exc).strip()[:300]}")

    def _score_and_store(self, windows: Sequence[Window]) -> None:
        """Per minute of windows (by_window_start): one history query for all of them, then per
        micro-batch of at most PA_SCORING_BATCH_SIZE one request and one transaction storing it.
        The shared query is where size pays (its cost per window falls with the batch); the writes
        stay small because their transaction holds the alerts and incidents its triggers touch
        until it commits, and the job writes those too: a version storing 300 windows per
        transaction had a worse CRISIS rule-alert p99 (docs/performance.md "2026-12-06, night")."""
        size = max(1, self.settings.scoring_batch_size)
        for group in by_window_start(windows):
            with self.timed("history"):  # transact runs each callable at once: the loop's variables are current
                features = self.store.transact(lambda cur: model_features(cur, group, self._history_wanted()))
            for at in range(0, len(group), size):
                part, part_features = group[at:at + size], features[at:at + size]
                with self.timed("score"):
                    scores = score_windows(self.client, part, part_features, self.settings.suspicious_threshold)
                with self.timed("store"):  # the upsert, its triggers and the commit
                    now = datetime.now(timezone.utc)
                    rows = [_row(w, f, s, now) for w, f, s in zip(part, part_features, scores)]
                    self.store.transact(lambda cur: upsert(cur, rows))
                for score in scores:
                    self.counts[score.status] += 1

    def _history_wanted(self) -> bool:
        """History is looked up only for windows about to be sent: not while the breaker is open
        (they are stored unscored, and the rescoring pass looks it up then, with the same result:
        it reads only the past)."""
        return self.settings.history_lookup and self.client.breaker.allows_request()

    def _dead_letter(self, message: Any, reason: str) -> None:
        log.warning("window record at %s[%d]@%d to dead letters: %s", message.topic(), message.partition(),
                    message.offset(), reason)
        payload = (message.value() or b"").decode("utf-8", errors="replace")
        record = {"payload": payload, "reason": f"window: {reason}", "kafka_partition": message.partition(),
                  "kafka_offset": message.offset(),
                  "rejected_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]}
        self.dead_letters.produce(self.settings.topic_dead_letter, key=message.key(),
                                  value=json.dumps(record).encode())
        self.counts["dead_letters"] += 1

    # --- windows stored unscored -----------------------------------------------------------------

    def rescore_due(self) -> bool:
        interval = self.settings.rescore_interval_s
        return interval > 0 and time.monotonic() - self.last_rescore >= interval

    def rescore_once(self) -> int:
        """Score windows stored unscored (newest first) while the service answers; how many got a
        score. Skipped while the breaker is open: the service is known to be down."""
        self.last_rescore = time.monotonic()
        rescored = 0
        for _ in range(RESCORE_BATCHES_PER_PASS):
            if not self.client.breaker.allows_request() or self.stop_requested:
                break
            done = self.store.transact(self._rescore_batch)
            rescored += done
            if done == 0:
                break
        if rescored:
            log.info("rescored %d windows stored unscored during an outage", rescored)
        self.counts["rescored"] += rescored
        return rescored

    def _rescore_batch(self, cur: Any) -> int:
        cur.execute(UNSCORED_BATCH, (self.settings.rescore_max_age_h * 3600.0,
                                     max(1, self.settings.scoring_batch_size)))
        windows = [_window_from_row(r) for r in cur.fetchall()]
        if not windows:
            return 0
        features = model_features(cur, windows, self._history_wanted())
        scores = score_windows(self.client, windows, features, self.settings.suspicious_threshold)
        now = datetime.now(timezone.utc)
        rows = [_row(w, f, s, now) for w, f, s in zip(windows, features, scores) if s.status == SCORED]
        upsert(cur, rows)
        return len(rows)

    # --- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.consumer_closed = True
            self.dead_letters.flush(10)
            self.client.close()
            self.store.close()


def read_size(settings: Settings) -> int:
    """Windows one worker reads and looks up together: PA_SCORER_LOOKUP_BATCHES micro-batches of
    PA_SCORING_BATCH_SIZE."""
    return max(1, settings.scoring_batch_size) * max(1, settings.scorer_lookup_batches)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(attempts=settings.scoring_attempts, backoff_s=settings.scoring_backoff_ms / 1000.0,
                       timeout_s=settings.scoring_timeout_s, cooldown_s=settings.scoring_cooldown_s)


def heartbeat_file(settings: Settings) -> Path:
    return settings.resolved_var_dir() / "run" / "window-scorer.heartbeat"


def _summed(parts: Sequence[dict[str, float]], digits: int | None = None) -> dict[str, float]:
    total: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total if digits is None else {k: round(v, digits) for k, v in total.items()}


def write_heartbeat(scorers: WindowScorer | Sequence[WindowScorer]) -> None:
    """What `make status` shows: when the loop last went round and what it has done, summed over the
    workers (their stage seconds add up each worker's loop thread; lag is the topic's, every
    partition being some worker's)."""
    scorers = [scorers] if isinstance(scorers, WindowScorer) else list(scorers)
    beat = heartbeat_file(scorers[0].settings)
    beat.parent.mkdir(parents=True, exist_ok=True)
    lags = [lag for lag in (s.lag() for s in scorers) if lag is not None]
    tmp = beat.with_suffix(".tmp")
    tmp.write_text(json.dumps({"at": time.time(), "workers": len(scorers), **_summed([s.counts for s in scorers]),
                               "lag": sum(lags) if lags else None,
                               "stage_seconds": _summed([s.stage_seconds for s in scorers], 3),
                               "stage_cpu_seconds": _summed([s.stage_cpu_seconds for s in scorers], 6),
                               "stage_runqueue_seconds": _summed([s.stage_runqueue_seconds for s in scorers], 6),
                               "consumption": _summed([s.consumption for s in scorers])}))
    tmp.replace(beat)


def work(scorer: WindowScorer, once: bool, rescores: bool) -> None:
    """One worker's loop; only a ``rescores`` worker retries windows stored unscored (two would
    score the same rows)."""
    while not scorer.stop_requested:
        read = scorer.poll_batch()
        if rescores and (scorer.rescore_due() or (once and read == 0)):
            scorer.rescore_once()
        if once and read == 0:
            return


def run(scorers: WindowScorer | Sequence[WindowScorer], once: bool) -> None:
    """The workers' loops in threads until SIGTERM (or, ``once``, until each has drained its
    partitions); the heartbeat every second. A worker that fails stops the others and its error is
    raised here, so the process exits and its uncommitted batches are read again on restart."""
    scorers = [scorers] if isinstance(scorers, WindowScorer) else list(scorers)
    failures: list[BaseException] = []

    def stop(*_: Any) -> None:
        for scorer in scorers:
            scorer.stop_requested = True

    def guarded(scorer: WindowScorer, rescores: bool) -> None:
        try:
            work(scorer, once, rescores)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failures.append(exc)
            stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [threading.Thread(target=guarded, args=(s, i == 0), name=f"window-scorer-{i}", daemon=True)
               for i, s in enumerate(scorers)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        write_heartbeat(scorers)
        for thread in threads:
            thread.join(timeout=1.0 / len(threads))
    if failures:
        raise failures[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true", help="drain the topic, rescore once, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = config.load()
    if settings.scorer_nice > 0:
        os.nice(min(19, settings.scorer_nice))  # the job's alerts first (PA_SCORER_NICE)
    workers = [WindowScorer(settings) for _ in range(1 if args.once else settings.scorer_workers)]
    print(f"window scorer running ({len(workers)} workers): {settings.topic_windows} -> "
          f"{settings.resolved_serving_url()} -> actor_windows", flush=True)
    try:
        run(workers, args.once)
    finally:
        for worker in workers:
            worker.close()
        write_heartbeat(workers)
    log.info("windows: %s", _summed([w.counts for w in workers]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
