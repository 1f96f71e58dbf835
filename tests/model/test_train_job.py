"""The training job end to end against a real MLflow server (our own, see conftest.py).

Generated data -> Spark forest -> one MLflow run (params, metrics, lineage, Spark model, serving
file) -> a registered version carrying the alias. Then the serving path: the scoring service's own
``Registry`` finds the version by alias and downloads ``serving_model/forest.npz``, which loads in
``ForestModel`` and gives Spark's probabilities on the holdout rows (1e-9).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from patternalarm import config, model_registry
from patternalarm.history_features import MODEL_FEATURE_NAMES

pytest.importorskip("pyspark", reason="Spark tests run in the airflow venv")
pytest.importorskip("mlflow", reason="the registry client runs in the airflow venv")

from mlflow.tracking import MlflowClient  # noqa: E402

from serving.forest_model import ForestModel  # noqa: E402
from serving.registry import SERVING_ARTIFACT, Registry  # noqa: E402
from spark_jobs import train  # noqa: E402

pytestmark = pytest.mark.spark

TOLERANCE = 1e-9
ALIAS = "champion"


@pytest.fixture(scope="module")
def model_name() -> str:
    return f"pa-test-train-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def trained(spark_local: Any, mlflow_server: str, model_name: str,
            tmp_path_factory: pytest.TempPathFactory) -> train.TrainResult:
    args = train.parse_args([
        "--generate", "4", "--mode", "3000", "--fraud-rate", "0.01", "--seed", "11",
        "--num-trees", "12", "--max-depth", "6", "--holdout-fraction", "0.25",
        "--tracking-uri", mlflow_server, "--model-name", model_name, "--alias", ALIAS, "--promote",
        "--work-dir", str(tmp_path_factory.mktemp("train"))])
    return train.run(spark_local, args)


def test_a_version_is_registered_and_carries_the_alias(trained: train.TrainResult, mlflow_server: str,
                                                       model_name: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version_by_alias(model_name, ALIAS)
    assert (version.version, version.run_id) == (trained.version, trained.run_id)
    assert version.source.endswith(train.SPARK_ARTIFACT)
    settings = dataclasses.replace(config.load(), mlflow_url=mlflow_server, model_name=model_name,
                                   model_alias=ALIAS)
    assert model_registry.champion_version(settings) == trained.version  # the REST check `make demo` uses
    assert model_registry.champion_version(dataclasses.replace(settings, model_alias="nobody")) is None


def test_the_run_records_params_metrics_and_lineage(trained: train.TrainResult, mlflow_server: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(trained.run_id)
    assert client.get_experiment(run.info.experiment_id).name == train.EXPERIMENT
    assert {"num_trees": "12", "max_depth": "6", "seed": "11"}.items() <= run.data.params.items()
    for metric in ("roc_auc", "average_precision", "precision_at_threshold", "recall_at_threshold"):
        assert 0.0 <= run.data.metrics[metric] <= 1.0, metric
    lineage = json.loads(Path(client.download_artifacts(trained.run_id, "lineage.json")).read_text())
    assert lineage["source"]["seed"] == 11 and lineage["source"]["kind"] == "generated"
    assert lineage["events_total"] == lineage["source"]["events_generated"] and lineage["events_rejected"] == 0
    assert lineage["train_positive_windows"] > 0 and lineage["holdout_positive_windows"] > 0
    assert lineage["feature_names"] == list(MODEL_FEATURE_NAMES)
    assert lineage["event_time_first"] < lineage["holdout_first_window"] < lineage["event_time_last"]
    artifacts = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {train.SPARK_ARTIFACT, train.SERVING_DIR, "lineage.json"} <= artifacts


def test_the_holdout_is_later_than_the_training_windows(trained: train.TrainResult) -> None:
    train_last = trained.split.train.selectExpr("max(window_start)").first()[0]
    holdout_first = trained.split.holdout.selectExpr("min(window_start)").first()[0]
    assert train_last < holdout_first


def test_the_served_file_gives_sparks_probabilities(spark_local: Any, trained: train.TrainResult,
                                                   mlflow_server: str, model_name: str,
                                                   tmp_path: Path) -> None:
    from pyspark.ml.functions import vector_to_array

    registry = Registry(mlflow_server, model_name, ALIAS)
    champion = registry.champion()
    assert champion is not None and champion.version == trained.version
    path = registry.download(champion, tmp_path)
    assert path.name == Path(SERVING_ARTIFACT).name
    forest = ForestModel.load(path)
    assert forest.feature_names == list(MODEL_FEATURE_NAMES)
    assert forest.num_trees == 12
    scored = (trained.model.transform(trained.split.holdout)
              .select(*MODEL_FEATURE_NAMES, vector_to_array("probability")[1].alias("p")).collect())
    X = np.asarray([[row[n] for n in MODEL_FEATURE_NAMES] for row in scored], dtype=np.float64)
    spark_p = np.asarray([row["p"] for row in scored])
    assert X.shape[0] == trained.lineage["holdout_windows"] > 100
    np.testing.assert_allclose(forest.predict_proba(X), spark_p, rtol=0, atol=TOLERANCE)


def test_registering_without_promote_leaves_the_alias(trained: train.TrainResult, mlflow_server: str,
                                                      model_name: str) -> None:
    assert trained.version is not None
    newer = train.register(mlflow_server, model_name, trained.run_id, alias=None)
    assert int(newer) == int(trained.version) + 1
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    assert client.get_model_version_by_alias(model_name, ALIAS).version == trained.version


def test_the_cli_needs_data_and_refuses_one_class() -> None:
    with pytest.raises(SystemExit):
        train.parse_args([])
    with pytest.raises(ValueError, match="both classes"):
        train.class_weights(1000, 0)


def test_quickstart_sets_make_trains_defaults_and_explicit_flags_win() -> None:
    args = train.parse_args(["--quickstart"])
    assert (args.generate, args.fraud_rate, args.seed, args.num_trees) == (
        train.QUICKSTART["generate"], train.QUICKSTART["fraud_rate"], train.QUICKSTART["seed"],
        train.QUICKSTART["num_trees"])
    assert args.promote and args.reload_serving
    assert train.parse_args(["--quickstart", "--generate", "5", "--num-trees", "7"]).generate == 5.0
    assert train.parse_args(["--quickstart", "--num-trees", "7"]).num_trees == 7
