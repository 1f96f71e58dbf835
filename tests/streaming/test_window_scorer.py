"""The window scorer against the real broker, PostgreSQL and scoring service (a Spark-trained forest
registered in MLflow): windows in, scored rows out; replays, malformed records, a database outage
and a scoring outage followed by rescoring. The records are what the job writes to the windows topic
(detection_job.windows_sink_ddl); tests/streaming/test_window_scoring.py runs the whole pipeline."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2
import pytest

from patternalarm.config import Settings
from patternalarm import history_features
from patternalarm.features import FEATURE_NAMES
from streaming import window_scorer
from streaming.scoring_client import RetryPolicy, ScoringClient
from tests.streaming.conftest import scored_run
from tests.support.scoring_service import TEST_API_KEY, free_port

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def record(actor: str, domain: str = "ecommerce", minute: int = 0, parties: list[str | None] | None = None,
           **features: float) -> dict[str, Any]:
    values = {name: 1.0 for name in FEATURE_NAMES} | {"txn_count": 2.0, "amount_sum": 30.0, "amount_mean": 15.0}
    values.update(features)
    begin = START + timedelta(minutes=minute)
    return {"actor_id": actor, "domain": domain, "window_start": begin.strftime("%Y-%m-%dT%H:%M:%S"),
            "window_end": (begin + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"), "event_count": 2,
            **values, "counterparties": parties}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str, str]]:
    """A scratch database and topics, and a scoring service: (settings, service url, model version)."""
    with scored_run(tmp_path_factory.mktemp("scorer")) as (settings, running, version):
        yield settings, running.url, version


@pytest.fixture
def topic(service: tuple[Settings, str, str]) -> Iterator[Settings]:
    """A fresh windows topic per test, so each test's scorer reads only its own records; deleted after."""
    settings = dataclasses.replace(service[0], topic_windows=f"test-{uuid.uuid4().hex[:8]}.windows")
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(settings.topic_windows, 2, 1)]).values():
        future.result(30)
    yield settings
    for future in admin.delete_topics([settings.topic_windows]).values():
        future.result(30)


def produce(settings: Settings, values: list[bytes | dict[str, Any]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    for value in values:
        payload = value if isinstance(value, bytes) else json.dumps(value).encode()
        producer.produce(settings.topic_windows, key=b"k", value=payload)
    assert producer.flush(30) == 0


def drain(scorer: window_scorer.WindowScorer, expected: int, rounds: int = 40) -> int:
    """Poll until ``expected`` records were read (the first polls may only join the group)."""
    read = 0
    for _ in range(rounds):
        read += scorer.poll_batch()
        if read >= expected:
            break
    return read


def drain_with_new_scorer(settings: Settings, expected: int) -> int:
    """What most tests do: a fresh scorer drains ``expected`` records and is closed."""
    scorer = window_scorer.WindowScorer(settings)
    try:
        return drain(scorer, expected)
    finally:
        scorer.close()


def rows(settings: Settings, actors: list[str]) -> dict[tuple[str, int], tuple[Any, ...]]:
    with psycopg2.connect(settings.db_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT actor_id, window_start, score, score_status, model_version, counterparties, "
                    "event_count, amount_sum, features FROM actor_windows WHERE actor_id = ANY(%s)", (actors,))
        return {(r[0], int((r[1] - START).total_seconds() // 60)): r[2:] for r in cur.fetchall()}


def new_actors(n: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"ws-{run}-{i}" for i in range(n)]


def test_windows_are_stored_with_score_model_version_and_counterparties(topic: Settings,
                                                                         service: tuple[Settings, str, str]) -> None:
    shopper, gamer, sensor = new_actors(3)
    produce(topic, [record(shopper, parties=["m-2", "m-1", "m-2", None]), record(gamer, "gaming"),
                    record(sensor, "iot", parties=None)])
    assert drain_with_new_scorer(topic, 3) == 3
    stored, version = rows(topic, [shopper, gamer, sensor]), service[2]
    score, status, model_version, parties, count, amount_sum, features = stored[(shopper, 0)]
    assert (status, model_version, parties, count, amount_sum) == ("scored", version, ["m-1", "m-2"], 2, 30.0)
    assert 0.0 <= score <= 1.0 and features["amount_mean"] == 15.0
    assert set(features) == set(history_features.MODEL_FEATURE_NAMES)
    assert stored[(gamer, 0)][1:3] == ("scored", version)
    assert stored[(sensor, 0)][:4] == (None, "not_applicable", None, [])


def test_the_heartbeat_says_where_the_rounds_went_and_what_is_left_to_read(topic: Settings) -> None:
    """What `make status` and bench_latency read: the windows not yet read, and wall seconds per
    stage of the loop (the history query and the scoring request only for the windows sent)."""
    actors = new_actors(5)
    produce(topic, [record(a, "fintech", parties=["acct-x"]) for a in actors])
    scorer = window_scorer.WindowScorer(topic)
    try:
        assert drain(scorer, 5) == 5
        produce(topic, [record(a, "fintech", minute=1) for a in actors[:2]])
        deadline = time.monotonic() + 15  # the consumer's background fetches refresh the cached end offsets
        while (behind := scorer.lag()) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        window_scorer.write_heartbeat(scorer)
        beat = json.loads(window_scorer.heartbeat_file(topic).read_text())
    finally:
        scorer.close()
    assert behind == 2 and beat["lag"] == 2 and beat["scored"] == 5
    assert set(beat["stage_seconds"]) == set(window_scorer.STAGES)
    assert all(beat["stage_seconds"][stage] > 0 for stage in ("consume", "history", "score", "store", "commit"))
    for clock in ("stage_cpu_seconds", "stage_runqueue_seconds"):  # the loop thread's, from the kernel
        assert set(beat[clock]) == set(window_scorer.STAGES)
        assert all(0 <= beat[clock][s] <= beat["stage_seconds"][s] + 0.01 for s in window_scorer.STAGES)
    assert sum(beat["stage_cpu_seconds"].values()) > 0
    calls = beat["consumption"]
    assert calls["records"] == 5 and calls["calls"] >= 1 and calls["short_calls"] == calls["calls"]
    window_scorer.write_heartbeat(scorer)  # main() writes the last one after close()
    last = json.loads(window_scorer.heartbeat_file(topic).read_text())
    assert last["lag"] is None and last["scored"] == 5


def test_replayed_windows_rewrite_their_row(topic: Settings) -> None:
    """The job's at-least-once sink can repeat a window, within one batch or later."""
    [actor] = new_actors(1)
    produce(topic, [record(actor), record(actor), record(actor, minute=1)])
    scorer = window_scorer.WindowScorer(topic)
    try:
        assert drain(scorer, 3) == 3
        produce(topic, [record(actor, amount_sum=31.0)])
        assert drain(scorer, 1) == 1
    finally:
        scorer.close()
    stored = rows(topic, [actor])
    assert sorted(stored) == [(actor, 0), (actor, 1)]
    assert stored[(actor, 0)][5] == 31.0 and stored[(actor, 0)][1] == "scored"


def dead_letter_reasons(settings: Settings, wanted: Callable[[str], bool], expected: int) -> list[str]:
    """Reasons of the dead letters whose payload ``wanted`` accepts, once ``expected`` were read
    (or after ~30 s of polling: the assertion then shows what came)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topic_dead_letter])
    reasons: list[str] = []
    try:
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                letter = json.loads(message.value())
                if wanted(letter["payload"]):
                    reasons.append(letter["reason"])
            if len(reasons) >= expected:
                break
    finally:
        consumer.close()
    return reasons


def test_malformed_records_go_to_dead_letters_and_the_batch_goes_on(topic: Settings) -> None:
    [actor] = new_actors(1)
    bad = record(actor, minute=5)
    del bad["txn_count"]
    produce(topic, [b"{not json", bad, record(actor)])
    assert drain_with_new_scorer(topic, 1) == 1
    assert list(rows(topic, [actor])) == [(actor, 0)]
    reasons = dead_letter_reasons(topic, lambda payload: actor in payload or payload == "{not json", 2)
    assert sorted(reasons) == ["window: missing fields ['txn_count']", "window: not JSON: "
                               "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"]


def test_a_batch_the_database_did_not_take_is_read_again(topic: Settings) -> None:
    """PostgreSQL unreachable and the scorer stopped meanwhile: no offsets were committed, so the
    next scorer of the group stores the windows (a crash never drops accepted data)."""
    actors = new_actors(2)
    produce(topic, [record(a) for a in actors])
    unreachable = dataclasses.replace(topic, database_url=f"postgresql://pa:pa@127.0.0.1:{free_port()}/none")
    broken = window_scorer.WindowScorer(unreachable)
    broken.stop_requested = True  # the database error then ends poll_batch instead of retrying
    try:
        with pytest.raises(psycopg2.OperationalError):
            for _ in range(40):
                broken.poll_batch()
    finally:
        broken.close()
    assert drain_with_new_scorer(topic, 2) == 2
    assert sorted(rows(topic, actors)) == [(a, 0) for a in actors]


def test_windows_stored_during_a_scoring_outage_are_rescored(topic: Settings, service: tuple[Settings, str, str]) -> None:
    actors = new_actors(2)
    produce(topic, [record(a) for a in actors])
    down = ScoringClient(f"http://127.0.0.1:{free_port()}", TEST_API_KEY, RetryPolicy(attempts=2, backoff_s=0.05))
    scorer = window_scorer.WindowScorer(topic, client=down)
    try:
        assert drain(scorer, 2) == 2
        assert scorer.rescore_once() == 0  # the breaker is open: no request, nothing rescored
    finally:
        scorer.close()
    assert {k: v[1] for k, v in rows(topic, actors).items()} == {(a, 0): "unscored" for a in actors}
    back = window_scorer.WindowScorer(topic)
    try:
        assert back.rescore_once() >= 2
    finally:
        back.close()
    assert {k: v[1:3] for k, v in rows(topic, actors).items()} == {(a, 0): ("scored", service[2]) for a in actors}


@pytest.mark.parametrize("value, reason", [
    (b"[]", "not a JSON object"),
    (json.dumps(record("a") | {"event_count": 0}).encode(), "event_count is 0"),
    (json.dumps(record("a") | {"window_start": "yesterday"}).encode(), "window_start 'yesterday'"),
    (json.dumps(record("a") | {"amount_sum": "12"}).encode(), "feature amount_sum is '12'"),
    (json.dumps(record("")).encode(), "actor_id and domain must be non-empty"),
])
def test_parse_window_names_what_is_wrong(value: bytes, reason: str) -> None:
    with pytest.raises(window_scorer.MalformedWindow, match=reason):
        window_scorer.parse_window(value)


def test_a_non_finite_feature_is_stored_as_null_and_the_window_left_unscored(topic: Settings) -> None:
    """A bare NaN in the record (jsonb has none): the batch is stored, that window unscored."""
    odd, fine = new_actors(2)
    produce(topic, [json.dumps(record(odd)).replace('"amount_std": 1.0', '"amount_std": NaN').encode(),
                    record(fine)])
    assert drain_with_new_scorer(topic, 2) == 2
    stored = rows(topic, [odd, fine])
    assert stored[(odd, 0)][1] == "unscored" and stored[(odd, 0)][6]["amount_std"] is None
    assert stored[(fine, 0)][1] == "scored"


def test_a_window_the_database_refuses_goes_to_dead_letters_and_the_rest_is_stored(topic: Settings) -> None:
    """A NUL character in the actor id: valid JSON, refused by PostgreSQL text. Not retried forever
    (it would block the topic), not dropped silently: a dead letter with the database's reason."""
    [fine] = new_actors(1)
    poison = f"{fine}-nul\u0000"
    produce(topic, [record(poison), record(fine)])
    assert drain_with_new_scorer(topic, 2) == 2
    assert list(rows(topic, [fine])) == [(fine, 0)]
    reasons = dead_letter_reasons(topic, lambda payload: f"{fine}-nul" in payload, 1)
    assert len(reasons) == 1 and reasons[0].startswith("window: database refused it:"), reasons


def test_parse_window_reads_what_the_job_writes() -> None:
    window = window_scorer.parse_window(json.dumps(record("a-1", parties=["b", "a", None])).encode())
    assert (window.actor_id, window.window_start, window.window_end - window.window_start) == (
        "a-1", START, timedelta(minutes=1))
    assert window.counterparties == ("a", "b") and window.features["amount_mean"] == 15.0



def test_history_features_are_looked_up_sent_and_stored_with_the_window(topic: Settings) -> None:
    """A second window of the actor sees the first in its history (and a window of another actor
    sharing its counterparty); the stored features hold what was sent, and a window stored before
    keeps the history it was first scored with when rescored."""
    actor, other = new_actors(2)
    produce(topic, [record(actor, minute=0, parties=["m-9"]), record(other, minute=1, parties=["m-9"])])
    scorer = window_scorer.WindowScorer(topic)
    try:
        assert drain(scorer, 2) == 2
        produce(topic, [record(actor, minute=5, parties=["m-9"])])
        assert drain(scorer, 1) == 1
    finally:
        scorer.close()
    stored = rows(topic, [actor, other])
    first, later = stored[(actor, 0)][6], stored[(actor, 5)][6]
    assert set(later) == set(FEATURE_NAMES) | set(history_features.HISTORY_FEATURE_NAMES)
    assert (first["actor_txn_count_1h"], later["actor_txn_count_1h"]) == (0.0, 2.0)
    assert later["actor_amount_mean_1h"] == 15.0
    assert later["cp_window_count_1h"] == 1.0  # the other actor's window at m-9; its own are not counted
    assert stored[(actor, 5)][1] == "scored"


def test_windows_without_history_lookup_are_scored_as_first_seen(topic: Settings) -> None:
    [actor] = new_actors(1)
    produce(topic, [record(actor, minute=0), record(actor, minute=2)])
    assert drain_with_new_scorer(dataclasses.replace(topic, history_lookup=False), 2) == 2
    stored = rows(topic, [actor])
    assert set(stored[(actor, 2)][6]) == set(FEATURE_NAMES) and stored[(actor, 2)][1] == "scored"


def backend_nice(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])


def test_the_scorers_database_backend_can_be_niced(topic: Settings) -> None:
    """Its queries and upserts run in PostgreSQL's backend, which PA_SCORER_DB_NICE renices (off by default)."""
    conn = psycopg2.connect(topic.db_url())
    try:
        pid = window_scorer.lower_backend_priority(conn, dataclasses.replace(topic, scorer_db_nice=7))
        assert pid is not None and backend_nice(pid) == 7
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM actor_windows")  # the connection is still usable
            assert cur.fetchone() is not None
    finally:
        conn.close()
    other = psycopg2.connect(topic.db_url())
    try:
        assert window_scorer.lower_backend_priority(other, dataclasses.replace(topic, scorer_db_nice=0)) is None
        with other.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            assert backend_nice(cur.fetchone()[0]) == 0
    finally:
        other.close()


def test_workers_share_the_partitions_and_store_every_window_once(topic: Settings) -> None:
    """PA_SCORER_WORKERS loops in one consumer group: each takes a partition of the topic, and the
    heartbeat adds up both."""
    from confluent_kafka import Producer

    actors = new_actors(40)
    workers = [window_scorer.WindowScorer(topic) for _ in range(2)]
    unsent: list[int] = []

    def feed_then_stop_when_stored() -> None:
        """Windows only once both workers own a partition: produced before, the first worker to
        join could read them all before the group rebalanced."""
        deadline = time.monotonic() + 60
        while not all(w.consumer.assignment() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        producer = Producer({"bootstrap.servers": topic.kafka_bootstrap, "acks": "all"})
        for actor in actors:  # keyed by actor, as the job writes them: both partitions get windows
            producer.produce(topic.topic_windows, key=actor.encode(), value=json.dumps(record(actor)).encode())
        unsent.append(producer.flush(30))
        while len(rows(topic, actors)) < len(actors) and time.monotonic() < deadline:
            time.sleep(0.3)
        for worker in workers:
            worker.stop_requested = True

    watcher = threading.Thread(target=feed_then_stop_when_stored)
    watcher.start()
    try:
        window_scorer.run(workers, once=False)
    finally:
        watcher.join()
        for worker in workers:
            worker.close()
    stored = rows(topic, actors)
    assert unsent == [0]
    assert sorted(a for a, _ in stored) == sorted(actors)
    assert all(row[1] == "scored" for row in stored.values())
    assert all(worker.counts["scored"] > 0 for worker in workers), [w.counts for w in workers]
    window_scorer.write_heartbeat(workers)
    beat = json.loads(window_scorer.heartbeat_file(topic).read_text())
    assert beat["workers"] == 2 and beat["scored"] == sum(w.counts["scored"] for w in workers) == 40


def scored_at_groups(settings: Settings, actors: list[str]) -> list[int]:
    """Windows per stored transaction (every window of one carries its scored_at), largest first."""
    with psycopg2.connect(settings.db_url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM actor_windows WHERE actor_id = ANY(%s) GROUP BY scored_at "
                    "ORDER BY 1 DESC", (actors,))
        return [n for (n,) in cur.fetchall()]


def spy_on_lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of windows each history query was asked for (the real query still runs)."""
    sizes: list[int] = []
    real = window_scorer.model_features

    def counted(cur: Any, windows: Any, with_history: bool) -> Any:
        sizes.append(len(windows))
        return real(cur, windows, with_history)

    monkeypatch.setattr(window_scorer, "model_features", counted)
    return sizes


def test_micro_batches_read_together_share_one_history_query(topic: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """PA_SCORER_LOOKUP_BATCHES micro-batches read together get one history query, but each is its
    own request and its own transaction of at most PA_SCORING_BATCH_SIZE windows (the iot one is
    looked up as a window of the batch and never sent)."""
    settings = dataclasses.replace(topic, scoring_batch_size=2, scorer_lookup_batches=3)
    actors = new_actors(6)
    produce(settings, [record(a, "iot" if i == 0 else "fintech", parties=["acct-y"]) for i, a in enumerate(actors)])
    lookups = spy_on_lookups(monkeypatch)
    scorer = window_scorer.WindowScorer(settings)
    requests: list[int] = []
    real_score = scorer.client.score

    def counted_score(batch: Any) -> Any:  # the real service still answers
        requests.append(len(batch))
        return real_score(batch)

    scorer.client.score = counted_score  # type: ignore[method-assign]
    try:
        assert drain(scorer, 6) == 6
        session_jit, session_name, session_tls = scorer.store.transact(
            lambda cur: (cur.execute("SELECT current_setting('jit'), current_setting('application_name'), "
                                     "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"),
                         cur.fetchone())[1])
    finally:
        scorer.close()
    stored = rows(settings, actors)
    assert [stored[(a, 0)][1] for a in actors] == ["not_applicable"] + ["scored"] * 5
    assert lookups == [6]  # one read of 6 (the consumer returns what the broker holds, up to 3 x 2)
    assert requests == [1, 2, 2]  # micro-batches [iot, a1], [a2, a3], [a4, a5]: the iot window is not sent
    assert sorted(scored_at_groups(settings, actors)) == [2, 2, 2]  # one transaction each
    assert session_jit == "off"  # window_scorer.SESSION_OPTIONS: no JIT compile of the history query
    assert session_name == "patternalarm-window-scorer"  # its sessions, named in pg_stat_activity
    assert session_tls is False  # a database on this host: no TLS (config.DatabaseEndpoint.sslmode)


def test_a_batch_of_two_minutes_gives_the_later_windows_the_earlier_ones_as_history(
        topic: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read together (a scorer behind by a minute), an actor's windows of minutes 0 and 1 and another
    actor's at the same counterparty: minute 0 is looked up and stored first, so minute 1's history
    holds its windows, as if they had been read separately."""
    actor, other = new_actors(2)
    produce(topic, [record(actor, minute=1, parties=["m-7"]), record(actor, minute=0, parties=["m-7"]),
                    record(other, minute=0, parties=["m-7"])])
    lookups = spy_on_lookups(monkeypatch)
    assert drain_with_new_scorer(topic, 3) == 3
    stored = rows(topic, [actor, other])
    later = stored[(actor, 1)][6]
    assert lookups == [2, 1]  # minute 0's two windows, then minute 1's
    assert (stored[(actor, 0)][6]["actor_txn_count_1h"], later["actor_txn_count_1h"]) == (0.0, 2.0)
    assert later["cp_window_count_1h"] == 1.0  # the other actor's minute-0 window at m-7
