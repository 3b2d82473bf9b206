"""Tickets: consumers merge routed messages into unified tickets (SQLAlchemy, Alembic)."""
