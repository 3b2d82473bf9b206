"""Feedback: one rating per finished ticket, changeable for a week, counted for every
department that handled it (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.db import make_engine
from tickets.feedback import FeedbackError, accept_feedback, record_feedback
from tickets.models import Correction, Feedback, FeedbackDepartment, Ticket, TicketDepartment, TicketEvent

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", ["new", "open", "awaiting_resident", "reopened", "merged"])
def test_no_feedback_before_the_ticket_is_finished(status: str) -> None:
    with pytest.raises(FeedbackError, match="resolved or closed"):
        accept_feedback(status=status, rating=4, comment=None, now=NOW, departments=["waste"],
                        first_given_at=None)


@pytest.mark.parametrize("rating", [0, 6, True, 3.5])
def test_the_rating_is_one_to_five(rating: int) -> None:
    with pytest.raises(FeedbackError, match="1 to 5"):
        accept_feedback(status="closed", rating=rating, comment=None, now=NOW, departments=[],
                        first_given_at=None)


def test_a_change_is_allowed_for_a_week_only() -> None:
    first = NOW - timedelta(days=6, hours=23)
    changed = accept_feedback(status="closed", rating=2, comment=" slow ", now=NOW, departments=["waste"],
                              first_given_at=first)
    assert (changed.rating, changed.comment, changed.given_at, changed.changed) == (2, "slow", first, True)
    with pytest.raises(FeedbackError, match="7 days"):
        accept_feedback(status="closed", rating=2, comment=None, now=NOW, departments=["waste"],
                        first_given_at=NOW - timedelta(days=8))


def _closed_ticket(session: Session) -> int:
    ticket = Ticket(reference="FD-AAAA-AAAA", status="closed", primary_department="highways", channel="email",
                    closed_at=NOW - timedelta(days=1))
    session.add(ticket)
    session.flush()
    session.add_all([TicketDepartment(ticket_id=ticket.id, department="highways", role="primary"),
                     TicketDepartment(ticket_id=ticket.id, department="parks")])
    # Routed to waste first, then moved to highways by an agent.
    session.add(Correction(ticket_id=ticket.id, from_department="waste", to_department="highways",
                           model_version="m1", confidence=0.61, channel="email", actor="agent@council"))
    session.flush()
    return ticket.id


def test_feedback_counts_for_every_department_that_handled_it(upgraded_url: str) -> None:
    engine = make_engine(upgraded_url)
    try:
        with Session(engine) as session, session.begin():
            ticket_id = _closed_ticket(session)
            entry = record_feedback(session, ticket_id, rating=4, comment="Fixed quickly", now=NOW)
        assert set(entry.departments) == {"highways", "parks", "waste"}
        with Session(engine) as session, session.begin():
            changed = record_feedback(session, ticket_id, rating=2, comment="It broke again",
                                      now=NOW + timedelta(days=3))
            assert changed.changed
        with Session(engine) as session:
            stored = session.get(Feedback, ticket_id)
            assert stored is not None and (stored.rating, stored.comment) == (2, "It broke again")
            per_department = dict(session.execute(
                select(FeedbackDepartment.department, FeedbackDepartment.rating)
                .where(FeedbackDepartment.ticket_id == ticket_id)).all())
            assert per_department == {"highways": 2, "parks": 2, "waste": 2}
            events = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                     .order_by(TicketEvent.id)).all()
            assert [(e.kind, e.detail.get("previous_rating")) for e in events] == [("feedback", None),
                                                                                  ("feedback", 4)]
        with Session(engine) as session, session.begin(), pytest.raises(FeedbackError, match="7 days"):
            record_feedback(session, ticket_id, rating=5, comment=None, now=NOW + timedelta(days=9))
    finally:
        engine.dispose()
