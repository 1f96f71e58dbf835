"""The service refuses the placeholder API key outside dev, at construction and at `python -m serving`."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from patternalarm import config
from patternalarm.config import REPO_ROOT
from serving.settings import PLACEHOLDER_API_KEY, ServingSettings


def _core(**changes: object) -> config.Settings:
    return dataclasses.replace(config.load(), **changes)  # type: ignore[arg-type]


def test_placeholder_key_is_the_shared_default() -> None:
    assert PLACEHOLDER_API_KEY == config.Settings().api_key


@pytest.mark.parametrize("env", ["test", "prod"])
def test_placeholder_key_refused_outside_dev(env: str) -> None:
    with pytest.raises(ValidationError, match="PA_API_KEY is the placeholder"):
        ServingSettings(env=env, core=_core(api_key=PLACEHOLDER_API_KEY))
    assert ServingSettings(env=env, core=_core(api_key="s3cret-key")).api_key == "s3cret-key"


def test_dev_is_the_default_and_allows_the_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PA_ENV", raising=False)
    monkeypatch.delenv("PA_API_KEY", raising=False)
    settings = ServingSettings()
    assert settings.env == "dev" and settings.api_key == PLACEHOLDER_API_KEY


def test_environment_variables_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_FRAUD_THRESHOLD", "0.7")
    monkeypatch.setenv("PA_MAX_BATCH_SIZE", "50")
    monkeypatch.setenv("PA_MAX_BODY_BYTES", "65536")
    monkeypatch.setenv("PA_MODEL_POLL_S", "2.5")
    monkeypatch.setenv("PA_MODEL_ALIAS", "challenger")
    s = ServingSettings()
    assert (s.fraud_threshold, s.max_batch_size, s.max_body_bytes, s.model_poll_s, s.model_alias) == \
           (0.7, 50, 65536, 2.5, "challenger")
    monkeypatch.setenv("PA_FRAUD_THRESHOLD", "2")
    with pytest.raises(ValidationError):
        ServingSettings()


def test_python_m_serving_refuses_to_start_with_placeholder_in_prod() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PA_API_KEY"}
    env.update(PA_ENV="prod", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-m", "serving"], capture_output=True, text=True, env=env, timeout=120,
                          cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert "PA_API_KEY is the placeholder" in proc.stderr


def test_described_variables_are_the_ones_read() -> None:
    """Each documented PA_* name is what pydantic-settings actually reads for that field."""
    from serving.settings import describe
    fields = {f"PA_{name.upper()}" for name in ServingSettings.model_fields if name != "core"}
    assert {env for env, _, _ in describe()} == fields
