"""Load modes and the pacer that holds the generator to a true rate.

A mode is a rate over time (events per minute as a function of elapsed seconds). The pacer is a
token bucket refilled continuously, so NORMAL really means ~167 events every second and never one
burst of 10,000 per minute; it also reports what was achieved, since a 2-core machine may not keep up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

MODES_PER_MIN: dict[str, float] = {"MINI": 5, "NORMAL": 10_000, "PEAK": 50_000, "CRISIS": 100_000}
SPIKE_START_S, SPIKE_LEN_S = 30.0, 60.0


def rate_function(mode: str) -> Callable[[float], float]:
    """Events per minute at a given second of the run. SPIKE: NORMAL, then 2x CRISIS for 60 s, NORMAL."""
    name = mode.upper()
    if name == "SPIKE":
        normal, spike = MODES_PER_MIN["NORMAL"], 2 * MODES_PER_MIN["CRISIS"]
        return lambda t: spike if SPIKE_START_S <= t < SPIKE_START_S + SPIKE_LEN_S else normal
    if name in MODES_PER_MIN:
        rate = MODES_PER_MIN[name]
        return lambda t: rate
    try:
        rate = float(name)
    except ValueError:
        raise ValueError(f"unknown load mode {mode!r}: use one of {', '.join(MODES_PER_MIN)}, SPIKE, "
                         "or a number of events per minute") from None
    if rate <= 0:
        raise ValueError("a rate must be positive events per minute")
    return lambda t: rate


@dataclass
class Pacer:
    """Token bucket: ``due()`` says how many events may go now; ``wait()`` sleeps until the next one."""

    rate_per_min: Callable[[float], float]
    max_burst: int = 500  # catch up after a stall without flooding the broker
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    _tokens: float = field(init=False, default=0.0)
    _last: float = field(init=False)
    sent: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.started = self._last = self.clock()
        self._tokens = 1.0  # the first event goes at once

    def elapsed(self) -> float:
        return self.clock() - self.started

    def due(self) -> int:
        now = self.clock()
        rate_per_s = self.rate_per_min(now - self.started) / 60.0
        self._tokens = min(self._tokens + (now - self._last) * rate_per_s, float(self.max_burst))
        self._last = now
        ready = int(self._tokens)
        self._tokens -= ready
        self.sent += ready
        return ready

    def wait(self) -> None:
        rate_per_s = self.rate_per_min(self.elapsed()) / 60.0
        missing = max(0.0, 1.0 - self._tokens)
        time.sleep(min(0.05, max(0.001, missing / rate_per_s)))

    def achieved_per_min(self) -> float:
        elapsed = self.elapsed()
        return self.sent * 60.0 / elapsed if elapsed > 0 else 0.0
