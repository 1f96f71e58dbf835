"""Latency and throughput of the scoring API over HTTP on loopback, against a running server.

    PYTHONPATH=. $(python3 scripts/envs.py python serving) -m serving.bench_api [--url URL] [--seconds S]

For /predict (one actor) and /predict/batch with 1, 10, 100 and 1000 actors, sends requests one after
another on a keep-alive connection for a fixed time and prints p50/p99 latency (client-side wall
time: serialization, HTTP, server, parsing), predictions per second, and the server's own
feature+predict time; then the server's resident memory (from its /metrics). Not a test: numbers
depend on the machine; a benchmark is read, not asserted.

Uses http.client rather than httpx so the client's own overhead stays small next to a ~1 ms request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

from patternalarm import config


def actor(rng: random.Random, i: int) -> dict[str, Any]:
    """A realistic actor: half card-testing bursts, half ordinary shoppers, 2-8 transactions."""
    t0 = datetime(2026, 11, 29, tzinfo=timezone.utc)
    fraud = i % 2 == 0
    txns = []
    for k in range(rng.randint(5, 8) if fraud else rng.randint(2, 4)):
        txns.append({"transaction_id": f"tx-{i}-{k}", "currency": "USD", "domain": "ecommerce",
                     "amount": round(rng.uniform(0.5, 4.99), 2) if fraud else round(rng.uniform(10, 300), 2),
                     "timestamp": (t0 + timedelta(seconds=(10 if fraud else 900) * k)).isoformat(),
                     "payment_method": "card", "session_length_sec": rng.uniform(5, 50) if fraud else 600.0,
                     "device_id": f"fp-{i}"})
    return {"actor_id": f"user-{i:06d}", "domain": "ecommerce", "transactions": txns}


class Conn:
    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()


def run_case(conn: Conn, path: str, payload: bytes, actors: int, seconds: float) -> dict[str, float]:
    for _ in range(5):  # warm-up: connection, allocator, caches
        conn.request("POST", path, payload)
    latencies: list[float] = []
    server_ms: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(latencies) < 20:
        t = time.perf_counter()
        status, body = conn.request("POST", path, payload)
        latencies.append(time.perf_counter() - t)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status}: {body[:300]!r}")
        out = json.loads(body)
        server_ms.append(out.get("inference_time_ms", out.get("total_inference_time_ms", 0.0)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"requests": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "pred_per_s": actors * len(latencies) / elapsed, "server_ms": statistics.median(server_ms)}


def server_rss(conn: Conn) -> float | None:
    status, body = conn.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return float(line.split()[1])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=config.load().resolved_serving_url())
    parser.add_argument("--seconds", type=float, default=3.0, help="per case")
    parser.add_argument("--sizes", default="1,10,100,1000", help="batch sizes for /predict/batch")
    args = parser.parse_args(argv)
    conn = Conn(args.url)
    try:
        status, body = conn.request("GET", "/predict/health")
    except OSError as exc:
        print(f"bench_api: no server at {args.url} ({exc}); start it with `python -m serving`", file=sys.stderr)
        return 1
    if status != 200:
        print(f"bench_api: the server has no model loaded: {body[:300]!r}", file=sys.stderr)
        return 1
    health = json.loads(body)
    rng = random.Random(1)
    pool = [actor(rng, i) for i in range(1000)]
    cases = [("/predict", 1, json.dumps(pool[0]).encode())]
    for size in (int(s) for s in args.sizes.split(",")):
        cases.append(("/predict/batch", size, json.dumps({"predictions": pool[:size]}).encode()))
    print(f"server {args.url}: {health['model_name']} v{health['model_version']} "
          f"({health['num_trees']} trees); {args.seconds:g} s per case, sequential keep-alive requests")
    print(f"{'endpoint':<16}{'batch':>6}{'body KB':>9}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'pred/s':>10}{'server ms':>11}")
    for path, size, payload in cases:
        r = run_case(conn, path, payload, size, args.seconds)
        print(f"{path:<16}{size:>6}{len(payload) / 1024:>9.1f}{r['requests']:>10.0f}{r['p50_ms']:>9.3f}"
              f"{r['p99_ms']:>9.3f}{r['pred_per_s']:>10.0f}{r['server_ms']:>11.3f}")
    rss = server_rss(conn)
    print(f"server RSS: {rss / 2**20:.1f} MiB" if rss else "server RSS: unknown (no process metrics)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
