"""Migrations cannot silently fork, upgrade an empty database on both backends, match the
models, and a stage refuses a database behind the code, naming the command that fixes it."""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

import tickets
from tests.conftest import frontdoor
from tickets.db import (
    SchemaBehindError,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    require_current,
    upgrade,
)
from tickets.models import metadata


def test_one_head_and_the_first_revision_is_0001_tickets() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    base = [rev for rev in script.walk_revisions() if rev.down_revision is None]
    assert [rev.revision for rev in base] == ["0001_tickets"]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def every_model() -> None:
    """Import every module of tickets/, so tables other helpers add to the one metadata count."""
    for module in pkgutil.iter_modules(tickets.__path__):
        importlib.import_module(f"tickets.{module.name}")


def test_upgrade_an_empty_database_creates_every_table_and_matches_the_models(
        database_url: str, engine: Engine) -> None:
    every_model()
    with pytest.raises(SchemaBehindError, match="frontdoor db upgrade"):
        require_current(engine)
    before, after = upgrade(database_url)
    assert before is None and after == head_revision()
    assert require_current(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables
    with engine.connect() as conn:
        # The models and the migrations describe the same schema (a new table needs a revision).
        context = MigrationContext.configure(conn, opts={"include_name": _not_search})
        diffs = compare_metadata(context, metadata)
    assert diffs == []
    again = upgrade(database_url)
    assert again == (head_revision(), head_revision())


def _not_search(name: str | None, kind: str, _parent: object) -> bool:
    """The full-text structures live only in the migration (FTS5 tables, tsvector + GIN)."""
    return not (name or "").startswith(("ticket_messages_fts", "search_vector", "ix_ticket_messages_search"))


def test_downgrade_to_base_and_upgrade_again(database_url: str, engine: Engine) -> None:
    every_model()
    upgrade(database_url)
    upgrade_down = alembic_config(database_url)
    with engine.begin() as conn:
        upgrade_down.attributes["connection"] = conn
        command.downgrade(upgrade_down, "base")
    assert current_revision(engine) is None
    assert not set(metadata.tables) & set(inspect(engine).get_table_names())
    upgrade(database_url)
    assert current_revision(engine) == head_revision()


def test_a_database_behind_the_code_is_refused_naming_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001_tickets")
    engine = make_engine(url)
    try:
        _check_refused(engine)
    finally:
        engine.dispose()


def _check_refused(engine: Engine) -> None:
    if head_revision() == "0001_tickets":
        with engine.begin() as conn:  # pretend the code moved on: an unknown revision
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
        with pytest.raises(SchemaBehindError, match="does not know"):
            require_current(engine)
    else:
        with pytest.raises(SchemaBehindError, match="behind the code.*frontdoor db upgrade"):
            require_current(engine)


def test_frontdoor_db_upgrade_command(tmp_path: Path) -> None:
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path / "var")}
    env.pop("FRONTDOOR_DATABASE_URL", None)
    first = frontdoor("db", "upgrade", env=env)
    assert "upgraded from empty to" in first.stdout
    second = frontdoor("db", "upgrade", env=env)
    assert "nothing to do" in second.stdout
    assert (tmp_path / "var" / "frontdoor.db").exists()


def test_upgrade_from_every_earlier_revision_to_head(database_url: str, engine: Engine) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    chain = [rev.revision for rev in script.walk_revisions()][::-1]  # base first
    upgrade(database_url, chain[0])
    for revision in chain[1:]:
        before, after = upgrade(database_url, revision)
        assert after == revision
    assert require_current(engine) == head_revision()
