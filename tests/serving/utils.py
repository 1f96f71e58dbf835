"""Helpers shared by the serving tests: a live uvicorn server, alert inserts, waiting."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from sqlalchemy.engine import Engine

from serving.app import create_app
from serving.db import alerts
from serving.settings import ServingSettings

API_KEY = "test-key-for-serving-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def insert_alerts(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """One statement per row, like the JDBC sink: the grouping trigger sees them in order."""
    with engine.begin() as conn:
        for row in rows:
            conn.execute(alerts.insert().values(**row))


@contextmanager
def live_server(settings: ServingSettings) -> Iterator[str]:
    """The app in a real uvicorn (one worker, lifespan on) on a free loopback port; yields its URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start (see captured log)")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_for(predicate: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    """Wait for a condition to become true (not a timing assertion: the deadline only stops a hang)."""
    end = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
