"""Settings: documented, overridable, and strict about bad values."""

from __future__ import annotations

import pytest

from patternalarm import config
from scripts.config_doc import render
from patternalarm.config import REPO_ROOT


def test_configuration_doc_matches_the_code() -> None:
    assert (REPO_ROOT / "docs" / "configuration.md").read_text() == render(), \
        "docs/configuration.md is stale: run python3 scripts/config_doc.py"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    monkeypatch.setenv("PA_SERVING_PORT", "18000")
    settings = config.load()
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.serving_port == 18000
    assert settings.resolved_serving_url() == "http://127.0.0.1:18000"


def test_bad_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_SERVING_PORT", "eighty")
    with pytest.raises(ValueError, match="PA_SERVING_PORT"):
        config.load()


def test_topics_need_two_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TOPIC_PARTITIONS", "1")
    with pytest.raises(ValueError, match="at least 2"):
        config.load()


def test_database_url_overrides_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_DATABASE_URL", "postgresql://u:p@db.example:5433/alerts")
    settings = config.load()
    assert settings.db_url() == "postgresql://u:p@db.example:5433/alerts"
    assert settings.db_url(driver="postgresql+psycopg") == "postgresql+psycopg://u:p@db.example:5433/alerts"
    assert settings.db_url("mlflow") == "postgresql://u:p@db.example:5433/mlflow"
