"""Fixtures for the tickets tests: a database at head on SQLite and on PostgreSQL.

``upgraded_url`` (and ``database_url``, an empty one, from tests/conftest.py) run every test that
takes it on both backends (the PostgreSQL run is marked ``postgres``); each test gets a database
of its own. ``upgraded_url`` is a copy of one migrated once per session: running every
migration again for each test cost over a second a test on PostgreSQL; the migrations
themselves are tested from empty and from each earlier revision in test_migrations.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, drop_postgres_database, fresh_postgres_database


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
