"""Opening the service's SQL database: one place that turns FRONTDOOR_DATABASE_URL into an engine.

The intake outbox (ingest/intake_store.py) and the tickets stage (tickets/db.py) share one
database; both open it here so a SQLite file gets the same connection settings, its directory, and
an operator who mistypes the URL or points at a database that is down gets one line, not a trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from schemas.errors import OperatorError


def shown_url(url: str) -> str:
    """The URL as an operator may see it: the password hidden."""
    return make_url(url).render_as_string(hide_password=True) if "://" in url else url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def open_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (SQLite in WAL with a 30 s busy timeout, its directory created;
    PostgreSQL pinged at checkout); extra keyword arguments go to ``create_engine``."""
    connect_args: dict[str, Any] = {}
    sqlite = is_sqlite(url)
    if sqlite:
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OperatorError(f"cannot create the database directory for {path}: {exc.strerror}") \
                    from None
        connect_args = {"check_same_thread": False, "timeout": 30}
    try:
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not sqlite, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise OperatorError(f"FRONTDOOR_DATABASE_URL={shown_url(url)} is not a database URL SQLAlchemy "
                            f"can use ({exc.__class__.__name__}): "
                            "e.g. postgresql+psycopg://user:pw@host/db") from None
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def unreachable(url: str, exc: OperationalError) -> OperatorError:
    """The one line for a database that refused or could not be opened."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return OperatorError(f"cannot open the database {shown_url(url)}: {reason}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a crash of the process
    cursor.close()
