"""What an agent or officer does to a ticket from the console, each in one transaction with its
audit event (``ticket_events``, which the events relay puts on ``frontdoor.events``).

A move to another department is a labelled correction (``routing_corrections`` plus a
``corrected`` event carrying from, to, model version, confidence, channel, who and why), built
by :func:`tickets.status.correction_for_move`. Status changes follow
:mod:`tickets.status`'s table; merges are :mod:`tickets.merging`'s. A reply becomes an outbox
row (:func:`tickets.outbox.queue_reply`) in the same transaction; the sender stage sends it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tickets import merging
from tickets.identity import normalise_email, normalise_phone
from tickets.models import (
    Correction,
    Resident,
    SuggestedMerge,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketNote,
    TicketParticipant,
)
from tickets.outbox import OutboxPolicy, ReplyTarget, Thread, queue_reply
from tickets.status import InvalidTransitionError, check_transition, correction_for_move


class CaseworkError(ValueError):
    """An action the rules refuse (shown to the agent as the form's error)."""


@dataclass(frozen=True)
class ReplyOutcome:
    channel: str  # email | sms | callback
    recipient: str | None
    status: str  # the outbox row's status, or "callback" for a call-back note


def _now() -> datetime:
    return datetime.now(UTC)


def _event(db: Session, ticket: Ticket, kind: str, actor: str, now: datetime, **detail: Any) -> None:
    db.add(TicketEvent(ticket_id=ticket.id, reference=ticket.reference, kind=kind, actor=actor, detail=detail,
                       at=now))


def _ticket(db: Session, ticket_id: int) -> Ticket:
    ticket = db.get(Ticket, ticket_id, with_for_update=True)
    if ticket is None:
        raise CaseworkError("no such ticket")
    return ticket


def add_note(engine: Engine, ticket_id: int, *, author: str, body: str) -> None:
    body = body.strip()
    if not body:
        raise CaseworkError("Enter the note")
    now = _now()
    with Session(engine) as db, db.begin():
        ticket = _ticket(db, ticket_id)
        db.add(TicketNote(ticket_id=ticket.id, author=author, body=body, created_at=now))
        ticket.updated_at = now
        _event(db, ticket, "note_added", author, now)


def assign(engine: Engine, ticket_id: int, *, actor: str, to: str | None) -> None:
    now = _now()
    with Session(engine) as db, db.begin():
        ticket = _ticket(db, ticket_id)
        before, ticket.assignee, ticket.updated_at = ticket.assignee, (to or None), now
        _event(db, ticket, "assigned", actor, now, before=before, after=ticket.assignee)


def closing_invitation(reference: str, public_url: str) -> str:
    """The message a resident gets when their enquiry is closed: it invites a rating on the
    tracking page (their reference and the code from our first message open it)."""
    return (f"Your enquiry {reference} is now closed. Please tell us how we did: rate our service "
            f"from 1 to 5 stars at {public_url.rstrip('/')}/track with your reference and the "
            "tracking code from our first message.")


def change_status(engine: Engine, ticket_id: int, *, actor: str, status: str,
                  policy: OutboxPolicy | None = None) -> None:
    """Move the ticket along the status table. With ``policy`` (the console's outbox), closing
    it also queues, in the same transaction, a message on the resident's channel inviting a
    rating (none for a phone or walk-in enquiry: nowhere to send it)."""
    now = _now()
    with Session(engine) as db, db.begin():
        ticket = _ticket(db, ticket_id)
        try:
            target = check_transition(ticket.status, status)
        except (InvalidTransitionError, ValueError) as exc:
            raise CaseworkError(str(exc)) from None
        if target == "merged":
            raise CaseworkError("merge a ticket with the merge action")
        before, ticket.status, ticket.updated_at = ticket.status, target.value, now
        if target.value in ("resolved", "closed"):
            ticket.closed_at = now
        _event(db, ticket, "status_changed", actor, now, before=before, after=target.value)
        if target.value == "closed" and policy is not None:
            sent = _queue_on_residents_channel(
                db, ticket, actor, closing_invitation(ticket.reference, policy.public_url), policy,
                f"closing-{now.timestamp():.0f}", now)
            if sent is not None:
                _event(db, ticket, "rating_invited", actor, now, channel=sent.channel)


def move(engine: Engine, ticket_id: int, *, actor: str, to: str, reason: str, keep: bool = False) -> None:
    """Move the ticket's primary department to ``to`` (``keep``: add ``to`` as another department
    and keep the primary). Either way a correction of the router's decision is recorded."""
    reason = reason.strip()
    if not reason:
        raise CaseworkError("Say why the ticket moves: it teaches the router")
    now = _now()
    with Session(engine) as db, db.begin():
        ticket = _ticket(db, ticket_id)
        departments = [d for (d,) in db.execute(select(TicketDepartment.department).where(
            TicketDepartment.ticket_id == ticket.id))]
        first = db.scalar(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id)
                          .order_by(TicketMessage.received_at).limit(1))
        text = " ".join(filter(None, [first.subject, first.body_text])) if first else ""
        if keep and to in departments:
            raise CaseworkError(f"the ticket already involves {to}")
        try:
            correction, after = correction_for_move(
                ticket=ticket.reference, departments=departments, primary=ticket.primary_department or "",
                to=to, model_version=ticket.model_version or "", confidence=ticket.confidence,
                channel=ticket.channel, who=actor, reason=reason, at=now, text=text[:5000])
        except InvalidTransitionError as exc:
            raise CaseworkError(str(exc)) from None
        db.add(Correction(ticket_id=ticket.id, message_id=first.id if first else None,
                          from_department=correction.from_department or None, to_department=to,
                          model_version=correction.model_version or None, confidence=correction.confidence,
                          channel=correction.channel, actor=actor, reason=reason, at=now))
        if to not in departments:
            db.add(TicketDepartment(ticket_id=ticket.id, department=to, role="involved", added_at=now))
        if not keep:
            for row in db.scalars(select(TicketDepartment).where(TicketDepartment.ticket_id == ticket.id)):
                row.role = "primary" if row.department == to else "involved"
            ticket.primary_department = to
            ticket.triage = False
        ticket.updated_at = now
        _event(db, ticket, "corrected" if not keep else "department_added", actor, now,
               from_department=correction.from_department or None, to_department=to,
               model_version=correction.model_version or None, confidence=correction.confidence,
               channel=correction.channel, reason=reason, departments=list(after))


def copy_in(engine: Engine, ticket_id: int, *, actor: str, address: str) -> str:
    email = normalise_email(address) if "@" in address else None
    phone = None if email else normalise_phone(address)
    if not email and not phone:
        raise CaseworkError("Enter an email address or a UK telephone number")
    kind, value = ("email", email) if email else ("phone", phone)
    now = _now()
    with Session(engine) as db, db.begin():
        ticket = _ticket(db, ticket_id)
        exists = db.scalar(select(TicketParticipant.id).where(
            TicketParticipant.ticket_id == ticket.id, TicketParticipant.kind == kind,
            TicketParticipant.value == value))
        if exists is None:
            db.add(TicketParticipant(ticket_id=ticket.id, kind=kind, value=value, role="cc", added_at=now))
            _event(db, ticket, "participant_added", actor, now, address_kind=kind, value=value)
    return str(value)


def link(engine: Engine, ticket_id: int, *, actor: str, other_id: int, reason: str = "") -> None:
    if other_id == ticket_id:
        raise CaseworkError("a ticket cannot be linked to itself")
    now = _now()
    with Session(engine) as db, db.begin():
        ticket, other = _ticket(db, ticket_id), _ticket(db, other_id)
        if db.get(TicketLink, (ticket.id, other.id, "related")) is None:
            db.add(TicketLink(from_ticket_id=ticket.id, to_ticket_id=other.id, kind="related",
                              reason=reason or None, at=now))
            _event(db, ticket, "linked", actor, now, other=other.reference, reason=reason)
            _event(db, other, "linked", actor, now, other=ticket.reference, reason=reason)


def merge(engine: Engine, source_id: int, target_id: int, *, actor: str, reason: str) -> int:
    with Session(engine) as db, db.begin():
        try:
            return merging.merge_tickets(db, source_id, target_id, actor=actor, reason=reason, now=_now()).id
        except (merging.MergeError, InvalidTransitionError) as exc:
            raise CaseworkError(str(exc)) from None


def unmerge(engine: Engine, merge_id: int, *, actor: str) -> None:
    with Session(engine) as db, db.begin():
        try:
            merging.unmerge_tickets(db, merge_id, actor=actor, now=_now())
        except (merging.MergeError, InvalidTransitionError) as exc:
            raise CaseworkError(str(exc)) from None


def merge_residents(engine: Engine, source_id: int, target_id: int, *, actor: str, reason: str) -> int:
    with Session(engine) as db, db.begin():
        try:
            done = merging.merge_residents(db, source_id, target_id, actor=actor, reason=reason, now=_now())
            return done.id
        except merging.MergeError as exc:
            raise CaseworkError(str(exc)) from None


def unmerge_residents(engine: Engine, merge_id: int, *, actor: str) -> int:
    """Undo a resident merge exactly; returns the resident that was merged away (now back)."""
    with Session(engine) as db, db.begin():
        try:
            return merging.unmerge_residents(db, merge_id, actor=actor, now=_now()).source_id
        except merging.MergeError as exc:
            raise CaseworkError(str(exc)) from None


def _open_suggestion(db: Session, suggestion_id: int) -> SuggestedMerge:
    suggestion = db.get(SuggestedMerge, suggestion_id, with_for_update=True)
    if suggestion is None:
        raise CaseworkError("no such suggested merge")
    if suggestion.resolved_at is not None:
        raise CaseworkError(f"this suggestion was already resolved ({suggestion.resolution} by "
                            f"{suggestion.resolved_by})")
    return suggestion


def _survivor(db: Session, resident_id: int) -> Resident:
    resident = merging.surviving_resident(db, resident_id)
    if resident is None:
        raise CaseworkError("no such resident")
    return resident


def merge_suggested(engine: Engine, suggestion_id: int, *, actor: str, reason: str) -> int | None:
    """A supervisor agrees with a suggested merge: the newer resident is merged into the older
    one (created first), which keeps its id, so links to it stay good. Each side is taken as it
    is now (followed to the resident it was merged into since). Returns the surviving resident's
    id, or None when the two had already become one by another merge (resolved, nothing moved).

    The merge resolves the suggestion in its own snapshot (undo reopens it); a suggestion whose
    sides were merged since names other ids, so it is resolved here and stays resolved on undo."""
    now = _now()
    with Session(engine) as db, db.begin():
        suggestion = _open_suggestion(db, suggestion_id)
        a, b = _survivor(db, suggestion.resident_a_id), _survivor(db, suggestion.resident_b_id)
        survivor = None
        if a.id != b.id:
            older, newer = sorted((a, b), key=lambda r: (r.created_at is None, r.created_at, r.id))
            try:
                merging.merge_residents(db, newer.id, older.id, actor=actor, reason=reason.strip(), now=now)
            except merging.MergeError as exc:
                raise CaseworkError(str(exc)) from None
            survivor = older.id
        if suggestion.resolved_at is None:
            suggestion.resolved_at, suggestion.resolution, suggestion.resolved_by = now, "merged", actor
        return survivor


def reject_suggestion(engine: Engine, suggestion_id: int, *, actor: str) -> None:
    """A supervisor decides the two residents are not the same person: the suggestion is
    resolved as rejected with who and when, and leaves the queue (the residents are untouched)."""
    now = _now()
    with Session(engine) as db, db.begin():
        suggestion = _open_suggestion(db, suggestion_id)
        suggestion.resolved_at, suggestion.resolution, suggestion.resolved_by = now, "rejected", actor


def reply(engine: Engine, ticket_id: int, *, author: str, body: str, policy: OutboxPolicy,
          idempotency_key: str | None = None) -> ReplyOutcome:
    """A reply on the resident's channel: email to their address (threaded, copies to those
    copied in), SMS to their number; a phone or walk-in enquiry gets a call-back note instead."""
    body = body.strip()
    if not body:
        raise CaseworkError("Enter the reply")
    now = _now()
    with Session(engine) as db, db.begin():
        ticket = _ticket(db, ticket_id)
        ticket.updated_at = now
        sent = _queue_on_residents_channel(db, ticket, author, body, policy,
                                           idempotency_key or uuid.uuid4().hex, now)
        if sent is not None:
            _event(db, ticket, "reply_queued", author, now, channel=sent.channel, outbox_id=sent.outbox_id)
            return ReplyOutcome(sent.channel, sent.recipient, sent.status)
        last = _last_incoming(db, ticket)
        db.add(TicketNote(ticket_id=ticket.id, author=author, body=f"Call back: {body}", created_at=now))
        _event(db, ticket, "callback_requested", author, now)
        return ReplyOutcome("callback", last.sender_phone if last else None, "callback")


@dataclass(frozen=True, slots=True)
class _Queued:
    channel: str
    recipient: str | None
    status: str
    outbox_id: int


def _last_incoming(db: Session, ticket: Ticket) -> TicketMessage | None:
    return db.scalar(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id,
                                                 TicketMessage.direction == "in")
                     .order_by(TicketMessage.received_at.desc()).limit(1))


def _queue_on_residents_channel(db: Session, ticket: Ticket, author: str, body: str, policy: OutboxPolicy,
                                key: str, now: datetime) -> _Queued | None:
    """An outbox row to the resident on the channel of their last message (email threaded with
    copies to those copied in; SMS from the number they texted), in the caller's transaction;
    None when that channel cannot be written back to (a phone call, a walk-in)."""
    last = _last_incoming(db, ticket)
    channel = last.channel if last else ticket.channel
    if channel in ("email", "webform") and last is not None and last.sender_email:
        cc = tuple(v for (v,) in db.execute(select(TicketParticipant.value).where(
            TicketParticipant.ticket_id == ticket.id, TicketParticipant.kind == "email",
            TicketParticipant.role == "cc")))
        thread = Thread(in_reply_to=last.email_message_id, references=tuple(last.email_references or ()),
                        subject=last.subject or ticket.subject)
        row = queue_reply(db, ticket, author, body, "email", policy=policy,
                          target=ReplyTarget(last.sender_email, cc=cc, thread=thread),
                          idempotency_key=key, now=now)
        return _Queued("email", row.recipient, row.status.value, row.id)
    if channel == "sms" and last is not None and last.sender_phone:
        to = (last.recipients or {}).get("to") or []
        sender = to[0].get("phone") if to and isinstance(to[0], dict) else None
        row = queue_reply(db, ticket, author, body, "sms", policy=policy,
                          target=ReplyTarget(last.sender_phone, sender=sender), idempotency_key=key, now=now)
        return _Queued("sms", row.recipient, row.status.value, row.id)
    return None
