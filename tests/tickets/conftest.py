"""Fixtures for the tickets tests: an empty database on SQLite and on PostgreSQL.

``database_url`` is parametrised over both, so every test that takes it runs on each (the
PostgreSQL run is marked ``postgres``); each test gets a database of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def fresh_postgres_database(server_url: str) -> str:
    name = f"fd_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tickets.db'}"
        return
    server = request.getfixturevalue("postgres_url")
    url = fresh_postgres_database(server)
    try:
        yield url
    finally:
        drop_postgres_database(server, url)


@pytest.fixture
def upgraded_url(database_url: str) -> str:
    """A database at the code's head revision."""
    from tickets.db import upgrade

    upgrade(database_url)
    return database_url
