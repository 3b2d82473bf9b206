"""Engines for the tickets database, and the check that it is not behind the code.

SQLite (the default, a file under var/) gets WAL and a busy timeout like the web store; a
writer that reads before it writes (the ticket consumer) asks for ``BEGIN IMMEDIATE`` so two
processes never deadlock upgrading a read lock. PostgreSQL needs nothing special.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from ingest.database import is_sqlite, open_engine, unreachable
from schemas.errors import OperatorError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "frontdoor db upgrade"


class SchemaBehindError(OperatorError):
    """The database is at an older revision than the code: the stage must not touch it."""


def make_engine(url: str, *, immediate: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; ``immediate`` makes every SQLite transaction take the write lock
    at BEGIN (for writers that read first), so concurrent writers queue instead of failing."""
    engine = open_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_connect)
        if immediate:
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        else:
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own would be deferred
    # and late); see "Serializable isolation / Savepoints / Transactional DDL" in its docs.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the tickets migrations have {len(heads)} heads ({', '.join(heads)}): merge them")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str]:
    """Apply the migrations up to ``revision``; returns (revision before, revision after)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the caller says what changed
    engine = make_engine(url)
    try:
        before = _reachable_revision(engine, url)
        with engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        return before, current_revision(engine) or ""
    finally:
        engine.dispose()


def require_current(engine: Engine) -> str:
    """The database's revision, if it is the code's head; else a :class:`SchemaBehindError`
    naming ``frontdoor db upgrade``. Every stage calls this before touching a table."""
    url = engine.url.render_as_string(hide_password=True)
    current = _reachable_revision(engine, url)
    head = head_revision()
    if current == head:
        return current
    if current is None:
        raise SchemaBehindError(f"the tickets database {url} has no tables yet: run '{UPGRADE_COMMAND}'")
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if current in known:
        raise SchemaBehindError(f"the tickets database {url} is at revision {current}, behind the code "
                                f"({head}): run '{UPGRADE_COMMAND}'")
    raise SchemaBehindError(f"the tickets database {url} is at revision {current}, which this code does "
                            f"not know (newer code migrated it?): run the matching version of Frontdoor")


def _reachable_revision(engine: Engine, url: str) -> str | None:
    try:
        return current_revision(engine)
    except OperationalError as exc:
        raise unreachable(url, exc) from None
