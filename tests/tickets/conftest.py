"""Fixtures for the tickets tests: an empty database on SQLite and on PostgreSQL.

``database_url`` is parametrised over both, so every test that takes it runs on each (the
PostgreSQL run is marked ``postgres``); each test gets a database of its own. ``upgraded_url``
(a database at the code's head) is a copy of one migrated once per session: running every
migration again for each test cost over a second a test on PostgreSQL; the migrations
themselves are tested from empty and from each earlier revision in test_migrations.py.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def fresh_postgres_database(server_url: str, template: str | None = None) -> str:
    """A new database on the server: empty, or a copy of the database named ``template``."""
    name = f"fd_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session, for tests to copy."""
    from tickets.db import upgrade

    path = tmp_path_factory.mktemp("migrated") / "tickets.db"
    upgrade(f"sqlite:///{path}")
    assert not path.with_name(path.name + "-wal").exists()  # everything is in the one file
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database migrated to head once per session (a template)."""
    from tickets.db import upgrade

    url = fresh_postgres_database(postgres_url)
    upgrade(url)  # disposes its engine: CREATE DATABASE ... TEMPLATE needs no one connected
    try:
        yield url.rsplit("/", 1)[1]
    finally:
        drop_postgres_database(postgres_url, url)


@pytest.fixture(params=BACKENDS)
def upgraded_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own at the code's head revision, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "tickets.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("postgres_url")
    url = fresh_postgres_database(server, template=request.getfixturevalue("migrated_postgres"))
    try:
        yield url
    finally:
        drop_postgres_database(server, url)
