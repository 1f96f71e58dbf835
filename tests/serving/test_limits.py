"""413 for bodies over PA_MAX_BODY_BYTES: declared (Content-Length) and streamed (chunked, real uvicorn)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.settings import ServingSettings
from tests.serving import factories
from tests.serving.utils import live_server

pytestmark = pytest.mark.integration  # real PostgreSQL and MLflow

LIMIT = 4096


def _big_batch(n: int) -> dict[str, Any]:
    return {"predictions": [factories.card_testing_actor(f"user-{i}") for i in range(n)]}


def test_declared_length_over_limit_is_413(champion: str, clean_db: Any,
                                           make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=LIMIT)
    body = json.dumps(_big_batch(20)).encode()
    assert len(body) > LIMIT
    resp = client.post("/predict/batch", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "PA_MAX_BODY_BYTES" in resp.json()["detail"]
    small = client.post("/predict", json=factories.shopper_actor())
    assert small.status_code == 200
    assert "pa_body_too_large_total 1.0" in client.get("/metrics").text


def test_streamed_body_over_limit_is_413(champion: str, clean_db: Any,
                                         make_settings: Callable[..., ServingSettings]) -> None:
    """Chunked upload without Content-Length: refused once the bytes read pass the limit."""
    with live_server(make_settings(max_body_bytes=LIMIT)) as url:
        host, port = urlparse(url).hostname, urlparse(url).port
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(b"POST /predict/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"[" + b" " * 1000
            for _ in range(LIMIT // len(chunk) + 2):  # past the limit, and never a final chunk
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            response = b""
            while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert b"PA_MAX_BODY_BYTES" in response
        # A streamed body under the limit goes through.
        payload = json.dumps(factories.shopper_actor()).encode()
        ok = httpx.post(f"{url}/predict", content=iter([payload[:50], payload[50:]]),
                        headers={"content-type": "application/json"})
        assert ok.status_code == 200, ok.text
