"""Benchmark: the retraining path on 1,000,000 labelled windows (prints numbers; not a test).

    $(python3 scripts/envs.py python airflow) scripts/bench_retrain.py [--rows 1000000] [--keep]

What it does, each step timed:

1. **seed** (not part of the path): a scratch PostgreSQL database (migrated like the stack's) gets
   ``--rows`` actor_windows rows (synthetic features as in tests/dags/retrain_data.py: fraudsters'
   windows are larger and faster, with noise; the history features logged with them as the window
   scorer logs them), their ground truth and incidents with verdicts, by COPY.
2. **the fraud_model_retrain DAG** under ``dag.test()`` with ``sample_rate`` 1.0 and no label delay, so
   every window is a labelled training row (reviewed windows plus the whole unalerted rest): extract
   (PostgreSQL -> CSV), validate (Great Expectations), train (spark-submit through spark_default:
   split, fit, holdout metrics, MLflow run, model + serving file, registered version), gate (numpy
   backtest of the recent period), serve (skipped: verify_serving false), record. Each task's duration
   comes from its task instance.
3. **gate with a champion**: the first run had no champion, so the gate scored one model; this step
   registers the same run again and gates it against the champion, scoring both (the daily case).
4. **backtest** (``--backtest-rows``, default 1,000,000; 0 skips): a synthetic labelled history CSV
   (a week of customers' payments plus card-testing bursts) in non-default column names, through
   ``spark_jobs.backtest`` (mapping, windows, the new version's serving forest, metrics, MLflow run)
   in a local[*] Spark session. The model was trained on the synthetic windows above, so only the
   time is meaningful, not the metrics.

A private MLflow server (sqlite, under var/bench_retrain/) holds the runs: the stack's registry and
its scoring service are never touched. The scratch database and var/bench_retrain/ are removed at the
end (``--keep`` keeps them). Goal (issue 5): the retrain DAG on 1,000,000 labelled rows in <= 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patternalarm import config, features, history_features  # noqa: E402
from patternalarm.stack import postgres, services  # noqa: E402

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
DOMAINS = ("fintech", "ecommerce", "gaming", "iot")


def say(message: str) -> None:
    print(f"bench_retrain: {message}", file=sys.stderr, flush=True)


def _features(rng: random.Random, fraud: bool, domain: str) -> str:
    """One window's feature JSON; fraud windows larger, faster, more counterparties (with noise)."""
    f = {n: round(rng.random(), 4) for n in features.FEATURE_NAMES}
    scale = 3.0 if fraud else 1.0
    f.update(txn_count=float(rng.randint(1, 4) + (rng.randint(2, 8) if fraud else 0)),
             amount_sum=round(rng.uniform(10, 200) * scale, 2), velocity_per_min=round(rng.uniform(0, 3) * scale, 4),
             distinct_counterparties=float(rng.randint(1, 3) + (rng.randint(0, 5) if fraud else 0)))
    for d in DOMAINS:
        f[f"domain_{d}"] = 1.0 if d == domain else 0.0
    f.update(_logged_history(rng, fraud))
    return json.dumps(f, separators=(",", ":"))


def _logged_history(rng: random.Random, fraud: bool) -> dict[str, float]:
    """History features as the window scorer logs them with each window it scores (so the
    extraction reads them instead of computing them): counts, means (-1 when the count is 0) and
    fraud rates (-1 when nothing labelled), fraudsters' counterparties riskier."""
    out: dict[str, float] = {}
    for name in history_features.HISTORY_FEATURE_NAMES:
        if name == "history_coverage_min":
            out[name] = 10080.0  # a store older than the longest horizon, as in production
        elif "_count_" in name:
            out[name] = float(rng.randint(0, 40))
        elif "_amount_mean_" in name:
            out[name] = -1.0 if rng.random() < 0.1 else round(rng.uniform(10, 300), 2)
        else:
            out[name] = -1.0 if rng.random() < 0.3 else round(rng.random() * (0.3 if fraud else 0.05), 4)
    return out


def _copy_lines(rows: int, seed: int) -> tuple[Iterator[str], dict[str, list[tuple[Any, ...]]]]:
    """Tab-separated actor_windows lines (generator) and the truth/incident rows they imply.

    Shape: ``rows / 100`` actors over 100 minutes; every 20th actor a fraudster attacking every third
    minute (~1.7% positive windows); half the fraudsters alerted with a fraud verdict; every 50th
    legit actor raises a false positive every 10 minutes (legit verdict).
    """
    minutes = 100
    actors = max(1, rows // minutes)
    truth: list[tuple[Any, ...]] = []
    incidents: list[tuple[Any, ...]] = []
    for a in range(actors):
        actor, domain = f"actor-{a}", DOMAINS[a % 4]
        for m in range(minutes):
            start = START + timedelta(minutes=m)
            first, last = start + timedelta(seconds=5), start + timedelta(seconds=50)
            if a % 20 == 0 and m % 3 == 0:
                truth.append((f"gt-{a}-{m}", domain, actor, first, last))
                if a % 40 == 0:
                    incidents.append((f"inc-{a}-{m}", domain, actor, first, last, "fraud"))
            elif a % 50 == 1 and m % 10 == 0:
                incidents.append((f"inc-{a}-{m}", domain, actor, first, last, "legit"))

    def lines() -> Iterator[str]:
        rng = random.Random(seed)
        for a in range(actors):
            actor, domain = f"actor-{a}", DOMAINS[a % 4]
            for m in range(minutes):
                start = START + timedelta(minutes=m)
                fraud = a % 20 == 0 and m % 3 == 0
                yield (f"{actor}\t{domain}\t{start.isoformat()}\t{(start + timedelta(minutes=1)).isoformat()}\t1\t"
                       f"{_features(rng, fraud, domain)}\n")

    return lines(), {"truth": truth, "incidents": incidents}


class _LineReader(io.RawIOBase):
    """A file-like view of a line generator, so COPY streams it without building 1M rows in memory."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines, self._buffer = lines, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while len(self._buffer) < len(target):
            chunk = "".join(line for _, line in zip(range(2000), self._lines))
            if not chunk:
                break
            self._buffer += chunk.encode()
        n = min(len(target), len(self._buffer))
        target[:n], self._buffer = self._buffer[:n], self._buffer[n:]
        return n


def seed_database(settings: config.Settings, rows: int, seed: int) -> dict[str, int]:
    import psycopg2

    lines, extra = _copy_lines(rows, seed)
    with psycopg2.connect(settings.db_url(settings.pg_database)) as conn, conn.cursor() as cur:
        cur.copy_expert("COPY actor_windows (actor_id, domain, window_start, window_end, event_count, features) "
                        "FROM STDIN", io.BufferedReader(_LineReader(lines), 1 << 20))
        cur.executemany("INSERT INTO ground_truth (instance_id, run_id, pattern, domain, actor_id, transaction_ids, "
                        "first_event_time, last_event_time) VALUES (%s, 'bench', 'synthetic', %s, %s, '[]', %s, %s)",
                        extra["truth"])
        cur.executemany("INSERT INTO incidents (incident_id, pattern, domain, actor_id, severity, first_event_time, "
                        "last_event_time, verdict, verdict_by, verdict_at) VALUES (%s, 'synthetic', %s, %s, 'HIGH', "
                        "%s, %s, %s, 'bench', now())", extra["incidents"])
        cur.execute("ANALYZE actor_windows; ANALYZE ground_truth; ANALYZE incidents")
        cur.execute("SELECT count(*) FROM actor_windows")
        windows = int(cur.fetchone()[0])
    return {"windows": windows, "truth": len(extra["truth"]), "incidents": len(extra["incidents"])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mlflow(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private MLflow server (sqlite, proxied artifacts) in its own process group."""
    root.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{_free_port()}"
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1],
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start; see {root / 'server.log'}")
            time.sleep(0.5)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def run_dag(tracking_uri: str, args: argparse.Namespace) -> tuple[Any, dict[str, float]]:
    """The retrain DAG under dag.test(); (dag run, task id -> seconds).

    dag.test() in Airflow 2.8 leaves task instances without start/end dates, so each task's run is
    timed by wrapping the function dag.test() calls per task (airflow.models.dag._run_task).
    """
    import airflow.models.dag as dag_module
    from airflow.models import DagBag

    durations: dict[str, float] = {}
    original = dag_module._run_task

    def timed(*, ti: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return original(ti=ti, **kwargs)
        finally:
            durations[ti.task_id] = durations.get(ti.task_id, 0.0) + time.monotonic() - started

    dag = DagBag(dag_folder=str(config.REPO_ROOT / "dags"), include_examples=False).get_dag("fraud_model_retrain")
    for t in dag.tasks:
        t.retries = 0
    conf = {"tracking_uri": tracking_uri, "verify_serving": False, "sample_rate": 1.0, "label_delay_hours": 0.0,
            "now": (START + timedelta(minutes=101)).isoformat(), "num_trees": args.num_trees,
            "max_depth": args.max_depth, "min_rows": 1000, "triggered_by": "bench_retrain"}
    dag_module._run_task = timed
    try:
        run = dag.test(run_conf=conf)
    finally:
        dag_module._run_task = original
    return run, durations


def gate_with_champion(settings: config.Settings, folder: Path, tracking_uri: str) -> tuple[float, dict[str, Any]]:
    """Register the trained run again and gate it against the champion (both models score)."""
    from spark_jobs import retrain, train

    trained = json.loads((folder / retrain.RESULT_FILE).read_text())
    version = train.register(tracking_uri, settings.model_name, trained["run_id"], alias=None)
    started = time.monotonic()
    decision = retrain.gate(settings, folder / retrain.TRAINING_FILE, version, tracking_uri, margin=0.0)
    return time.monotonic() - started, {"decided": decision.decided, "period_rows": decision.period_rows,
                                        "new": decision.new, "champion": decision.champion}


def _read_json(path: Path) -> dict[str, Any]:
    """A step's JSON output, or {} when the step did not get that far."""
    return dict(json.loads(path.read_text())) if path.exists() else {}


HISTORY_MAPPING = {"actor": "customer", "counterparty": "terminal", "amount": "tx_amount", "timestamp": "tx_time",
                   "label": "is_fraud", "pattern": "scenario"}


def write_history(path: Path, rows: int, seed: int) -> int:
    """A week of payments: customers paying at random times, and every ~1000th row a card tester's
    burst of 6 small payments within a minute (fraud, scenario card_testing). Returns the row count."""
    import csv

    rng = random.Random(seed)
    customers = max(10, rows // 20)
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["customer", "terminal", "tx_amount", "tx_time", "is_fraud", "scenario"])
        while written < rows:
            when = START + timedelta(seconds=rng.random() * 7 * 86400)
            if rng.random() < 0.001 and written + 6 <= rows:
                tester = f"tester-{written}"
                for j in range(6):
                    out.writerow([tester, f"t{rng.randrange(5000)}", round(rng.uniform(1, 4), 2),
                                  (when + timedelta(seconds=3 * j)).strftime("%Y-%m-%d %H:%M:%S"), 1, "card_testing"])
                written += 6
            else:
                out.writerow([f"c{rng.randrange(customers)}", f"t{rng.randrange(5000)}", round(rng.uniform(5, 300), 2),
                              when.strftime("%Y-%m-%d %H:%M:%S"), 0, ""])
                written += 1
    return written


def bench_backtest(path: Path, tracking_uri: str, model_name: str) -> dict[str, Any]:
    """spark_jobs.backtest on the history file in a local[*] session; seconds and the overall line."""
    from spark_jobs import backtest, history, metrics, train

    spark = train.spark_session("local[*]", app_name="patternalarm-bench-backtest")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        started = time.monotonic()
        result = backtest.backtest(spark, path, history.ColumnMapping(**HISTORY_MAPPING), tracking_uri, model_name,
                                   "champion", 100, metrics.AlertBudget.parse("1%"))
        seconds = time.monotonic() - started
    finally:
        spark.stop()
    return {"seconds": seconds, "windows": int(result.overall["windows"]), "days": int(result.overall["days"]),
            "rows": result.lineage["rows"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="labelled windows (actor_windows rows)")
    parser.add_argument("--num-trees", type=int, default=50)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backtest-rows", type=int, default=1_000_000, help="history rows to backtest (0: skip)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    base = config.load()
    work = base.resolved_var_dir() / "bench_retrain"
    database = f"pa_bench_{uuid.uuid4().hex[:8]}"
    postgres.psql(base, f'CREATE DATABASE "{database}"', database="postgres")
    os.environ.update({"PA_PG_DATABASE": database, "PA_VAR_DIR": str(work / "var")})
    settings = config.load()
    mlflow_proc, tracking_uri = start_mlflow(work / f"mlflow-{database}")
    timings: dict[str, float] = {}
    try:
        postgres.migrate(settings)
        started = time.monotonic()
        counts = seed_database(settings, args.rows, args.seed)
        timings["seed (not part of the path)"] = time.monotonic() - started
        say(f"seeded {counts} in {timings['seed (not part of the path)']:.1f} s; running the DAG")
        os.environ.update(services.airflow_env(settings))
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        started = time.monotonic()
        run, durations = run_dag(tracking_uri, args)
        dag_wall = time.monotonic() - started
        from spark_jobs import retrain

        folder = retrain.run_folder(settings, run.run_id)
        trained, extracted = (_read_json(folder / name) for name in (retrain.RESULT_FILE, retrain.LINEAGE_FILE))
        gate_s, gate_info = gate_with_champion(settings, folder, tracking_uri) if trained else (float("nan"), {})
        backtested: dict[str, Any] = {}
        if args.backtest_rows and trained:
            started = time.monotonic()
            history_rows = write_history(work / "history.csv", args.backtest_rows, args.seed)
            timings["history file (not part of the path)"] = time.monotonic() - started
            say(f"wrote {history_rows:,} history rows in {timings['history file (not part of the path)']:.1f} s; "
                "backtesting")
            backtested = bench_backtest(work / "history.csv", tracking_uri, settings.model_name)
    finally:
        stop(mlflow_proc)
        if not args.keep:  # the database, the private registry and the files (hundreds of MB at 1M rows)
            postgres.drop_database(base, database)
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nretrain DAG on {counts['windows']:,} actor windows ({extracted.get('rows', 0):,} labelled training "
          f"rows; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}) -> state {run.state}")
    for task_id in ("extract", "validate", "train", "gate", "serve", "record"):
        print(f"  {task_id:<9} {durations.get(task_id, float('nan')):8.1f} s")
    print(f"  {'total':<9} {sum(durations.values()):8.1f} s of tasks; {dag_wall:.1f} s wall for dag.test() "
          f"(goal <= 600 s)")
    metrics = trained.get("metrics", {})
    print(f"  inside train: forest fit {metrics.get('fit_seconds', float('nan')):.1f} s on "
          f"{int(metrics.get('train_windows', 0)):,} windows; holdout {int(metrics.get('holdout_windows', 0)):,} "
          f"windows: ROC AUC {metrics.get('roc_auc', float('nan')):.4f}, AP "
          f"{metrics.get('average_precision', float('nan')):.4f}, precision/recall at the budget "
          f"{metrics.get('precision_at_budget', float('nan')):.4f}/{metrics.get('recall_at_budget', float('nan')):.4f}")
    print(f"  gate against a champion (two models score {gate_info.get('period_rows', 0):,} windows): {gate_s:.1f} s "
          f"-> {gate_info.get('decided')}")
    print(f"  seed: {timings['seed (not part of the path)']:.1f} s (COPY, not part of the path)")
    if backtested:
        print(f"backtest of {backtested['rows']:,} history transactions ({backtested['windows']:,} windows, "
              f"{backtested['days']} days; mapping, Spark windows, numpy scoring, metrics, MLflow run): "
              f"{backtested['seconds']:.1f} s")
    return 0 if str(run.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
