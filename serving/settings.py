"""The scoring service's one Settings object.

Shared values (database, MLflow, model name and alias, API key, host and port) come from
``patternalarm.config.load()`` so one environment variable means the same thing in every
component; the knobs only this service has are declared here, each with its ``PA_*`` variable.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from patternalarm import config

PLACEHOLDER_API_KEY: str = next(f.default for f in fields(config.Settings) if f.name == "api_key")  # type: ignore[assignment]


class ServingSettings(BaseSettings):
    """Resolved settings of the scoring service; build one per app (tests build their own)."""

    model_config = SettingsConfigDict(env_prefix="PA_", extra="ignore", frozen=True,
                                      protected_namespaces=(), arbitrary_types_allowed=True)

    env: Literal["dev", "test", "prod"] = Field(
        "dev", description="PA_ENV: dev allows the placeholder API key; test and prod refuse it")
    fraud_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="PA_FRAUD_THRESHOLD: is_fraud when fraud_probability >= this")
    max_batch_size: int = Field(
        1000, ge=1, description="PA_MAX_BATCH_SIZE: most actors one /predict/batch call may carry")
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="PA_MAX_BODY_BYTES: larger request bodies get 413")
    model_poll_s: float = Field(
        5.0, gt=0.0, le=300.0, description="PA_MODEL_POLL_S: how often the registry alias is re-read")
    model_dir: str = Field(
        "", description="PA_MODEL_DIR: where downloaded model files are kept; default <var>/models")
    registry_timeout_s: int = Field(
        10, ge=1, description="PA_REGISTRY_TIMEOUT_S: timeout of one MLflow HTTP request")
    db_timeout_s: int = Field(
        3, ge=1, description="PA_DB_TIMEOUT_S: connect timeout of the alerts database")
    access_log: bool = Field(
        False, description="PA_ACCESS_LOG: uvicorn access log (off: it costs more than a prediction; "
                           "/metrics counts requests)")
    top_features: int = Field(
        5, ge=1, description="PA_TOP_FEATURES: how many features each prediction explains")

    core: config.Settings = Field(default_factory=config.load, exclude=True,
                                  description="the shared project settings (patternalarm.config)")

    @model_validator(mode="after")
    def _refuse_placeholder_key(self) -> ServingSettings:
        """Outside dev the verdict and admin endpoints must not open with a key everyone knows."""
        if self.env != "dev" and self.core.api_key == PLACEHOLDER_API_KEY:
            raise ValueError(f"PA_API_KEY is the placeholder {PLACEHOLDER_API_KEY!r} while PA_ENV={self.env}: "
                             "set PA_API_KEY to a secret (e.g. `openssl rand -hex 24`) or run with PA_ENV=dev")
        if not self.core.api_key:
            raise ValueError("PA_API_KEY is empty: set it to a secret")
        return self

    # Shared values, named as the rest of the project names them.
    @property
    def api_key(self) -> str:
        return self.core.api_key

    @property
    def model_name(self) -> str:
        return self.core.model_name

    @property
    def model_alias(self) -> str:
        return self.core.model_alias

    @property
    def serving_host(self) -> str:
        return self.core.serving_host

    @property
    def serving_port(self) -> int:
        return self.core.serving_port

    def db_url(self, driver: str = "postgresql+psycopg") -> str:
        return self.core.db_url(driver=driver)

    def resolved_mlflow_url(self) -> str:
        return self.core.resolved_mlflow_url()

    def resolved_model_dir(self) -> Path:
        return Path(self.model_dir).expanduser() if self.model_dir else self.core.resolved_var_dir() / "models"


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of the service's own settings, like ``patternalarm.config.describe``;
    for docs/configuration.md next to the shared ones."""
    rows = []
    for name, info in ServingSettings.model_fields.items():
        if name == "core" or not info.description:
            continue
        env, _, doc = info.description.partition(": ")
        rows.append((env, str(info.default), doc))
    return rows
