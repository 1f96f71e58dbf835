"""`make retrain`: run the fraud_model_retrain DAG to completion here, with dag.test().

    python scripts/retrain.py [--conf '{"gate_margin": 0.02, "triggered_by": "alice"}']

Airflow is configured like the stack's (patternalarm.stack.services.airflow_env: metadata in the
PostgreSQL `airflow` database, connection spark_default, the venv's spark-submit on PATH) before it is
imported, so the run shows in the Airflow UI like any other. Exit status 0 only when the run succeeded.
Runs in the airflow venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from patternalarm import config  # noqa: E402
from patternalarm.stack import services  # noqa: E402

DAG_ID = "fraud_model_retrain"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf", default="{}", help="DAG params as a JSON object (see the DAG's docs)")
    args = parser.parse_args(argv)
    conf = json.loads(args.conf)
    conf.setdefault("triggered_by", f"make retrain ({os.environ.get('USER', 'unknown')})")
    os.environ.update(services.airflow_env(config.load()))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)

    from airflow.models import DagBag
    from airflow.utils.state import DagRunState

    bag = DagBag(dag_folder=str(config.REPO_ROOT / "dags"), include_examples=False)
    dag = bag.get_dag(DAG_ID)
    if dag is None:
        print(f"retrain: DAG {DAG_ID} did not load: {bag.import_errors}", file=sys.stderr)
        return 1
    run = dag.test(run_conf=conf)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    print(json.dumps({"dag_id": DAG_ID, "run_id": run.run_id, "state": run.state, "tasks": states}))
    return 0 if run.state == DagRunState.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
