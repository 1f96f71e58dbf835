"""`make demo`: bring the stack up, stream NORMAL traffic through it and show the whole loop.

Prints every few seconds: events produced, events processed by the job, dead letters, alerts,
incidents, verdicts and event->alert latency (p50/p99, from the triggering event's time to the moment
the alert row was stored). A simulated analyst (streaming/analyst_simulator.py) judges incidents from
the ground truth while the stream runs. After DURATION (or Ctrl-C): a summary of injected versus
detected instances, then (unless RETRAIN=0) the retraining DAG on those verdicts, its gate decision
and the version the scoring service serves, and the URLs of the UIs; the stack keeps running for
exploration (`make down` stops it).

Knobs (environment): DURATION (60s), MODE (NORMAL), SEED, PACE (0.25: attacks run four times faster,
still inside every pattern's time limits, so the run does not wait minutes for slow scripts),
ANALYST_DELAY (10 s), RETRAIN (1).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from patternalarm import config, model_registry
from patternalarm.config import REPO_ROOT, Settings
from patternalarm.stack import postgres, services
from patternalarm.stack.__main__ import up, urls

REPORT_EVERY_S = 5.0
DRIFT_NEEDS_S = 15 * 60  # shortest DURATION whose drift instances finish within FINISH_WITHIN


def _seconds(duration: str) -> float:
    """'60', '60s', '5m', '1h' -> seconds (the generator's --duration forms)."""
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]] if duration[-1] in units else float(duration)


def _row(settings: Settings, sql: str) -> list[str]:
    return postgres.psql(settings, sql).split("|")


def snapshot(settings: Settings, since: str, run_id: str) -> dict[str, object]:
    """Counts since the demo started, straight from the tables the job writes."""
    processed, invalid = _row(settings, "SELECT coalesce(sum(valid_events),0), coalesce(sum(invalid_events),0) "
                                        f"FROM stream_throughput WHERE window_end > '{since}'")
    alerts, p50, p99 = _row(settings, f"""
        SELECT count(*),
               coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time))::numeric * 1000), 0),
               coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time))::numeric * 1000), 0)
          FROM alerts WHERE stored_at > '{since}' AND pattern <> 'suspicious_activity'""")
    model_made = _row(settings, f"SELECT count(*) FROM alerts WHERE stored_at > '{since}' "
                                "AND pattern = 'suspicious_activity'")[0]
    incidents, verdicts = _row(settings, "SELECT count(*), count(verdict) FROM incidents "
                                         f"WHERE created_at > '{since}'")
    # found = an alert of the instance's pattern and key holds one of its transactions (make evaluate's rule)
    injected, detected = _row(settings, f"""
        SELECT count(*), count(*) FILTER (WHERE EXISTS (
                 SELECT 1 FROM alerts a, jsonb_array_elements_text(a.transaction_ids) AS t(txn)
                  WHERE a.actor_id = g.actor_id AND a.pattern = g.pattern AND g.transaction_ids ? t.txn))
          FROM ground_truth g WHERE g.run_id = '{run_id}'""")
    return {"processed": int(processed), "dead_letters": int(invalid), "alerts": int(alerts),
            "suspicious": int(model_made),
            "incidents": int(incidents), "verdicts": int(verdicts), "p50_ms": int(float(p50)), "p99_ms": int(float(p99)),
            "injected": int(injected), "detected": int(detected)}


def _produced(stats_file: Path) -> dict[str, object]:
    try:
        return json.loads(stats_file.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _line(elapsed: float, gen: dict[str, object], snap: dict[str, object]) -> str:
    return (f"[{elapsed:5.0f}s] produced {gen.get('produced', 0):>7} ({gen.get('achieved_per_min', 0):>8}/min)"
            f" | processed {snap['processed']:>7} | dead letters {snap['dead_letters']:>3}"
            f" | alerts {snap['alerts']:>4} (+{snap['suspicious']} model) | incidents {snap['incidents']:>4} (judged {snap['verdicts']:>4})"
            f" | rule alert latency p50 {snap['p50_ms']} ms p99 {snap['p99_ms']} ms")


def _refusal(settings: Settings) -> str | None:
    """Why the scoring service refused the champion (e.g. trained on an older feature list), if it did."""
    try:
        with urllib.request.urlopen(f"{settings.resolved_serving_url()}/predict/health", timeout=10) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    refusal = body.get("last_refusal") or {}
    return None if body.get("loaded") else refusal.get("reason")


def ensure_model(settings: Settings) -> None:
    """A fresh registry has no champion, and a champion the service refuses (trained on another
    feature list) serves nothing: either way alerts would go unscored, so train `make train`'s
    quickstart model first (1-2 minutes; it registers, promotes and tells the service to reload)."""
    try:
        version = model_registry.champion_version(settings)
    except model_registry.RegistryUnavailable as exc:
        print(f"demo: cannot check the model registry ({exc}); alerts may stay unscored", file=sys.stderr)
        return
    refused = _refusal(settings) if version is not None else None
    if version is not None and refused is None:
        print(f"== model: {settings.model_name} v{version} is {settings.model_alias}")
        return
    why = (f"the service refuses {settings.model_name} v{version} ({refused[:160]})" if refused
           else f"no {settings.model_name}@{settings.model_alias} yet")
    print(f"== model: {why}: training the quickstart model (make train)", flush=True)
    cmd = [services.venv_python("airflow"), "-m", "spark_jobs.train", "--quickstart"]
    done = subprocess.run(cmd, env={**os.environ, **services.component_env(settings)}, cwd=REPO_ROOT)
    if done.returncode != 0:
        print("demo: training failed (see above); the demo goes on with alerts unscored", file=sys.stderr)


def _analyst(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    cmd = [services.venv_python("streaming"), "-m", "streaming.analyst_simulator", *args]
    return subprocess.Popen(cmd, env={**os.environ, **services.component_env(settings)}, cwd=REPO_ROOT,
                            start_new_session=True)


def close_the_loop(settings: Settings) -> None:
    """Verdicts -> retrain -> gate -> hot swap, with what changed printed. The demo's data is minutes
    old, so the DAG runs with label_delay_hours 0 (the ground truth of the unalerted sample is known
    at once here; in production chargebacks take weeks)."""
    before = _champion(settings)
    print(f"\n== retraining on the verdicts (fraud_model_retrain DAG; champion before: v{before})", flush=True)
    conf = json.dumps({"triggered_by": "make demo", "label_delay_hours": 0.0})
    cmd = [services.venv_python("airflow"), "scripts/retrain.py", "--conf", conf]
    done = subprocess.run(cmd, env={**os.environ, **services.component_env(settings)}, cwd=REPO_ROOT,
                          capture_output=True, text=True)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0:
        print(f"  the DAG run did not succeed: {summary or done.stderr.strip()[-400:]}")
        print(f"  {retrain_failure_hint(done.stdout)}")
        return
    row = postgres.psql(settings, "SELECT version || '|' || decided || '|' || coalesce(serving, '') "
                                  "FROM model_deployments ORDER BY deployment_id DESC LIMIT 1")
    version, decided, serving = (row.split("|") + ["", "", ""])[:3]
    print(f"  trained v{version}: {decided}; scoring service: {serving or 'not asked'}")
    print(f"  champion now v{_champion(settings)}; the service serves {_served_version(settings)}")


# The validate task's error (expectations.training_set.TrainingSetInvalid) lists what failed.
_FAILED_EXPECTATIONS = re.compile(r"failed \d+ expectation\(s\): (\[[^\]]*\])")


def retrain_failure_hint(dag_output: str) -> str:
    """What to do about a failed retrain, from the DAG run's log: a training set refused by Great
    Expectations is named with the expectations it failed; anything else points at the task logs."""
    match = _FAILED_EXPECTATIONS.search(dag_output)
    if match is None:
        return "(the Airflow UI and `make retrain` show each task's log)"
    return (f"(the training set failed Great Expectations: {match.group(1)}. Too few labelled windows, or "
            "too little fraud among them (min_positive_share), and training also needs fraud in its "
            "holdout: a longer demo, e.g. DURATION=5m, gives the simulated analyst more attacks to judge)")


def _champion(settings: Settings) -> str:
    try:
        return model_registry.champion_version(settings) or "none"
    except model_registry.RegistryUnavailable as exc:
        return f"unknown ({exc})"


def _served_version(settings: Settings) -> str:
    try:
        with urllib.request.urlopen(f"{settings.resolved_serving_url()}/predict/health", timeout=10) as resp:
            body = json.loads(resp.read())
        return f"v{body.get('model_version')}"
    except (OSError, ValueError) as exc:
        return f"unknown ({exc})"


def main(args: list[str]) -> int:
    settings = config.load()
    duration = os.environ.get("DURATION", "")
    mode = os.environ.get("MODE", "NORMAL")
    pace = os.environ.get("PACE", "0.25")
    print("== PatternAlarm demo: starting the stack")
    if up([]) != 0:
        print("demo: the stack did not come up; `make status` shows which service and its log", file=sys.stderr)
        return 1
    ensure_model(settings)
    since = datetime.now(timezone.utc).isoformat()
    run_id = f"demo-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    stats_file = settings.resolved_var_dir() / "run" / f"{run_id}.json"
    # A fresh seed per demo unless SEED is given: the same seed repeats the same transaction ids,
    # which the job rightly treats as a replay and does not alert on twice.
    seed = os.environ.get("SEED") or str(int(time.time()))
    cmd = [services.venv_python("streaming"), "-m", "streaming.generator", "--mode", mode, "--seed", seed,
           "--run-id", run_id, "--stats-file", str(stats_file), "--pace", pace,
           "--finish-within", os.environ.get("FINISH_WITHIN", "300")]
    if duration:
        cmd += ["--duration", duration]
    if not duration or _seconds(duration) < DRIFT_NEEDS_S:
        # A drift must hold for 10 minutes after a baseline: a short demo would wait for it to end.
        cmd += ["--without", "drift"]
        print(f"== drift is left out (it needs {DRIFT_NEEDS_S // 60} min; DURATION=20m includes it)")
    print(f"== generator: {mode} {'for ' + duration if duration else 'until Ctrl-C'} (run {run_id}, seed {seed}, "
          f"attacks at pace {pace})")
    # Own sessions: Ctrl-C reaches only this process, which forwards one SIGINT (the generator then
    # finishes running attacks; a second Ctrl-C there would stop it at once).
    generator = subprocess.Popen(cmd, env={**os.environ, **services.component_env(settings)}, cwd=REPO_ROOT,
                                 start_new_session=True)
    analyst = _analyst(settings, "--delay", os.environ.get("ANALYST_DELAY", "10"), "--seed", seed)
    signal.signal(signal.SIGINT, lambda *_: generator.send_signal(signal.SIGINT))
    started = time.monotonic()
    while generator.poll() is None:
        time.sleep(REPORT_EVERY_S)
        print(_line(time.monotonic() - started, _produced(stats_file), snapshot(settings, since, run_id)), flush=True)
    # The job flushes its last windows a moment after the final events: give it a few seconds.
    final = snapshot(settings, since, run_id)
    deadline = time.monotonic() + 30
    while final["detected"] < final["injected"] and time.monotonic() < deadline:
        time.sleep(2)
        final = snapshot(settings, since, run_id)
    analyst.terminate()
    analyst.wait(30)
    _analyst(settings, "--once", "--delay", "0", "--seed", seed).wait(120)  # whatever is still open
    final = snapshot(settings, since, run_id)
    gen = _produced(stats_file)
    print(_line(time.monotonic() - started, gen, final))
    print("\n== summary")
    print(f"  events produced {gen.get('produced', 0)} at {gen.get('achieved_per_min', 0)}/min "
          f"(target {gen.get('target_per_min', 0)}/min), delivery errors {gen.get('errors', 0)}")
    print(f"  events processed by the job {final['processed']}, dead letters {final['dead_letters']}")
    print(f"  alerts {final['alerts']}, incidents {final['incidents']} (judged by the simulated analyst "
          f"{final['verdicts']}), latency p50 {final['p50_ms']} ms / p99 {final['p99_ms']} ms")
    print(f"  injected pattern instances {final['injected']}, found as incidents {final['detected']}"
          + (f" ({gen['abandoned_instances']} still running at the end were abandoned, FINISH_WITHIN)"
             if gen.get("abandoned_instances") else ""))
    print("\n== per pattern (make evaluate)", flush=True)
    subprocess.run([services.venv_python("streaming"), "-m", "streaming.evaluate", "--run-id", run_id],
                   env={**os.environ, **services.component_env(settings)}, cwd=REPO_ROOT)
    if os.environ.get("RETRAIN", "1") != "0":
        close_the_loop(settings)
    print("\n== UIs (the stack keeps running; `make down` stops it)")
    urls()
    return 0 if generator.returncode == 0 else generator.returncode
