"""Alembic environment for the tickets database. ``tickets.db.upgrade`` passes an open
connection; the ``alembic`` command line uses ``sqlalchemy.url``."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context

import tickets
from tickets.db import make_engine
from tickets.models import metadata

config = context.config

# Every module of tickets/ may add tables to the one metadata (accounts, outbox ...).
for _module in pkgutil.iter_modules(tickets.__path__):
    if _module.name != "migrations":
        importlib.import_module(f"tickets.{_module.name}")


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
