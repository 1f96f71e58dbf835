"""Injected IoT anomalies: spike, flatline, drift and dropout, each on a sensor of the stream's fleet.

An anomaly takes over a real sensor of behaviours.SensorFleet (the generator calls bind_fleet when the
instance starts): the fleet skips the sensor while the anomaly runs, the anomaly's readings keep the
sensor's usual interval, and the sensor goes back on the fleet's schedule afterwards. So the device
has the history a detector's baseline needs (a sensor with fewer than WARMUP readings first gets normal
ones) and does not vanish afterwards (which would be a dropout). Ground truth holds only the anomalous
readings (for dropout: the last reading before the silence), not the warm-up or the recovery.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from streaming import behaviours, iot_detectors
from streaming.behaviours import Sensor, SensorFleet
from streaming.scenarios import Instance, scenario

# Normal readings a device has before its anomaly: a full baseline for spike/flatline/drift and
# enough gaps for the dropout's usual interval.
WARMUP = int(iot_detectors.thresholds("spike")["min_readings"]) + 10


@dataclass
class SensorInstance(Instance):
    """An injected anomaly on a fleet sensor; its steps are written once the sensor is known."""

    plan: Callable[["SensorInstance", random.Random], None] = field(default=lambda i, r: None)
    sensor: Sensor | None = None
    fleet: SensorFleet | None = None
    evidence: list[tuple[str, datetime]] = field(default_factory=list)
    paced: bool = False  # the steps are the sensor's schedule: --pace leaves them alone

    def bind_fleet(self, fleet: SensorFleet, rng: random.Random) -> None:
        self.fleet, self.sensor = fleet, fleet.claim(rng)
        self.partition_key = behaviours.actor_id("iot", self.sensor.index)
        self.plan(self, rng)

    def reading(self, rng: random.Random, value: Callable[[datetime], float] | None = None,
                evidence: bool = False, last: bool = False) -> Callable[[datetime], dict[str, Any]]:
        """A step builder: the sensor's reading (or `value(now)`), recorded as evidence if asked; the last
        step hands the sensor back to the fleet."""
        def build(now: datetime) -> dict[str, Any]:
            assert self.sensor is not None and self.fleet is not None
            event = behaviours.sensor_reading(rng, self.sensor, now, value(now) if value else None)
            if evidence:
                self.evidence.append((event["transaction_id"], now))
            if last:
                self.fleet.release(self.sensor, now)
            return event
        return build

    def add(self, builder: Callable[[datetime], dict[str, Any]], gap_factor: float = 1.0,
            rng: random.Random | None = None) -> None:
        """Append a step one usual interval (x gap_factor, with the fleet's jitter) after the previous one."""
        assert self.sensor is not None
        jitter = rng.uniform(1 - behaviours.SENSOR_JITTER, 1 + behaviours.SENSOR_JITTER) if rng else 1.0
        self.steps.append((0.0 if not self.steps else self.sensor.interval_s * gap_factor * jitter, builder))

    def warm_up(self, rng: random.Random) -> None:
        assert self.sensor is not None
        for _ in range(max(0, WARMUP - self.sensor.readings)):
            self.add(self.reading(rng), rng=rng)

    def truth(self, run_id: str) -> dict[str, Any]:
        out = super().truth(run_id)
        out["transaction_ids"] = [txn for txn, _ in self.evidence]
        out["first_event_time"] = self.evidence[0][1].isoformat()
        out["last_event_time"] = self.evidence[-1][1].isoformat()
        return out


def _instance(pattern: str, n: int, rng: random.Random,
              plan: Callable[[SensorInstance, random.Random], None]) -> SensorInstance:
    # partition key and steps are filled in by bind_fleet, when the generator starts the instance
    return SensorInstance(f"{pattern}-{n}-{rng.getrandbits(48):012x}", pattern, "iot", "", [], plan=plan)


def _finish(instance: SensorInstance, rng: random.Random, readings: int = 3) -> None:
    """A few normal readings after the anomaly; the last one releases the sensor."""
    for k in range(readings):
        instance.add(instance.reading(rng, last=k == readings - 1), rng=rng)


@scenario("spike")
def spike(rng: random.Random, n: int) -> Instance:
    """One reading 10-20 noise sds off the sensor's level, between normal ones."""
    def plan(inst: SensorInstance, r: random.Random) -> None:
        assert inst.sensor is not None
        sensor, offset = inst.sensor, r.choice((-1, 1)) * r.uniform(10, 20) * inst.sensor.noise
        inst.warm_up(r)
        inst.add(inst.reading(r, lambda now: sensor.value(r, now) + offset, evidence=True), rng=r)
        _finish(inst, r)
    return _instance("spike", n, rng, plan)


@scenario("flatline")
def flatline(rng: random.Random, n: int) -> Instance:
    """The sensor sticks: its next reading repeated, 30-40 identical readings in all."""
    def plan(inst: SensorInstance, r: random.Random) -> None:
        assert inst.sensor is not None
        stuck: list[float] = []

        def first(now: datetime) -> float:
            stuck.append(inst.sensor.value(r, now))  # type: ignore[union-attr]
            return stuck[0]

        inst.warm_up(r)
        inst.add(inst.reading(r, first, evidence=True), rng=r)
        for _ in range(r.randint(29, 39)):
            inst.add(inst.reading(r, lambda now: stuck[0], evidence=True), rng=r)
        _finish(inst, r)
    return _instance("flatline", n, rng, plan)


DRIFT_RAMP_READINGS = 60


@scenario("drift")
def drift(rng: random.Random, n: int) -> Instance:
    """The level ramps by 5-6 noise sds over 60 readings and stays there for the hold time plus a
    margin; the sensor keeps the new level afterwards (a calibration drift does not undo itself).
    A ramp, not a step: a step of that size would put the first readings at the new level more than 6
    robust sds from the old median, which is a spike."""
    def plan(inst: SensorInstance, r: random.Random) -> None:
        assert inst.sensor is not None
        sensor = inst.sensor
        shift = r.choice((-1, 1)) * r.uniform(5, 6) * sensor.noise
        hold_s = float(iot_detectors.thresholds("drift")["min_minutes"]) * 60 + 30
        hold = math.ceil(hold_s / (sensor.interval_s * (1 - behaviours.SENSOR_JITTER))) + 10
        inst.warm_up(r)
        for k in range(1, DRIFT_RAMP_READINGS + hold + 1):
            part = min(1.0, k / DRIFT_RAMP_READINGS)
            inst.add(inst.reading(r, lambda now, p=part: sensor.value(r, now) + p * shift, evidence=True), rng=r)

        def settle(now: datetime) -> float:
            sensor.level += shift  # from now on, the fleet reports the new level
            return sensor.value(r, now)

        inst.add(inst.reading(r, settle, last=True), rng=r)
    return _instance("drift", n, rng, plan)


@scenario("dropout")
def dropout(rng: random.Random, n: int) -> Instance:
    """The sensor falls silent for 8-12 usual intervals, then reports again."""
    def plan(inst: SensorInstance, r: random.Random) -> None:
        inst.warm_up(r)
        inst.add(inst.reading(r, evidence=True), rng=r)  # the last reading before the silence
        inst.add(inst.reading(r, last=True), gap_factor=r.uniform(8, 12))
    return _instance("dropout", n, rng, plan)
