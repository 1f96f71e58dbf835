"""IoT detectors through the real job: a positive case and near misses per detector, in simulated time.

Every case's device reports every 2 s from the base day until END (16 minutes), so no device falls
silent except where a case means it; the harness's flush (40 days later) then passes every device's
deadline at once with no reading in between, which must not be a dropout (a hole in the whole stream
is not every device failing). Sensors are steady (odd indexes); values come from a seeded generator.
"""

from __future__ import annotations

import random
import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from patternalarm.config import REPO_ROOT
from patternalarm.events import parse_timestamp
from streaming import behaviours, iot_detectors, patterns
from streaming.generator import EventStream, run_offline
from tests.streaming.pattern_harness import Outcome, PatternCase, assert_case, at, run_cases

INTERVAL_S = 2.0
END_S = 16 * 60
BASELINE = 60  # normal readings before an anomaly
RAMP = 60


def dev(index: int) -> str:
    return behaviours.actor_id("iot", index)


def series(index: int, value: Callable[[int, float], float | None], start_s: float = 0.0,
           end_s: float = END_S, gaps: dict[int, float] | None = None) -> list[dict[str, Any]]:
    """Readings of sensor `index` every INTERVAL_S (gaps: reading k comes that many intervals after
    k-1); value(k, normal) gives reading k from the sensor's own normal value (None: skip it)."""
    sensor = behaviours.Sensor.of(index, INTERVAL_S)
    rng = random.Random(index)
    out, t, k = [], start_s, 0
    while t < end_s:
        moment = at(timedelta(seconds=t))
        v = value(k, sensor.value(rng, moment))
        if v is not None:
            out.append(behaviours.sensor_reading(rng, sensor, moment, v))
        k += 1
        t += INTERVAL_S * (gaps or {}).get(k, 1.0)
    return out


def normal(k: int, v: float) -> float:
    return v


def robust_window(values: list[float], window: int = 100) -> tuple[float, float]:
    """(median, 1.4826 x MAD) of the last `window` readings that differ from the one before: the
    detector's window."""
    kept = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]][-window:]
    m = statistics.median(kept)
    return m, 1.4826 * statistics.median(abs(v - m) for v in kept)


def spike_at(sds: float, at: int = BASELINE) -> Callable[[int, float], float]:
    """Normal readings, reading `at` `sds` robust sds above the window's median."""
    seen: list[float] = []

    def value(k: int, v: float) -> float:
        if k == at:
            m, sd = robust_window(seen)
            return m + sds * sd
        seen.append(round(v, 3))
        return v
    return value


def stuck(readings: int) -> Callable[[int, float], float]:
    """Normal readings, then `readings` identical ones from BASELINE on, then normal again."""
    held: list[float] = []

    def value(k: int, v: float) -> float:
        if BASELINE <= k < BASELINE + readings:
            held.append(v) if not held else None
            return held[0]
        return v
    return value


def shifted(noise_sds: float, hold_s: float, back: bool) -> Callable[[int], Callable[[int, float], float]]:
    """A ramp of RAMP readings up by noise_sds x the sensor's noise, held hold_s (then ramped back down)."""
    def make(index: int) -> Callable[[int, float], float]:
        shift = noise_sds * behaviours.Sensor.of(index).noise
        hold = int(hold_s / INTERVAL_S)

        def fn(k: int, v: float) -> float:
            j = k - BASELINE
            if j < 0:
                return v
            up = min(1.0, j / RAMP)
            if back and j > RAMP + hold:
                up = max(0.0, 1.0 - (j - RAMP - hold) / RAMP)
            return v + up * shift
        return fn
    return make


SILENT_AT = 45  # the reading that comes after the silence (45 readings before it: a window to judge with)
SPIKE_AFTER = 40  # readings back at the new level before the injected spike (>= spike.min_readings)


def back_from_silence(index: int, spike_after: int) -> Callable[[int, float], float]:
    """Normal readings before SILENT_AT; from it on the level is 10 noise sds higher, and reading
    SILENT_AT + spike_after is 12 robust sds above the window of the readings since SILENT_AT (the
    window the detector holds if the silence restarted it)."""
    shift = 10 * behaviours.Sensor.of(index).noise
    since: list[float] = []

    def value(k: int, v: float) -> float:
        if k < SILENT_AT:
            return v
        if k == SILENT_AT + spike_after:
            m, sd = robust_window(since)
            return m + 12.0 * sd
        since.append(round(v + shift, 3))
        return v + shift
    return value


def case(name: str, events: list[dict[str, Any]], fires: dict[int, str] | None = None,
         quiet: dict[int, str] | None = None) -> PatternCase:
    return PatternCase(name, events, expect={dev(i): p for i, p in (fires or {}).items()},
                       expect_none={dev(i): p for i, p in (quiet or {}).items()})


ALL = ("spike", "flatline", "drift", "dropout")


def only(index: int, pattern: str | None) -> tuple[dict[int, str], dict[int, str]]:
    return ({index: pattern} if pattern else {}), {index: p for p in ALL if p != pattern}


CASES = [
    case("spike: one reading 12 robust sds above the median", series(9_000_001, spike_at(12.0)),
         *only(9_000_001, "spike")),
    case("spike near miss: 5.5 robust sds", series(9_000_003, spike_at(5.5)), *only(9_000_003, None)),
    case("flatline: 30 identical readings from a varying sensor", series(9_000_005, stuck(30)),
         *only(9_000_005, "flatline")),
    case("flatline near miss: 29 identical readings", series(9_000_007, stuck(29)), *only(9_000_007, None)),
    case("flatline near miss: a sensor that never varies", series(9_000_009, lambda k, v: 21.5),
         *only(9_000_009, None)),
    case("drift: up 5.5 noise sds (ramped over 2 min) and held to the end (12 min)",
         series(9_000_011, shifted(5.5, END_S, back=False)(9_000_011)), *only(9_000_011, "drift")),
    case("drift near miss: up 5.5 noise sds for 8 minutes, then back",
         series(9_000_013, shifted(5.5, 8 * 60, back=True)(9_000_013)), *only(9_000_013, None)),
    case("drift near miss: up 2 noise sds, held to the end",
         series(9_000_015, shifted(2.0, END_S, back=False)(9_000_015)), *only(9_000_015, None)),
    case("dropout: silent after 3 minutes while the other devices go on",
         series(9_000_017, normal, end_s=3 * 60), *only(9_000_017, "dropout")),
    case("dropout near miss: silent for 4 usual intervals, then back",
         series(9_000_019, normal, gaps={BASELINE: 4.0}), *only(9_000_019, None)),
    # read from a backlog, the reading after the silence can come before the watermark reaches the
    # deadline: it must not cancel the dropout that already happened
    case("dropout: silent for 10 usual intervals, then back",
         series(9_000_021, normal, gaps={BASELINE: 10.0}), *only(9_000_021, "dropout")),
    # a silence longer than the window spans (110 > 100 intervals): the level from before it is not the
    # baseline; back 10 sds higher is no spike and, held 10 more minutes, no drift; a spike against
    # the readings since the silence still is (its evidence is checked below)
    case("spike after a long silence: judged against the readings since",
         series(9_000_023, back_from_silence(9_000_023, SPIKE_AFTER), gaps={SILENT_AT: 110.0}),
         {9_000_023: "spike"}, {9_000_023: "drift"}),
    # near miss: a silence of 60 intervals (shorter than the window) keeps the window
    case("spike after a short silence: judged against the window from before it",
         series(9_000_025, spike_at(12.0, SILENT_AT), gaps={SILENT_AT: 60.0}),
         {9_000_025: "spike"}, {9_000_025: "flatline"}),
]


SPIKE_READING = CASES[0].events[BASELINE]
LAST_BEFORE_SILENCE = CASES[8].events[-1]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run_cases(CASES, Path(tmp_path_factory.mktemp("iot-job")))


@pytest.mark.integration
@pytest.mark.parametrize("pattern_case", CASES, ids=[c.name for c in CASES])
def test_iot_case(pattern_case: PatternCase, outcome: Outcome) -> None:
    assert_case(pattern_case, outcome)


@pytest.mark.integration
def test_alerts_carry_evidence(outcome: Outcome) -> None:
    """The spike's incident holds the reading and the measures that matched; the dropout's, the last
    reading before the silence."""
    (spike,) = outcome.found(dev(9_000_001), "spike")
    (alert,) = spike["evidence"]
    assert alert["measures"]["deviation_sds"] == pytest.approx(12.0, rel=0.01)
    assert alert["transaction_ids"] == [SPIKE_READING["transaction_id"]]
    (dropout,) = outcome.found(dev(9_000_017), "dropout")
    (alert,) = dropout["evidence"]
    assert alert["transaction_ids"] == [LAST_BEFORE_SILENCE["transaction_id"]]
    assert alert["measures"]["usual_interval_s"] == pytest.approx(INTERVAL_S)


@pytest.mark.integration
def test_long_silence_restarts_the_spike_window(outcome: Outcome) -> None:
    """Back from 110 silent intervals at a level 10 sds higher: the one spike is the injected reading
    judged against the readings since the silence (not the first readings back, judged against the
    level from before it), and the silence itself is a dropout. After a silence of 60 intervals the
    window from before it still judges."""
    long_silence, short_silence = CASES[-2], CASES[-1]
    (spike,) = outcome.found(dev(9_000_023), "spike")
    assert [a["transaction_ids"] for a in spike["evidence"]] == [
        [long_silence.events[SILENT_AT + SPIKE_AFTER]["transaction_id"]]]
    assert spike["evidence"][0]["measures"]["deviation_sds"] == pytest.approx(12.0, rel=0.01)
    (dropout,) = outcome.found(dev(9_000_023), "dropout")
    assert dropout["evidence"][0]["transaction_ids"] == [long_silence.events[SILENT_AT - 1]["transaction_id"]]
    (spike,) = outcome.found(dev(9_000_025), "spike")
    assert [a["transaction_ids"] for a in spike["evidence"]] == [[short_silence.events[SILENT_AT]["transaction_id"]]]


def test_docs_list_every_threshold_with_its_default() -> None:
    doc = (REPO_ROOT / "docs" / "patterns.md").read_text()
    for pattern, defaults in iot_detectors.DETECTORS.items():
        for name, default in defaults.items():
            row = f"| `PA_RULE_{pattern.upper()}_{name.upper()}` | {default} |"
            assert row in doc, f"docs/patterns.md lacks the row {row}"


def test_threshold_override_and_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_RULE_DROPOUT_INTERVAL_FACTOR", "7")
    assert iot_detectors.thresholds("dropout")["interval_factor"] == 7.0
    assert '"interval_factor":7.0' in iot_detectors.thresholds_json()
    monkeypatch.setenv("PA_RULE_SPIKE_WINDOW", "lots")
    with pytest.raises(ValueError, match="PA_RULE_SPIKE_WINDOW"):
        iot_detectors.thresholds("spike")


def test_reading_columns_are_found_by_name_and_type_checked() -> None:
    """IotReadings.java reads RowData by position and type: the job passes positions off the schema,
    and a column of another type is refused before the JVM reads it wrongly."""
    names = ["payload", "reject_reason", "transaction_id", "domain", "actor_id", "event_time", "amount"]
    types = ["STRING", "STRING", "STRING NOT NULL", "STRING", "STRING", "TIMESTAMP(3) *ROWTIME*", "DOUBLE"]
    assert iot_detectors.reading_positions(names, types) == [1, 3, 4, 2, 6, 5]
    with pytest.raises(ValueError, match="'amount' is DECIMAL.*DOUBLE"):
        iot_detectors.reading_positions(names, [*types[:-1], "DECIMAL(10, 2)"])
    with pytest.raises(ValueError, match="no column 'amount'"):
        iot_detectors.reading_positions(names[:-1], types[:-1])


def test_pa_patterns_selects_iot_detectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_PATTERNS", "card_testing,dropout")
    assert iot_detectors.enabled() == ["dropout"]
    assert patterns.enabled() == ["card_testing"]
    assert "IN ('dropout')" in iot_detectors.alerts_select()
    monkeypatch.setenv("PA_PATTERNS", "spike")
    assert patterns.enabled() == [] and iot_detectors.enabled() == ["spike"]


def test_fleet_sensors_keep_their_schedule() -> None:
    """Ten simulated minutes at NORMAL without injections: every sensor reports at its usual interval
    (no gap near the dropout's 5x), the IoT share stays near 15 % x headroom, the total rate is kept."""
    sent: list[dict[str, Any]] = []
    stream = EventStream(7, 0.0, "fleet", rate_per_min=10_000)
    run_offline(stream, sent.append, lambda t: None, 10_000, 600, at(timedelta(0)))
    assert len(sent) == 100_000
    readings: dict[str, list[float]] = {}
    for e in sent:
        if e["domain"] == "iot":
            readings.setdefault(e["actor_id"], []).append(parse_timestamp(e["timestamp"]).timestamp())
    assert len(readings) == len(stream.fleet.sensors) == 64
    share = sum(map(len, readings.values())) / len(sent)
    assert 0.12 <= share <= 0.135
    for device, times in readings.items():
        gaps = [b - a for a, b in zip(times[1:], times[2:])]  # the first gap starts at a random offset
        usual = statistics.median(gaps)
        assert max(gaps) < 1.6 * usual, f"{device}: a gap of {max(gaps):.1f} s against a usual {usual:.1f} s"


def test_fleet_is_sized_to_the_rate() -> None:
    assert len(behaviours.SensorFleet(5).sensors) == 1  # MINI: one sensor, every ~94 s
    assert len(behaviours.SensorFleet(100_000).sensors) == 638  # CRISIS
    (mini,) = behaviours.SensorFleet(5).sensors
    assert mini.interval_s == pytest.approx(60 / (5 * 0.15 * 0.85), rel=0.01)
