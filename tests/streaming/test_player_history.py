"""The gaming players' history function (PlayerHistory.java): the look-backs' rules that the pattern
cases through the job cannot reach in a test's time (a device forgotten after the state TTL), and
the column lists Python and Java must agree on."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from patternalarm import config
from patternalarm.stack import kafka_broker
from streaming import player_history

DAY_MS = 24 * 3600 * 1000


@pytest.fixture(scope="module")
def history_class(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """io.patternalarm.history.PlayerHistory from the job's UDF jar, in a table environment as the
    job builds it."""
    from pyflink.java_gateway import get_gateway

    from streaming import detection_job

    os.environ.setdefault("FLINK_LOG_DIR", str(tmp_path_factory.mktemp("flink-log")))
    os.environ.setdefault("JVM_ARGS", "-Xmx512m")
    udf = kafka_broker.udf_jar(config.load()).resolve().as_uri()
    detection_job.table_environment(udf, {"pipeline.jars": udf, "parallelism.default": "1"})
    jvm = get_gateway().jvm
    loader = jvm.Thread.currentThread().getContextClassLoader()
    yield lambda name: jvm.Class.forName(f"io.patternalarm.history.PlayerHistory{name}", True, loader)


def new_keys(history_class: Any) -> Any:
    return history_class("$UsedKeys").newInstance()


def known(keys: Any) -> list[str | None]:
    from py4j.java_gateway import get_field

    return list(get_field(keys, "keys"))


def test_a_key_is_new_at_its_first_use_only(history_class: Any) -> None:
    keys = new_keys(history_class)
    ttl = 90 * DAY_MS
    assert keys.use("gdev-1", 1_000, ttl) is True
    assert keys.use("gdev-1", 2_000, ttl) is False
    assert keys.use("gdev-2", 3_000, ttl) is True
    assert keys.use(None, 4_000, ttl) is True  # NULL is a key of its own, as an OVER window's partition
    assert keys.use(None, 5_000, ttl) is False
    assert known(keys) == ["gdev-1", "gdev-2", None]


def test_a_key_unused_for_the_ttl_is_new_again_and_forgotten(history_class: Any) -> None:
    """As the OVER window's (player, device) key expired under table.exec.state.ttl: counted from the
    key's last use, in processing time; other expired keys are dropped at the same purchase."""
    keys = new_keys(history_class)
    ttl = 90 * DAY_MS
    keys.use("gdev-old", 0, ttl)
    keys.use("gdev-kept", 0, ttl)
    keys.use("gdev-kept", 60 * DAY_MS, ttl)  # used again: its 90 days start over
    assert keys.use("gdev-old", 90 * DAY_MS - 1, ttl) is False  # one millisecond short of the TTL
    assert keys.use("gdev-other", 180 * DAY_MS - 1, ttl) is True
    assert known(keys) == ["gdev-other"]  # gdev-old (last used day 90) and gdev-kept (day 60) expired
    assert keys.use("gdev-kept", 180 * DAY_MS, ttl) is True


def test_python_and_java_name_the_same_columns(history_class: Any) -> None:
    """The Purchases projection reads positions Python passes and the function writes the history
    columns by position: both sides must list the same columns in the same order (attach checks
    this at start-up too)."""
    cls = history_class("")
    java = [str(cls.getField(name).get(None)[i]) for name in ("PURCHASE_FIELDS", "HISTORY_FIELDS")
            for i in range(len(cls.getField(name).get(None)))]
    assert java == [*player_history.PURCHASE_COLUMNS, *player_history.HISTORY_COLUMNS]
