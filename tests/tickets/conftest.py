"""Fixtures for the tickets tests: an empty database on SQLite and on PostgreSQL.

``database_url`` is parametrised over both, so every test that takes it runs on each (the
PostgreSQL run is marked ``postgres``); each test gets a database of its own. ``upgraded_url``
(a database at the code's head) is a copy of one migrated once per session: running every
migration again for each test cost over a second a test on PostgreSQL; the migrations
themselves are tested from empty and from each earlier revision in test_migrations.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import drop_postgres_database, fresh_postgres_database

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
