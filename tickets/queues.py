"""What the console reads: queues (filtered, sorted and paged in SQL), a ticket with the
resident's whole history, and search. Read-only; every function returns frozen dataclasses.

Scoping: ``departments`` (an officer's) limits every read to tickets that involve one of them
(``ticket_departments``); ``None`` means every department. A ticket outside the scope is
reported exactly like a ticket that does not exist, so guessing URLs learns nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tickets.identity import normalise_email, normalise_phone
from tickets.models import (
    OPEN_STATUSES,
    Merge,
    Resident,
    ResidentIdentity,
    StatutoryClockRow,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketNote,
    TicketParticipant,
    TicketReference,
    aware,
)
from tickets.repository import search_tokens, words_condition

Stmt = Any  # a Select being built up (SQLAlchemy 2.1's generic Select is variadic)

QUEUES = ("triage", "mine", "unassigned", "due_soon", "breached", "all")
SORTS = {
    "updated": Ticket.updated_at,
    "created": Ticket.created_at,
    "due": Ticket.due_on,
    "reference": Ticket.reference,
    "status": Ticket.status,
}
DUE_SOON_DAYS = 3
REFERENCE = re.compile(r"^FD-[0-9A-Z]{4}-[0-9A-Z]{4}$", re.IGNORECASE)
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$", re.IGNORECASE)


@dataclass(frozen=True)
class QueueQuery:
    queue: str = "triage"  # one of QUEUES, or "department:<id>"
    department: str | None = None
    status: str | None = None
    channel: str | None = None
    enquiry_type: str | None = None
    priority: bool | None = None
    deadline: str | None = None  # due_soon | breached
    sort: str = "updated"
    descending: bool = True
    page: int = 1
    per_page: int = 25


@dataclass(frozen=True)
class QueueRow:
    id: int
    reference: str
    subject: str | None
    status: str
    department: str | None
    triage: bool
    channel: str
    enquiry_type: str
    priority: bool
    flags: tuple[str, ...]
    due_on: date | None
    assignee: str | None
    resident_name: str | None
    updated_at: datetime | None
    resident_id: int | None = None  # links the name to the resident's page


@dataclass(frozen=True)
class QueuePage:
    rows: tuple[QueueRow, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _scope(stmt: Stmt, departments: Sequence[str] | None) -> Stmt:
    if departments is None:
        return stmt
    return stmt.where(exists().where(TicketDepartment.ticket_id == Ticket.id,
                                     TicketDepartment.department.in_(list(departments))))


def _queue_filter(stmt: Stmt, queue: str, user: str, today: date) -> Stmt:
    is_open = Ticket.status.in_(OPEN_STATUSES)
    if queue == "triage":
        return stmt.where(is_open, Ticket.triage.is_(True))
    if queue == "mine":
        return stmt.where(is_open, Ticket.assignee == user)
    if queue == "unassigned":
        return stmt.where(is_open, Ticket.assignee.is_(None), Ticket.triage.is_(False))
    if queue == "due_soon":
        soon = today + timedelta(days=DUE_SOON_DAYS)
        return stmt.where(is_open, Ticket.due_on >= today, Ticket.due_on <= soon)
    if queue == "breached":
        return stmt.where(is_open, Ticket.due_on < today)
    if queue.startswith("department:"):
        department = queue.split(":", 1)[1]
        return stmt.where(is_open, exists().where(TicketDepartment.ticket_id == Ticket.id,
                                                  TicketDepartment.department == department))
    return stmt.where(Ticket.status != "merged")  # "all"


def queue_page(engine: Engine, query: QueueQuery, *, user: str, departments: Sequence[str] | None,
               today: date) -> QueuePage:
    stmt: Stmt = select(Ticket, Resident.name).outerjoin(Resident, Resident.id == Ticket.resident_id)
    stmt = _scope(_queue_filter(stmt, query.queue, user, today), departments)
    if query.department:
        stmt = stmt.where(exists().where(TicketDepartment.ticket_id == Ticket.id,
                                         TicketDepartment.department == query.department))
    if query.status:
        stmt = stmt.where(Ticket.status == query.status)
    if query.channel:
        stmt = stmt.where(Ticket.channel == query.channel)
    if query.enquiry_type:
        stmt = stmt.where(Ticket.enquiry_type == query.enquiry_type)
    if query.priority is not None:
        stmt = stmt.where(Ticket.priority.is_(query.priority))
    if query.deadline == "due_soon":
        stmt = stmt.where(Ticket.due_on >= today, Ticket.due_on <= today + timedelta(days=DUE_SOON_DAYS))
    elif query.deadline == "breached":
        stmt = stmt.where(Ticket.due_on < today)
    column = SORTS.get(query.sort, Ticket.updated_at)
    order = column.desc() if query.descending else column.asc()
    # Priority first in every queue: a safeguarding report never waits behind routine work.
    ordered = stmt.order_by(Ticket.priority.desc(), order.nulls_last(), Ticket.id.desc())
    page = max(1, query.page)
    per_page = max(1, min(query.per_page, 100))
    with Session(engine) as db:
        total = db.scalar(select(func.count()).select_from(stmt.with_only_columns(Ticket.id).subquery())) or 0
        found = db.execute(ordered.limit(per_page).offset((page - 1) * per_page)).all()
    return QueuePage(tuple(_row(t, name) for t, name in found), total, page, per_page)


def queue_counts(engine: Engine, *, user: str, departments: Sequence[str] | None, today: date,
                 department_ids: Sequence[str] = ()) -> dict[str, int]:
    """How many open tickets each queue holds (the sub navigation's numbers): one pass over the
    open tickets for the work queues, one grouped count for the departments."""
    is_open = Ticket.status.in_(OPEN_STATUSES)
    soon = today + timedelta(days=DUE_SOON_DAYS)

    def when(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    work = _scope(select(
        when(Ticket.triage.is_(True)),
        when(Ticket.assignee == user),
        when(and_(Ticket.assignee.is_(None), Ticket.triage.is_(False))),
        when(and_(Ticket.due_on >= today, Ticket.due_on <= soon)),
        when(Ticket.due_on < today),
    ).where(is_open), departments)
    with Session(engine) as db:
        row = db.execute(work).one()
        counts = dict(zip(QUEUES[:-1], (int(v or 0) for v in row), strict=True))
        if department_ids:
            by_department = _scope(
                select(TicketDepartment.department, func.count())
                .join(Ticket, Ticket.id == TicketDepartment.ticket_id)
                .where(is_open, TicketDepartment.department.in_(list(department_ids)))
                .group_by(TicketDepartment.department), departments)
            found = dict(db.execute(by_department).all())
            counts.update({f"department:{d}": int(found.get(d, 0)) for d in department_ids})
    return counts


def _row(ticket: Ticket, resident_name: str | None) -> QueueRow:
    return QueueRow(id=ticket.id, reference=ticket.reference, subject=ticket.subject, status=ticket.status,
                    department=ticket.primary_department, triage=ticket.triage, channel=ticket.channel,
                    enquiry_type=ticket.enquiry_type, priority=ticket.priority,
                    flags=tuple(str(f) for f in ticket.flags or ()), due_on=ticket.due_on,
                    assignee=ticket.assignee, resident_name=resident_name,
                    updated_at=aware(ticket.updated_at), resident_id=ticket.resident_id)


# -- the ticket page ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MessageView:
    id: int
    ticket_id: int
    ticket_reference: str
    direction: str
    channel: str
    at: datetime
    sender_name: str | None
    sender_email: str | None
    sender_phone: str | None
    subject: str | None
    body_text: str
    body_html: str | None
    attachments: tuple[dict[str, Any], ...]
    routing: dict[str, Any]
    thread_rule: str
    thread_detail: str | None


@dataclass(frozen=True)
class HistoryItem:
    """One line of the resident's timeline: a message, a note or an event, on any ticket."""

    kind: str  # message | note | event
    at: datetime
    ticket_reference: str
    actor: str | None
    message: MessageView | None = None
    text: str | None = None
    event_kind: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class TicketDetail:
    id: int
    reference: str
    status: str
    subject: str | None
    department: str | None
    departments: tuple[str, ...]
    triage: bool
    priority: bool
    flags: tuple[str, ...]
    enquiry_type: str
    channel: str
    assignee: str | None
    due_on: date | None
    model_version: str | None
    confidence: float | None
    merged_into: str | None
    resident_id: int | None
    resident_name: str | None
    resident_identities: tuple[tuple[str, str], ...]
    participants: tuple[tuple[str, str, str], ...]  # kind, value, role
    clocks: tuple[tuple[str, date, str, str], ...]  # kind, due_on, state, flag
    messages: tuple[MessageView, ...]  # this ticket's, oldest first
    history: tuple[HistoryItem, ...]  # the resident's whole history, newest first
    other_tickets: tuple[tuple[str, str, str | None], ...]  # the resident's other tickets
    links: tuple[tuple[str, str], ...]  # reference, kind
    merges: tuple[tuple[int, str, str, bool], ...]  # merge id, source ref, target ref, undone


def find_ticket_id(engine: Engine, reference: str) -> int | None:
    """The ticket a reference (its own, or an alias from a message that joined it) names."""
    with Session(engine) as db:
        ticket_id = db.scalar(select(Ticket.id).where(Ticket.reference == reference.upper()))
        if ticket_id is None:
            ticket_id = db.scalar(select(TicketReference.ticket_id).where(
                TicketReference.reference == reference.upper()))
        return ticket_id


def visible(engine: Engine, ticket_id: int, departments: Sequence[str] | None) -> bool:
    if departments is None:
        with Session(engine) as db:
            return db.get(Ticket, ticket_id) is not None
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(TicketDepartment).where(
            TicketDepartment.ticket_id == ticket_id, TicketDepartment.department.in_(list(departments)))) != 0


def ticket_detail(engine: Engine, ticket_id: int, *, departments: Sequence[str] | None,
                  history_limit: int = 200) -> TicketDetail | None:
    with Session(engine) as db:
        ticket = db.get(Ticket, ticket_id)
        if ticket is None or (departments is not None and not visible(engine, ticket_id, departments)):
            return None
        resident = db.get(Resident, ticket.resident_id) if ticket.resident_id else None
        depts = tuple(d for (d,) in db.execute(select(TicketDepartment.department).where(
            TicketDepartment.ticket_id == ticket.id).order_by(TicketDepartment.role.desc(),
                                                             TicketDepartment.added_at)))
        # The resident's tickets (this one always), limited to the viewer's scope.
        ticket_ids = [ticket.id]
        others: list[tuple[str, str, str | None]] = []
        if resident is not None:
            stmt = _scope(select(Ticket).where(Ticket.resident_id == resident.id, Ticket.id != ticket.id)
                          .order_by(Ticket.created_at.desc()).limit(50), departments)
            for other in db.scalars(stmt):
                ticket_ids.append(other.id)
                others.append((other.reference, other.status, other.subject))
        refs = dict(db.execute(select(Ticket.id, Ticket.reference).where(Ticket.id.in_(ticket_ids))).all())
        messages = [_message(m, refs) for m in db.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id.in_(ticket_ids))
            .order_by(TicketMessage.received_at.desc()).limit(history_limit))]
        notes = db.scalars(select(TicketNote).where(TicketNote.ticket_id.in_(ticket_ids))
                           .order_by(TicketNote.created_at.desc()).limit(history_limit)).all()
        events = db.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids))
                            .order_by(TicketEvent.id.desc()).limit(history_limit)).all()
        history: list[HistoryItem] = [
            HistoryItem("message", m.at, m.ticket_reference, m.sender_name, message=m) for m in messages]
        history += [HistoryItem("note", aware(n.created_at) or n.created_at, refs[n.ticket_id], n.author,
                                text=n.body) for n in notes]
        history += [HistoryItem("event", aware(e.at) or e.at, refs[e.ticket_id], e.actor, event_kind=e.kind,
                                detail=dict(e.detail or {})) for e in events
                    if e.kind not in ("routed", "threaded", "note_added", "reply_queued")]
        history.sort(key=lambda h: h.at, reverse=True)
        identities = tuple((i.kind, i.value) for i in db.scalars(
            select(ResidentIdentity).where(ResidentIdentity.resident_id == resident.id))) if resident else ()
        participants = tuple((p.kind, p.value, p.role) for p in db.scalars(
            select(TicketParticipant).where(TicketParticipant.ticket_id == ticket.id)))
        clocks = tuple((c.kind, c.due_on, c.state, c.status_flag) for c in db.scalars(
            select(StatutoryClockRow).where(StatutoryClockRow.ticket_id == ticket.id)))
        merged_into = db.scalar(select(Ticket.reference).where(Ticket.id == ticket.merged_into_id)) \
            if ticket.merged_into_id else None
        outgoing = and_(TicketLink.from_ticket_id == ticket.id, TicketLink.to_ticket_id == Ticket.id)
        incoming = and_(TicketLink.to_ticket_id == ticket.id, TicketLink.from_ticket_id == Ticket.id)
        linked = db.execute(select(Ticket.reference, TicketLink.kind).join(
            TicketLink, or_(outgoing, incoming))).all()
        merge_rows = db.scalars(select(Merge).where(Merge.kind == "ticket", or_(
            Merge.source_id == ticket.id, Merge.target_id == ticket.id)).order_by(Merge.id.desc())).all()
        merge_refs = dict(db.execute(select(Ticket.id, Ticket.reference).where(Ticket.id.in_(
            [m.source_id for m in merge_rows] + [m.target_id for m in merge_rows]))).all())
        return TicketDetail(
            id=ticket.id, reference=ticket.reference, status=ticket.status, subject=ticket.subject,
            department=ticket.primary_department, departments=depts, triage=ticket.triage,
            priority=ticket.priority, flags=tuple(str(f) for f in ticket.flags or ()),
            enquiry_type=ticket.enquiry_type, channel=ticket.channel, assignee=ticket.assignee,
            due_on=ticket.due_on, model_version=ticket.model_version, confidence=ticket.confidence,
            merged_into=merged_into, resident_id=ticket.resident_id,
            resident_name=resident.name if resident else None, resident_identities=identities,
            participants=participants, clocks=clocks,
            messages=tuple(sorted((m for m in messages if m.ticket_id == ticket.id), key=lambda m: m.at)),
            history=tuple(history[:history_limit]), other_tickets=tuple(others),
            links=tuple((r, k) for r, k in linked),
            merges=tuple((m.id, merge_refs.get(m.source_id, "?"), merge_refs.get(m.target_id, "?"),
                          m.undone_at is not None) for m in merge_rows),
        )


def attachment_of(engine: Engine, message_id: int, index: int) -> tuple[int, dict[str, Any]] | None:
    """(ticket id, the attachment's stored reference) for a message's attachment by position."""
    with Session(engine) as db:
        message = db.get(TicketMessage, message_id)
        if message is None or not (0 <= index < len(message.attachments or [])):
            return None
        return message.ticket_id, dict(message.attachments[index])


def _message(m: TicketMessage, refs: dict[int, str]) -> MessageView:
    return MessageView(id=m.id, ticket_id=m.ticket_id, ticket_reference=refs.get(m.ticket_id, ""),
                       direction=m.direction, channel=m.channel, at=aware(m.received_at) or m.received_at,
                       sender_name=m.sender_name, sender_email=m.sender_email, sender_phone=m.sender_phone,
                       subject=m.subject, body_text=m.body_trimmed or m.body_text or "",
                       body_html=m.body_html,
                       attachments=tuple(dict(a) for a in m.attachments or ()), routing=dict(m.routing or {}),
                       thread_rule=m.thread_rule, thread_detail=m.thread_detail)


# -- search ------------------------------------------------------------------------------------------

def search(engine: Engine, q: str, *, departments: Sequence[str] | None, limit: int = 50) -> list[QueueRow]:
    """One box: a reference, an email, a phone number, a postcode, a name, or words from messages."""
    q = q.strip()
    if not q:
        return []
    base: Stmt = select(Ticket, Resident.name).outerjoin(Resident, Resident.id == Ticket.resident_id)
    with Session(engine) as db:
        if REFERENCE.match(q):
            ticket_id = find_ticket_id(engine, q)
            stmt = base.where(Ticket.id == (ticket_id or -1))
        elif "@" in q and (email := normalise_email(q)):
            stmt = base.where(or_(
                Ticket.resident_id.in_(select(ResidentIdentity.resident_id).where(
                    ResidentIdentity.kind == "email", ResidentIdentity.value == email)),
                Ticket.id.in_(select(TicketParticipant.ticket_id).where(
                    TicketParticipant.kind == "email", TicketParticipant.value == email))))
        elif re.fullmatch(r"[+0-9 ()-]{7,}", q) and (phone := normalise_phone(q)):
            stmt = base.where(or_(
                Ticket.resident_id.in_(select(ResidentIdentity.resident_id).where(
                    ResidentIdentity.kind == "phone", ResidentIdentity.value == phone)),
                Ticket.id.in_(select(TicketParticipant.ticket_id).where(
                    TicketParticipant.kind == "phone", TicketParticipant.value == phone))))
        elif POSTCODE.match(q):
            stmt = base.where(Resident.postcode == q.upper().replace(" ", ""))
        else:
            name_key = " ".join(q.lower().split())
            by_name = select(Resident.id).where(Resident.name_key >= name_key,
                                                Resident.name_key < name_key + "\uffff")
            stmt = base.where(or_(Ticket.resident_id.in_(by_name), Ticket.id.in_(_words(engine, q))))
        stmt = _scope(stmt, departments).order_by(Ticket.updated_at.desc()).limit(limit)
        return [_row(t, name) for t, name in db.execute(stmt).all()]


def _words(engine: Engine, q: str) -> Stmt:
    tokens = search_tokens(q)
    if not tokens:
        return select(TicketMessage.ticket_id).where(text("0 = 1"))
    return select(TicketMessage.ticket_id).where(words_condition(engine.dialect.name, tokens, 500)).limit(500)
