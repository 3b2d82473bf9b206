"""A resident's rating of a finished ticket, counted for every department that handled it.

One rating (1 to 5) and an optional comment per ticket, once it is resolved or closed. The
resident may change their mind for a week after first giving it (a slip of the finger on a
phone), not later: the figures a service manager saw last month must not move under them.
Every department that handled the ticket gets the rating: those on it now and those it was
moved away from, so a department cannot shed a bad rating by transferring the case.

:func:`accept_feedback` is the rule; :func:`record_feedback` applies it to the tickets tables
inside the caller's transaction and writes a ``feedback`` audit event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tickets.models import (
    Correction,
    Feedback,
    FeedbackDepartment,
    Ticket,
    TicketDepartment,
    TicketEvent,
    aware,
)
from tickets.status import FINISHED, TicketStatus

CHANGE_WINDOW = timedelta(days=7)
MAX_COMMENT = 2000


class FeedbackError(ValueError):
    """Feedback the rules refuse; the message is what the resident is told."""


@dataclass(frozen=True)
class FeedbackEntry:
    rating: int
    comment: str | None
    given_at: datetime  # first given: the change window runs from here
    departments: tuple[str, ...]
    changed: bool = False  # it replaced an earlier rating


def accept_feedback(*, status: TicketStatus | str, rating: int, comment: str | None, now: datetime,
                    departments: Iterable[str], first_given_at: datetime | None,
                    change_window: timedelta = CHANGE_WINDOW) -> FeedbackEntry:
    if TicketStatus(status) not in FINISHED:
        raise FeedbackError("feedback opens once the enquiry is resolved or closed")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise FeedbackError("the rating is a whole number from 1 to 5")
    text = (comment or "").strip() or None
    if text and len(text) > MAX_COMMENT:
        raise FeedbackError(f"the comment is longer than {MAX_COMMENT} characters")
    if first_given_at is not None and now - first_given_at > change_window:
        raise FeedbackError(f"feedback can be changed for {change_window.days} days after it was given")
    handled = tuple(dict.fromkeys(d for d in departments if d))
    return FeedbackEntry(rating, text, first_given_at or now, handled, changed=first_given_at is not None)


def departments_that_handled(session: Session, ticket_id: int) -> list[str]:
    """The ticket's departments now (primary first) and any it was moved away from."""
    ticket = session.get(Ticket, ticket_id)
    found: list[str] = [ticket.primary_department] if ticket and ticket.primary_department else []
    found += session.scalars(select(TicketDepartment.department)
                             .where(TicketDepartment.ticket_id == ticket_id)
                             .order_by(TicketDepartment.added_at, TicketDepartment.department))
    for origin, to in session.execute(select(Correction.from_department, Correction.to_department)
                                      .where(Correction.ticket_id == ticket_id).order_by(Correction.id)):
        found += [d for d in (origin, to) if d]
    return list(dict.fromkeys(found))


def record_feedback(session: Session, ticket_id: int, *, rating: int, comment: str | None, now: datetime,
                    change_window: timedelta = CHANGE_WINDOW) -> FeedbackEntry:
    """Store (or change) the ticket's feedback in the caller's transaction."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise FeedbackError("no such enquiry")
    existing = session.get(Feedback, ticket_id)
    entry = accept_feedback(status=ticket.status, rating=rating, comment=comment, now=now,
                            departments=departments_that_handled(session, ticket_id),
                            first_given_at=aware(existing.at) if existing else None,
                            change_window=change_window)
    previous = existing.rating if existing else None
    if existing is None:
        session.add(Feedback(ticket_id=ticket_id, rating=entry.rating, comment=entry.comment,
                             at=entry.given_at))
        session.flush()
    else:
        existing.rating, existing.comment = entry.rating, entry.comment
        session.execute(delete(FeedbackDepartment).where(FeedbackDepartment.ticket_id == ticket_id))
    session.add_all(FeedbackDepartment(ticket_id=ticket_id, department=d, rating=entry.rating)
                    for d in entry.departments)
    detail: dict[str, object] = {"rating": entry.rating, "departments": list(entry.departments)}
    if previous is not None:
        detail["previous_rating"] = previous
    session.add(TicketEvent(ticket_id=ticket_id, reference=ticket.reference, kind="feedback",
                            actor="resident", detail=detail, at=now))
    return entry
