"""The MLflow model registry as the scoring service sees it: which version the alias names, and its file.

Convention (shared with the training DAG): a registered version's run holds the numpy forest at
artifact path ``serving_model/forest.npz`` (and the Spark model at ``spark_model``). The service never
imports Spark; it downloads that one file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
from mlflow.tracking import MlflowClient

SERVING_ARTIFACT = "serving_model/forest.npz"

# Error codes MLflow uses for "no such model / no such alias"; anything else is an outage.
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


class RegistryError(RuntimeError):
    """The registry could not be asked (down, timeout, permission): keep serving what is loaded."""


class ArtifactMissing(ValueError):
    """The version's run has no serving artifact: that version can never serve."""


@dataclass(frozen=True)
class RegistryVersion:
    name: str
    version: str
    run_id: str | None
    alias: str

    @property
    def key(self) -> tuple[str, str | None]:
        """A version number is reused if a registered model is deleted and recreated; the run is not."""
        return self.version, self.run_id


def limit_http_retries(timeout_s: int) -> None:
    """Bound MLflow's HTTP retries unless the operator chose otherwise.

    Why: MLflow retries a refused connection with exponential backoff for minutes by default, which
    would stall startup and the poller while the registry is down; the poller retries anyway.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout_s))


class Registry:
    """Reads the alias and downloads serving artifacts; one client, reused across polls."""

    def __init__(self, tracking_uri: str, name: str, alias: str) -> None:
        self.tracking_uri = tracking_uri
        self.name = name
        self.alias = alias
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def champion(self) -> RegistryVersion | None:
        """The version behind the alias, or None when the model or the alias does not exist."""
        try:
            mv = self._client.get_model_version_by_alias(self.name, self.alias)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                return None
            raise RegistryError(f"MLflow registry at {self.tracking_uri} failed: {_first_line(exc)}") from exc
        except Exception as exc:  # connection refused, DNS, timeouts come as requests/urllib3 errors
            raise RegistryError(f"MLflow registry at {self.tracking_uri} unreachable: {_first_line(exc)}") from exc
        return RegistryVersion(name=self.name, version=str(mv.version), run_id=mv.run_id, alias=self.alias)

    def artifact_repo(self, run_id: str) -> ArtifactRepository:
        """The run's artifact store, with ``mlflow-artifacts:`` URIs resolved against OUR tracking URI.

        Why: MLflow resolves proxied-artifact URIs against the process-global tracking URI, not the
        client's, so without this a client built with an explicit URI downloads from the wrong place
        (or fails with "the tracking URI must be a valid http or https URI").
        """
        uri = self._client.get_run(run_id).info.artifact_uri
        if urlparse(uri).scheme == "mlflow-artifacts":
            uri = MlflowArtifactsRepository.resolve_uri(uri, self.tracking_uri)  # type: ignore[no-untyped-call]
        return get_artifact_repository(uri)

    def download(self, version: RegistryVersion, model_dir: Path) -> Path:
        """The version's forest.npz under model_dir, downloaded once (atomically) and reused."""
        if not version.run_id:
            raise ArtifactMissing(f"{version.name} v{version.version} has no run; register versions from the "
                                f"training run that logged {SERVING_ARTIFACT}")
        target_dir = model_dir / _safe(version.name) / f"v{version.version}-{version.run_id}"
        target = target_dir / Path(SERVING_ARTIFACT).name
        if target.exists():
            return target
        target_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target_dir))
        try:
            repo = self.artifact_repo(version.run_id)
            local = repo.download_artifacts(SERVING_ARTIFACT, str(staging))  # type: ignore[no-untyped-call]
            os.replace(local, target)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise ArtifactMissing(f"run {version.run_id} of {version.name} v{version.version} has no "
                                      f"{SERVING_ARTIFACT}: log it with the training run") from exc
            raise RegistryError(f"downloading {SERVING_ARTIFACT} of run {version.run_id} failed: "
                                f"{_first_line(exc)}") from exc
        except MlflowException as exc:
            raise ArtifactMissing(f"run {version.run_id} of {version.name} v{version.version} has no "
                                  f"{SERVING_ARTIFACT} ({_first_line(exc)}): log it with the training run") from exc
        except Exception as exc:  # connection errors surface as requests/urllib3/OS errors
            raise RegistryError(f"downloading {SERVING_ARTIFACT} of run {version.run_id} failed: "
                                f"{_first_line(exc)}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def prune_downloads(model_dir: Path, name: str, keep: list[Path]) -> None:
    """Delete downloaded versions other than ``keep`` (the serving one and its predecessor)."""
    base = model_dir / _safe(name)
    if not base.is_dir():
        return
    kept = {p.resolve() for p in keep}
    for child in base.iterdir():
        if child.is_dir() and child.resolve() not in kept:
            shutil.rmtree(child, ignore_errors=True)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
