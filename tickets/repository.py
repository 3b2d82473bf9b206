"""The queries the console and the operator commands need, each backed by an index.

* a ticket by any reference ever told to a resident (its own or an alias): ``ticket_references``
  primary key;
* a resident's whole history across channels: ``ix_tickets_resident_created``;
* residents by email or phone (``uq_resident_identities_kind_value``), by postcode
  (``ix_residents_postcode``), by name (a prefix range on ``ix_residents_name_key``);
* free text over every message: SQLite FTS5 (``ticket_messages_fts``) or PostgreSQL's
  ``tsvector`` with a GIN index, newest first; never a ``LIKE`` scan;
* department queues and triage with due dates, filters, server-side sorting and paging:
  ``ix_tickets_queue``, ``ix_ticket_departments_department``, ``ix_tickets_status_updated``.

Everything returns frozen dataclasses: views never see sessions or SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select, text

from schemas.reference import normalise_reference
from tickets.identity import normalise_email, normalise_phone
from tickets.models import (
    OPEN_STATUSES,
    Merge,
    Resident,
    ResidentIdentity,
    StatutoryClockRow,
    SuggestedMerge,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketNote,
    TicketParticipant,
    TicketReference,
    aware,
    table_of,
)
from tickets.service import name_key, postcode_key

tickets_t = table_of(Ticket)
residents_t = table_of(Resident)
identities_t = table_of(ResidentIdentity)
refs_t = table_of(TicketReference)
messages_t = table_of(TicketMessage)
departments_t = table_of(TicketDepartment)
participants_t = table_of(TicketParticipant)
events_t = table_of(TicketEvent)
clocks_t = table_of(StatutoryClockRow)
links_t = table_of(TicketLink)
notes_t = table_of(TicketNote)
merges_t = table_of(Merge)
suggested_t = table_of(SuggestedMerge)

SortKey = Literal["due", "created", "updated", "priority"]
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class TicketSummary:
    id: int
    reference: str
    status: str
    primary_department: str | None
    triage: bool
    priority: bool
    enquiry_type: str
    channel: str
    subject: str | None
    assignee: str | None
    resident_id: int | None
    due_on: date | None
    created_at: datetime | None
    updated_at: datetime | None
    last_message_at: datetime | None
    merged_into_id: int | None


@dataclass(frozen=True)
class MessageView:
    id: int
    ticket_id: int
    direction: str
    channel: str
    received_at: datetime | None
    sender_name: str | None
    sender_email: str | None
    sender_phone: str | None
    subject: str | None
    body_text: str
    body_trimmed: str | None
    thread_rule: str
    thread_detail: str | None
    intake_reference: str | None
    routing: dict[str, Any]
    attachments: list[Any]


@dataclass(frozen=True)
class TicketDetail:
    ticket: TicketSummary
    references: tuple[str, ...]  # every reference that opens it: its own first, then aliases
    departments: tuple[tuple[str, str], ...]  # (department, role)
    participants: tuple[dict[str, Any], ...]
    messages: tuple[MessageView, ...]
    clocks: tuple[dict[str, Any], ...]
    history: tuple[dict[str, Any], ...]
    links: tuple[dict[str, Any], ...]
    notes: tuple[dict[str, Any], ...]
    merged_into: str | None = None  # the reference of the ticket it was merged into


@dataclass(frozen=True)
class ResidentView:
    id: int
    name: str | None
    postcode: str | None
    identities: tuple[tuple[str, str], ...]  # (kind, value)
    tickets: tuple[TicketSummary, ...]
    merged_into_id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ResidentMergeView:
    """One resident merge on a resident's history (either side), and whether it can be undone."""

    id: int
    source_id: int  # the resident merged away (kept, pointing at the target)
    target_id: int  # the one that stayed
    source_name: str | None
    target_name: str | None
    actor: str
    at: datetime | None
    reason: str
    tickets: int  # how many tickets moved with it
    undone_at: datetime | None
    undone_by: str | None
    undoable: bool  # not undone, its snapshot kept, the source still merged into the target


@dataclass(frozen=True)
class SharedIdentity:
    """An address or number one message gave that a resident already held."""

    kind: str  # email | phone
    value: str


@dataclass(frozen=True)
class SuggestionView:
    """An open suggested merge as a supervisor decides it: the two residents as they are now
    (each followed to the resident it was merged into since), the older first, because the older
    one is the one a merge keeps."""

    id: int
    created_at: datetime | None
    reason: str
    shared: tuple[SharedIdentity, ...]  # what tied them (parsed from the reason the stage wrote)
    older: ResidentView
    newer: ResidentView

    @property
    def already_one(self) -> bool:
        """Both sides were merged into one resident since (by another decision)."""
        return self.older.id == self.newer.id


@dataclass(frozen=True)
class MessageHit:
    message_id: int
    ticket_id: int
    reference: str
    subject: str | None
    snippet: str
    received_at: datetime | None


@dataclass(frozen=True)
class Page:
    items: tuple[TicketSummary, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class QueueFilter:
    """What a queue shows; every field narrows it."""

    department: str | None = None  # any ticket involving it (primary or further department)
    triage: bool | None = None
    statuses: tuple[str, ...] = OPEN_STATUSES
    assignee: str | None = None
    unassigned: bool = False
    priority: bool | None = None
    enquiry_type: str | None = None
    due_before: date | None = None
    sort: SortKey = "due"
    descending: bool = False
    page: int = 1
    per_page: int = 25
    extra: dict[str, Any] = field(default_factory=dict)


def to_jsonable(value: Any) -> Any:
    """A dataclass tree as JSON-ready data (dates as ISO 8601)."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return (aware(value) or value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _summary(row: Any) -> TicketSummary:
    return TicketSummary(
        id=row.id, reference=row.reference, status=row.status, primary_department=row.primary_department,
        triage=bool(row.triage), priority=bool(row.priority), enquiry_type=row.enquiry_type,
        channel=row.channel, subject=row.subject, assignee=row.assignee, resident_id=row.resident_id,
        due_on=row.due_on, created_at=aware(row.created_at), updated_at=aware(row.updated_at),
        last_message_at=aware(row.last_message_at), merged_into_id=row.merged_into_id)


_SUMMARY_COLUMNS = (tickets_t.c.id, tickets_t.c.reference, tickets_t.c.status, tickets_t.c.primary_department,
                    tickets_t.c.triage, tickets_t.c.priority, tickets_t.c.enquiry_type, tickets_t.c.channel,
                    tickets_t.c.subject, tickets_t.c.assignee, tickets_t.c.resident_id, tickets_t.c.due_on,
                    tickets_t.c.created_at, tickets_t.c.updated_at, tickets_t.c.last_message_at,
                    tickets_t.c.merged_into_id)


class TicketRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- one ticket -----------------------------------------------------------------------------

    def ticket_id_for(self, conn: Connection, reference: str) -> int | None:
        canonical = normalise_reference(reference)
        if canonical is None:
            return None
        found = conn.execute(select(refs_t.c.ticket_id).where(refs_t.c.reference == canonical)).scalar()
        if found is None:  # a ticket's own reference is always in the allocator; belt and braces
            found = conn.execute(select(tickets_t.c.id).where(tickets_t.c.reference == canonical)).scalar()
        return found

    def ticket(self, reference: str) -> TicketDetail | None:
        """The ticket any of its references names (its own, or an alias), with everything on it."""
        with self.engine.connect() as conn:
            ticket_id = self.ticket_id_for(conn, reference)
            return self.ticket_by_id(conn, ticket_id) if ticket_id is not None else None

    def ticket_by_id(self, conn: Connection, ticket_id: int) -> TicketDetail | None:
        row = conn.execute(select(*_SUMMARY_COLUMNS).where(tickets_t.c.id == ticket_id)).first()
        if row is None:
            return None
        summary = _summary(row)
        refs = conn.execute(select(refs_t.c.reference).where(refs_t.c.ticket_id == ticket_id)
                            .order_by(refs_t.c.issued_at)).scalars().all()
        references = (summary.reference, *[r for r in refs if r != summary.reference])
        departments = tuple((r.department, r.role) for r in conn.execute(
            select(departments_t.c.department, departments_t.c.role)
            .where(departments_t.c.ticket_id == ticket_id)
            .order_by(departments_t.c.role.desc(), departments_t.c.department)))
        participants = tuple({"kind": r.kind, "value": r.value, "role": r.role, "name": r.name}
                             for r in conn.execute(select(participants_t).where(
                                 participants_t.c.ticket_id == ticket_id).order_by(participants_t.c.id)))
        messages = tuple(self._messages(conn, [ticket_id]))
        clocks = tuple({"kind": r.kind, "started_on": r.started_on, "due_on": r.due_on, "state": r.state,
                        "flag": r.status_flag, "paused_days": r.paused_days, "extended": bool(r.extended)}
                       for r in conn.execute(select(clocks_t).where(clocks_t.c.ticket_id == ticket_id)
                                             .order_by(clocks_t.c.due_on)))
        history = tuple({"id": r.id, "kind": r.kind, "actor": r.actor, "at": aware(r.at), "detail": r.detail}
                        for r in conn.execute(select(events_t).where(events_t.c.ticket_id == ticket_id)
                                              .order_by(events_t.c.id)))
        links = tuple({"to": r.reference, "kind": r.kind, "reason": r.reason, "direction": r.direction}
                      for r in conn.execute(_links_query(ticket_id)))
        notes = tuple({"author": r.author, "body": r.body, "at": aware(r.created_at)}
                      for r in conn.execute(select(notes_t).where(notes_t.c.ticket_id == ticket_id)
                                            .order_by(notes_t.c.id)))
        merged_into = None
        if summary.merged_into_id is not None:
            merged_into = conn.execute(select(tickets_t.c.reference)
                                       .where(tickets_t.c.id == summary.merged_into_id)).scalar()
        return TicketDetail(summary, references, departments, participants, messages, clocks, history, links,
                            notes, merged_into)

    def _messages(self, conn: Connection, ticket_ids: Sequence[int]) -> Iterable[MessageView]:
        m = messages_t.c
        query = select(messages_t).where(m.ticket_id.in_(ticket_ids)).order_by(m.received_at, m.id)
        for r in conn.execute(query):
            yield MessageView(
                id=r.id, ticket_id=r.ticket_id, direction=r.direction, channel=r.channel,
                received_at=aware(r.received_at), sender_name=r.sender_name, sender_email=r.sender_email,
                sender_phone=r.sender_phone, subject=r.subject, body_text=r.body_text,
                body_trimmed=r.body_trimmed, thread_rule=r.thread_rule, thread_detail=r.thread_detail,
                intake_reference=r.intake_reference, routing=r.routing or {}, attachments=r.attachments or [])

    # -- residents ------------------------------------------------------------------------------

    def resident(self, resident_id: int, *, departments: Sequence[str] | None = None) -> ResidentView | None:
        """A resident's whole history: every ticket on every channel, newest first.

        ``departments`` (an officer's) keeps only the tickets that involve one of them."""
        with self.engine.connect() as conn:
            return self._resident(conn, resident_id, departments)

    def _resident(self, conn: Connection, resident_id: int,
                  departments: Sequence[str] | None = None) -> ResidentView | None:
        row = conn.execute(select(residents_t).where(residents_t.c.id == resident_id)).first()
        if row is None:
            return None
        identities = tuple((r.kind, r.value) for r in conn.execute(
            select(identities_t.c.kind, identities_t.c.value).where(identities_t.c.resident_id == resident_id)
            .order_by(identities_t.c.kind, identities_t.c.value)))
        query = select(*_SUMMARY_COLUMNS).where(tickets_t.c.resident_id == resident_id)
        if departments is not None:
            d = departments_t.c
            query = query.where(exists().where(d.ticket_id == tickets_t.c.id,
                                               d.department.in_(list(departments))))
        tickets = tuple(_summary(r) for r in conn.execute(
            query.order_by(tickets_t.c.created_at.desc(), tickets_t.c.id.desc())))
        return ResidentView(row.id, row.name, row.postcode, identities, tickets, row.merged_into_id,
                            aware(row.created_at))

    def survivor(self, resident_id: int) -> int:
        """The resident a merged resident now lives on as (itself when never merged)."""
        with self.engine.connect() as conn:
            return self._survivor(conn, resident_id)

    def resident_merges(self, resident_id: int) -> tuple[ResidentMergeView, ...]:
        """The resident merges on either side of ``resident_id``, newest first."""
        mg = merges_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(merges_t).where(
                mg.kind == "resident", or_(mg.source_id == resident_id, mg.target_id == resident_id))
                .order_by(mg.id.desc())).all()
            ids = {r.source_id for r in rows} | {r.target_id for r in rows}
            people = {r.id: (r.name, r.merged_into_id) for r in conn.execute(
                select(residents_t.c.id, residents_t.c.name, residents_t.c.merged_into_id)
                .where(residents_t.c.id.in_(ids)))}
        found = []
        for r in rows:
            snapshot = r.snapshot or {}
            source_name, source_into = people.get(r.source_id, (None, None))
            found.append(ResidentMergeView(
                id=r.id, source_id=r.source_id, target_id=r.target_id, source_name=source_name,
                target_name=people.get(r.target_id, (None, None))[0], actor=r.actor, at=aware(r.at),
                reason=str(snapshot.get("reason") or ""), tickets=len(snapshot.get("tickets") or ()),
                undone_at=aware(r.undone_at), undone_by=r.undone_by,
                undoable=r.undone_at is None and bool(snapshot) and source_into == r.target_id))
        return tuple(found)

    def open_suggestion_count(self) -> int:
        """How many suggested merges wait for a person (``ix_suggested_merges_resolved_at``)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(suggested_t)
                                    .where(suggested_t.c.resolved_at.is_(None))).scalar_one())

    def open_suggestions(self, *, page: int = 1, per_page: int = 20) -> tuple[SuggestionView, ...]:
        """Open suggested merges, newest first, each pair as it stands now."""
        s = suggested_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(suggested_t).where(s.resolved_at.is_(None))
                                .order_by(s.created_at.desc(), s.id.desc())
                                .limit(per_page).offset((max(1, page) - 1) * per_page)).all()
            return tuple(view for view in (self._suggestion(conn, r) for r in rows) if view is not None)

    def suggestion(self, suggestion_id: int) -> SuggestionView | None:
        """One suggested merge (open or not) as :meth:`open_suggestions` shows it."""
        with self.engine.connect() as conn:
            row = conn.execute(select(suggested_t).where(suggested_t.c.id == suggestion_id)).first()
            return self._suggestion(conn, row) if row is not None else None

    def _suggestion(self, conn: Connection, row: Any) -> SuggestionView | None:
        a = self._resident(conn, self._survivor(conn, row.resident_a_id))
        b = self._resident(conn, self._survivor(conn, row.resident_b_id))
        if a is None or b is None:
            return None
        older, newer = sorted((a, b), key=resident_age)
        shared = tuple(dict.fromkeys(SharedIdentity(kind, value)
                                     for kind, value in _HELD.findall(row.reason or "")))
        return SuggestionView(row.id, aware(row.created_at), row.reason or "", shared, older, newer)

    def find_residents(self, *, email: str | None = None, phone: str | None = None, name: str | None = None,
                       postcode: str | None = None, reference: str | None = None,
                       words: str | None = None, limit: int = 20) -> list[ResidentView]:
        """Residents matching every given criterion's index, each with their tickets."""
        with self.engine.connect() as conn:
            ids: list[int] = []
            if email is not None:
                ids += self._by_identity(conn, "email", normalise_email(email))
            if phone is not None:
                ids += self._by_identity(conn, "phone", normalise_phone(phone))
            if postcode is not None:
                key = postcode_key(postcode)
                ids += conn.execute(select(residents_t.c.id).where(residents_t.c.postcode == key)
                                    .limit(limit)).scalars().all()
            if name is not None:
                key = name_key(name) or ""
                ids += conn.execute(select(residents_t.c.id).where(
                    residents_t.c.name_key >= key, residents_t.c.name_key < key + "\uffff")
                    .order_by(residents_t.c.name_key).limit(limit)).scalars().all()
            if reference is not None:
                ticket_id = self.ticket_id_for(conn, reference)
                if ticket_id is not None:
                    owner = conn.execute(select(tickets_t.c.resident_id)
                                         .where(tickets_t.c.id == ticket_id)).scalar()
                    ids += [owner] if owner is not None else []
            if words is not None:
                hits = self._search(conn, words, limit * 5)
                owners = conn.execute(select(tickets_t.c.resident_id).where(
                    tickets_t.c.id.in_({h.ticket_id for h in hits}))).scalars().all()
                ids += [o for o in owners if o is not None]
            found: list[ResidentView] = []
            for rid in dict.fromkeys(self._survivor(conn, i) for i in ids):
                view = self._resident(conn, rid)
                if view is not None:
                    found.append(view)
                if len(found) >= limit:
                    break
            return found

    def _by_identity(self, conn: Connection, kind: str, value: str | None) -> list[int]:
        if value is None:
            return []
        return list(conn.execute(select(identities_t.c.resident_id).where(
            identities_t.c.kind == kind, identities_t.c.value == value)).scalars())

    @staticmethod
    def _survivor(conn: Connection, resident_id: int) -> int:
        for _ in range(16):
            target = conn.execute(select(residents_t.c.merged_into_id)
                                  .where(residents_t.c.id == resident_id)).scalar()
            if target is None:
                break
            resident_id = target
        return resident_id

    # -- free text ------------------------------------------------------------------------------

    def search(self, words: str, limit: int = 50) -> list[MessageHit]:
        """Messages containing every word (stemmed), newest first."""
        with self.engine.connect() as conn:
            return self._search(conn, words, limit)

    def _search(self, conn: Connection, words: str, limit: int) -> list[MessageHit]:
        tokens = search_tokens(words)
        if not tokens:
            return []
        m = messages_t.c
        rows = conn.execute(select(m.id, m.ticket_id, m.subject, m.body_text, m.received_at,
                                   tickets_t.c.reference)
                            .join(tickets_t, tickets_t.c.id == m.ticket_id)
                            .where(words_condition(conn.dialect.name, tokens, limit))
                            .order_by(m.id.desc()).limit(limit)).all()
        return [MessageHit(r.id, r.ticket_id, r.reference, r.subject, _snippet(r.body_text, tokens),
                           aware(r.received_at)) for r in rows]

    # -- queues ---------------------------------------------------------------------------------

    def queue(self, where: QueueFilter) -> Page:
        """A page of a department's queue (or triage), filtered and sorted in the database."""
        t = tickets_t.c
        conditions: list[Any] = []
        if where.statuses:
            conditions.append(t.status.in_(where.statuses))
        if where.department is not None:
            d = departments_t.c
            conditions.append(or_(t.primary_department == where.department,
                                  exists().where(d.ticket_id == t.id, d.department == where.department)))
        if where.triage is not None:
            conditions.append(t.triage.is_(where.triage))
        if where.assignee is not None:
            conditions.append(t.assignee == where.assignee)
        if where.unassigned:
            conditions.append(t.assignee.is_(None))
        if where.priority is not None:
            conditions.append(t.priority.is_(where.priority))
        if where.enquiry_type is not None:
            conditions.append(t.enquiry_type == where.enquiry_type)
        if where.due_before is not None:
            conditions.append(and_(t.due_on.is_not(None), t.due_on <= where.due_before))
        order: list[Any]
        direction = (lambda c: c.desc()) if where.descending else (lambda c: c.asc())
        if where.sort == "due":  # undated last either way
            order = [t.due_on.is_(None), direction(t.due_on), t.id]
        elif where.sort == "priority":
            order = [t.priority.desc(), t.due_on.is_(None), t.due_on, t.id]
        elif where.sort == "updated":
            order = [direction(t.updated_at), t.id]
        else:
            order = [direction(t.created_at), t.id]
        per_page = max(1, min(where.per_page, 200))
        page = max(1, where.page)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(tickets_t).where(*conditions)).scalar_one()
            rows = conn.execute(select(*_SUMMARY_COLUMNS).where(*conditions).order_by(*order)
                                .limit(per_page).offset((page - 1) * per_page)).all()
        return Page(tuple(_summary(r) for r in rows), total, page, per_page)


_HELD = re.compile(r"\b(email|phone):(\S+?) held by -?\d+")
"""How the ticket stage writes a suggestion's reason (tickets.identity.resolve_identities)."""


def resident_age(resident: ResidentView) -> tuple[datetime, int]:
    """Sort key: the older resident first (created first; the smaller id on a tie)."""
    return (resident.created_at or datetime.max.replace(tzinfo=UTC), resident.id)


def search_tokens(words: str, most: int = 8) -> list[str]:
    """The words a search box's text is matched on (lower case, at most `most`)."""
    return _WORD.findall(words.lower())[:most]


def words_condition(dialect: str, tokens: Sequence[str], limit: int) -> Any:
    """Messages containing every token (stemmed), as a condition on ticket_messages.

    SQLite asks FTS5 for the newest `limit` matches (each token a quoted term, so no FTS5 syntax
    reaches it from the user); PostgreSQL matches the tsvector column under its GIN index.
    """
    if dialect == "postgresql":
        return text("ticket_messages.search_vector @@ plainto_tsquery('english', :q)").bindparams(
            q=" ".join(tokens))
    match = " ".join(f'"{t}"' for t in tokens)
    return messages_t.c.id.in_(
        select(text("rowid")).select_from(text("ticket_messages_fts"))
        .where(text("ticket_messages_fts MATCH :match").bindparams(match=match))
        .order_by(text("rowid DESC")).limit(limit))


def _links_query(ticket_id: int) -> Any:
    l_ = links_t.c
    outgoing = (select(tickets_t.c.reference, l_.kind, l_.reason, text("'to' AS direction"))
                .join(tickets_t, tickets_t.c.id == l_.to_ticket_id).where(l_.from_ticket_id == ticket_id))
    incoming = (select(tickets_t.c.reference, l_.kind, l_.reason, text("'from' AS direction"))
                .join(tickets_t, tickets_t.c.id == l_.from_ticket_id).where(l_.to_ticket_id == ticket_id))
    return outgoing.union_all(incoming)


def _snippet(body: str, tokens: list[str], width: int = 160) -> str:
    lower = body.lower()
    at = min((i for i in (lower.find(t) for t in tokens) if i >= 0), default=0)
    start = max(0, at - width // 3)
    return ("…" if start else "") + body[start:start + width].replace("\n", " ")
