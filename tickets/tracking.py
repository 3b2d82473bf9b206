"""What a resident sees of their own enquiry at ``/track``: read-only, and only theirs.

:func:`find_tracked` is the one door: a reference (its own or an alias) *and* the ticket's
tracking secret, checked against the stored hash in constant time; a reference that names no
ticket is checked against a dummy hash, so "no such reference" and "wrong secret" cost the
same and answer the same (``None``). :func:`tracking_view` then builds what the page shows:
status in words a resident understands, the departments, statutory due dates, and a timeline
of what *this resident* sent (messages from their own identities only: never someone copied
in, never internal notes, events or routing) and what the council sent them (acknowledgement
and replies that were not suppressed). A merged ticket is followed to the one it joined.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from schemas.inbound import Party
from schemas.reference import normalise_reference
from tickets.feedback import CHANGE_WINDOW, FeedbackEntry, FeedbackError, record_feedback
from tickets.identity import normalise_email, normalise_phone
from tickets.models import (
    Feedback,
    ResidentIdentity,
    StatutoryClockRow,
    Ticket,
    TicketDepartment,
    TicketMessage,
    TicketParticipant,
    TicketReference,
    aware,
    utcnow,
)
from tickets.outbox import outbox
from tickets.service import hash_secret

__all__ = ["FeedbackError", "TimelineItem", "TrackingView", "find_tracked", "give_feedback",
           "resident_party", "tracking_view"]

_DUMMY_HASH = hash_secret("no ticket has this secret")
MAX_MERGE_HOPS = 16

STATUS_WORDS = {
    "new": ("Received", "We have your enquiry and will look at it soon."),
    "open": ("Being dealt with", "Someone is working on your enquiry."),
    "awaiting_resident": ("Waiting for your reply", "We asked you something: reply below or to our message."),
    "reopened": ("Being dealt with again", "Your enquiry was opened again after your reply."),
    "resolved": ("Resolved", "We think your enquiry is dealt with. Reply below if it is not."),
    "closed": ("Closed", "Your enquiry is closed."),
}
CLOCK_WORDS = {
    "foi": "Freedom of Information request: we must answer by",
    "sar": "Request for your personal data: we must answer by",
    "complaint_stage1": "Complaint (stage 1): we aim to answer by",
    "complaint_stage2": "Complaint (stage 2): we aim to answer by",
    "member_enquiry": "Councillor enquiry: we aim to answer by",
}
FINISHED = ("resolved", "closed")
SHOWN_OUTBOX = ("created", "sending", "sent", "delivered")  # queued or gone; never suppressed/failed


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    who: str  # "you" | "council"
    channel: str
    text: str
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrackingView:
    reference: str  # the ticket's own reference (the one typed may be an alias)
    status: str
    status_label: str
    status_hint: str
    subject: str | None
    departments: tuple[str, ...]
    due: tuple[tuple[str, date], ...]  # (words, date) for each running statutory clock
    timeline: tuple[TimelineItem, ...]  # newest first
    finished: bool
    rating: int | None
    comment: str | None
    rating_changeable: bool  # no rating yet, or within the week after the first
    can_write: bool  # the ticket has an address or number of the resident to thread by


def find_tracked(engine: Engine, reference: str, secret: str) -> int | None:
    """The ticket id when ``secret`` is the tracking secret of the ticket ``reference`` names;
    None otherwise, in the same time either way (no oracle for references)."""
    ref = normalise_reference(reference or "") or (reference or "").strip().upper()[:16]
    with Session(engine) as db:
        columns = select(Ticket.id, Ticket.tracking_secret_hash)
        row = db.execute(columns.where(Ticket.reference == ref)).first()
        if row is None:
            alias = db.scalar(select(TicketReference.ticket_id).where(TicketReference.reference == ref))
            row = db.execute(columns.where(Ticket.id == alias)).first() if alias is not None else None
    stored = row[1] if row is not None and isinstance(row[1], str) else _DUMMY_HASH
    ok = hmac.compare_digest(stored, hash_secret((secret or "").strip()))
    return int(row[0]) if ok and row is not None and row[1] else None


def _survivor(db: Session, ticket: Ticket) -> Ticket:
    for _ in range(MAX_MERGE_HOPS):
        if ticket.merged_into_id is None:
            break
        target = db.get(Ticket, ticket.merged_into_id)
        if target is None:
            break
        ticket = target
    return ticket


def _identities(db: Session, ticket: Ticket) -> set[tuple[str, str]]:
    """The resident's own addresses and numbers: the ticket's resident participants and the
    identities of its resident."""
    found = {(p.kind, p.value) for p in db.scalars(select(TicketParticipant).where(
        TicketParticipant.ticket_id == ticket.id, TicketParticipant.role == "resident"))}
    if ticket.resident_id is not None:
        found |= {(i.kind, i.value) for i in db.scalars(select(ResidentIdentity).where(
            ResidentIdentity.resident_id == ticket.resident_id))}
    return found


def _is_theirs(message: TicketMessage, identities: set[tuple[str, str]]) -> bool:
    email = normalise_email(message.sender_email) if message.sender_email else None
    phone = normalise_phone(message.sender_phone) if message.sender_phone else None
    return (email is not None and ("email", email) in identities) or \
        (phone is not None and ("phone", phone) in identities)


def tracking_view(engine: Engine, ticket_id: int, *, department_name: Any = None,
                  now: datetime | None = None) -> TrackingView | None:
    now = now or utcnow()
    name = department_name or (lambda d: d.replace("_", " ").capitalize())
    with Session(engine) as db:
        tracked = db.get(Ticket, ticket_id)
        if tracked is None or tracked.erased_at is not None:
            return None
        identities = _identities(db, tracked)
        ticket = _survivor(db, tracked)
        ticket_ids = {tracked.id, ticket.id}
        departments = tuple(name(d) for (d,) in db.execute(
            select(TicketDepartment.department).where(TicketDepartment.ticket_id == ticket.id)
            .order_by(TicketDepartment.role.desc(), TicketDepartment.added_at)))
        due = tuple((CLOCK_WORDS[c.kind], c.due_on) for c in db.scalars(
            select(StatutoryClockRow).where(StatutoryClockRow.ticket_id == ticket.id,
                                            StatutoryClockRow.state != "stopped")
            .order_by(StatutoryClockRow.due_on)) if c.kind in CLOCK_WORDS)
        timeline: list[TimelineItem] = []
        for m in db.scalars(select(TicketMessage).where(TicketMessage.ticket_id.in_(ticket_ids),
                                                        TicketMessage.direction == "in")):
            if not _is_theirs(m, identities):
                continue  # someone copied in, or another resident's message on a merged ticket
            files = tuple(str(a.get("filename") or "attachment") for a in m.attachments or ()
                          if isinstance(a, dict) and not a.get("inline"))
            timeline.append(TimelineItem(aware(m.received_at) or m.received_at, "you", m.channel,
                                         (m.body_trimmed or m.body_text or "").strip(), files))
        for row in db.execute(select(outbox.c.kind, outbox.c.channel, outbox.c.body, outbox.c.created_at)
                              .where(outbox.c.ticket_id.in_(ticket_ids),
                                     outbox.c.status.in_(SHOWN_OUTBOX))):
            text = row.body if row.kind == "reply" and row.body else \
                "We acknowledged your enquiry and sent you its reference number."
            at = aware(row.created_at) or row.created_at
            timeline.append(TimelineItem(at, "council", row.channel, text))
        timeline.sort(key=lambda item: item.at, reverse=True)
        feedback = db.get(Feedback, ticket.id)
        first_at = aware(feedback.at) if feedback else None
        label, hint = STATUS_WORDS.get(ticket.status, (ticket.status.replace("_", " ").capitalize(), ""))
        return TrackingView(
            reference=ticket.reference, status=ticket.status, status_label=label, status_hint=hint,
            subject=ticket.subject, departments=departments, due=due, timeline=tuple(timeline),
            finished=ticket.status in FINISHED,
            rating=feedback.rating if feedback else None, comment=feedback.comment if feedback else None,
            rating_changeable=first_at is None or now - first_at <= CHANGE_WINDOW,
            can_write=any(kind in ("email", "phone") for kind, _ in identities))


def resident_party(engine: Engine, ticket_id: int) -> tuple[str, Party] | None:
    """(the ticket's reference, the resident as a sender) for a message written on the tracking
    page: one of their own identities, so the ticket stage's reference rule (which accepts only
    participants) threads it into this ticket. None when the ticket has no address or number."""
    with Session(engine) as db:
        tracked = db.get(Ticket, ticket_id)
        if tracked is None:
            return None
        identities = sorted(_identities(db, tracked))
        ticket = _survivor(db, tracked)
        email = next((v for k, v in identities if k == "email"), None)
        phone = next((v for k, v in identities if k == "phone"), None)
        if email is None and phone is None:
            return None
        return ticket.reference, Party(email=email, phone=phone)


def give_feedback(engine: Engine, ticket_id: int, *, rating: int, comment: str | None,
                  now: datetime | None = None, change_window: timedelta = CHANGE_WINDOW) -> FeedbackEntry:
    """The resident's rating of the ticket (or of the one it was merged into), in one transaction;
    FeedbackError with the words to show when the rules refuse it."""
    with Session(engine) as db, db.begin():
        tracked = db.get(Ticket, ticket_id)
        if tracked is None:
            raise FeedbackError("no such enquiry")
        ticket = _survivor(db, tracked)
        return record_feedback(db, ticket.id, rating=rating, comment=comment, now=now or utcnow(),
                               change_window=change_window)

