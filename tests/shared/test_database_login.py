"""The stack's login to PostgreSQL with a password that holds URL and SQL characters: the role is
created with it (postgres.py) and every client that connects through Settings.db_url gets in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from patternalarm import config
from patternalarm.stack import postgres

PASSWORD = "p@ss:w/rd?#%$HOME'x\"y"


@pytest.fixture()
def odd_login(monkeypatch: pytest.MonkeyPatch) -> Iterator[config.Settings]:
    """A fresh role with PASSWORD, made the way `make up` makes the project's role."""
    role = f"pa_test_login_{uuid.uuid4().hex[:8]}"
    monkeypatch.delenv("PA_DATABASE_URL", raising=False)
    monkeypatch.setenv("PA_PG_USER", role)
    monkeypatch.setenv("PA_PG_PASSWORD", PASSWORD)
    settings = config.load()
    postgres._ensure_role_and_databases(settings)  # the project's databases exist: only the role is new
    try:
        yield settings
    finally:
        postgres._as_postgres(f"DROP ROLE IF EXISTS {postgres.sql_identifier(role)}")


def test_a_password_with_url_and_quote_characters_logs_in(odd_login: config.Settings) -> None:
    with psycopg2.connect(odd_login.db_url()) as conn, conn.cursor() as cur:  # the scorer, the relay
        cur.execute("SELECT current_user")
        assert cur.fetchone() == (odd_login.pg_user,)
    conn.close()
    assert postgres.psql(odd_login, "SELECT current_user") == odd_login.pg_user  # migrations, the stack's psql


def test_a_wrong_password_is_refused(odd_login: config.Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The login above is the password's doing, not a trust rule of the server's."""
    monkeypatch.setenv("PA_PG_PASSWORD", PASSWORD + "-wrong")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(config.load().db_url())
