"""The one reference allocator: every reference any channel tells a resident is a row of
``ticket_references``, so its primary key is the single uniqueness rule.

The web intake draws from it inside its own transaction (``allocate(conn, dedupe_key)``); the
ticket consumer draws from it for an email, which arrives with no reference, and records a
message's own intake reference as an alias when the message joins another ticket.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from schemas.reference import new_reference, normalise_reference
from tickets.models import TicketReference, table_of, utcnow

refs = table_of(TicketReference)


def draw_reference() -> str:
    """A random reference by the one rule of :func:`schemas.reference.new_reference` (its body
    avoids the symbols the check cannot tell apart)."""
    return new_reference()


class ReferenceExhaustedError(RuntimeError):
    """No unused reference in ``attempts`` draws: 35 random bits make this practically never."""


def allocate(conn: Connection, dedupe_key: str, *, attempts: int = 10) -> str:
    """A fresh random reference, recorded as issued for ``dedupe_key`` in the caller's
    transaction (a clash draws again inside a savepoint, leaving the transaction usable)."""
    for _ in range(attempts):
        reference = draw_reference()
        try:
            with conn.begin_nested():
                conn.execute(insert(refs).values(reference=reference, dedupe_key=dedupe_key,
                                                 issued_at=utcnow(), kind="issued"))
        except IntegrityError:
            continue
        return reference
    raise ReferenceExhaustedError("could not draw an unused reference number")


def ticket_for(conn: Connection, reference: str) -> int | None:
    """The ticket a reference (its own or an alias) names, as typed by a resident; None when
    it names none (not a reference, never issued, or issued to a message not yet merged)."""
    canonical = normalise_reference(reference)
    if canonical is None:
        return None
    return conn.execute(select(refs.c.ticket_id).where(refs.c.reference == canonical)).scalar()


def claim(conn: Connection, reference: str, ticket_id: int, kind: str, dedupe_key: str | None) -> bool:
    """Make ``reference`` name ``ticket_id`` (as its ``primary`` reference or an ``alias``).

    Inserts the row when the reference was issued elsewhere (an intake that predates the
    allocator); refuses (False) when it already names another ticket.
    """
    row = conn.execute(select(refs.c.ticket_id).where(refs.c.reference == reference)).first()
    if row is None:
        conn.execute(insert(refs).values(reference=reference, dedupe_key=dedupe_key, issued_at=utcnow(),
                                         ticket_id=ticket_id, kind=kind))
        return True
    if row.ticket_id is not None:
        return bool(row.ticket_id == ticket_id)
    conn.execute(update(refs).where(refs.c.reference == reference).values(ticket_id=ticket_id, kind=kind))
    return True
