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
    # clients that take the URL apart (the job's JDBC sink) follow it too, with TLS left to the client
    assert settings.db_endpoint() == config.DatabaseEndpoint("db.example", 5433, "alerts", "u", "p")
    assert settings.jdbc_url() == "jdbc:postgresql://db.example:5433/alerts"
    assert settings.db_endpoint().sslmode is None


def test_database_endpoint_from_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PA_DATABASE_URL", "PA_PG_HOST", "PA_PG_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PA_PG_USER", "analyst")
    monkeypatch.setenv("PA_PG_PASSWORD", "s3cret")
    end = config.load().db_endpoint("mlflow")
    assert end == config.DatabaseEndpoint("127.0.0.1", 5432, "mlflow", "analyst", "s3cret")
    assert end.on_loopback and end.sslmode == "disable"
    monkeypatch.setenv("PA_DATABASE_URL", "postgresql://u:p%40ss@[::1]:5433/alerts")
    settings = config.load()
    assert settings.db_endpoint().password == "p@ss" and settings.db_endpoint().on_loopback
    assert settings.jdbc_url() == "jdbc:postgresql://[::1]:5433/alerts"


def test_database_url_encodes_a_password_with_url_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PA_DATABASE_URL", "PA_PG_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PA_PG_HOST", "::1")
    monkeypatch.setenv("PA_PG_USER", "ana lyst")
    monkeypatch.setenv("PA_PG_PASSWORD", "p@ss:w/rd?#%$HOME'")
    settings = config.load()
    assert settings.db_url("mlflow") == "postgresql://ana%20lyst:p%40ss%3Aw%2Frd%3F%23%25%24HOME%27@[::1]:5432/mlflow"
    assert settings.db_endpoint("mlflow") == config.DatabaseEndpoint("::1", 5432, "mlflow", "ana lyst",
                                                                     "p@ss:w/rd?#%$HOME'")
