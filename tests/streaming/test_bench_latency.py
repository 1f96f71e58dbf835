"""bench_latency's verdict on the scorer: kept up when every minute's burst of windows drained within
the minute. Bursts below are the shapes of real runs (docs/performance.md, "2026-12-07, late evening")."""

from __future__ import annotations

import pytest

from streaming.bench_latency import bursts_keep_up


def burst(began_s: float, peak: int, drained_after_s: float | None) -> dict[str, object]:
    return {"began_s": began_s, "peak": peak, "drained_after_s": drained_after_s}


def test_every_judged_burst_drained_within_the_minute_keeps_up() -> None:
    bursts = [burst(1.8, 39_285, 24.3), burst(36.0, 58_333, 57.4), burst(96.1, 60_117, 56.3)]
    result = bursts_keep_up(bursts, ended_s=165.0)
    assert result == {"verdict": True, "judged_bursts": 3, "worst_share": pytest.approx(57.4 / 60, abs=1e-3)}


def test_a_burst_still_draining_after_a_minute_does_not_keep_up() -> None:
    """The 360 s run: the second burst never drained."""
    bursts = [burst(62.1, 61_219, 58.5), burst(124.1, 90_630, None)]
    result = bursts_keep_up(bursts, ended_s=380.0)
    assert result["verdict"] is False and result["judged_bursts"] == 2
    assert result["worst_share"] == pytest.approx((380.0 - 124.1) / 60, abs=1e-3)


def test_a_burst_that_took_longer_than_the_minute_does_not_keep_up() -> None:
    bursts = [burst(2.7, 64_449, 75.7), burst(86.4, 61_799, 60.2), burst(150.8, 61_079, None)]
    result = bursts_keep_up(bursts, ended_s=170.0)  # the last began too late to judge
    assert result == {"verdict": False, "judged_bursts": 2, "worst_share": pytest.approx(75.7 / 60, abs=1e-3)}


def test_no_burst_with_a_whole_minute_cannot_be_judged() -> None:
    assert bursts_keep_up([burst(100.0, 50_000, 20.0)], ended_s=150.0)["verdict"] is None
    assert bursts_keep_up([], ended_s=150.0)["verdict"] is None
