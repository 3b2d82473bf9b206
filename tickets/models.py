"""The tickets database: every table of the ticket stage, as SQLAlchemy 2 declarative models.

What each table is for, and the constraint that keeps it honest:

* ``residents`` / ``resident_identities``: one person, several normalised emails and E.164
  numbers; ``(kind, value)`` is unique, so two consumers that meet a new address at the same
  moment cannot both create a resident for it (the loser's batch is retried and finds it).
* ``ticket_references``: the one allocator. Every reference ever issued (by the intake, or to an
  email that came with none) is a row here; the primary key is the one uniqueness rule for every
  channel. ``ticket_id`` is set once the reference names a ticket, as its own reference or as an
  alias (a message that joined another ticket).
* ``tickets`` and ``ticket_departments``: the enquiry, its primary department and any others.
* ``ticket_messages``: every message in and out; ``dedupe_key`` is unique, so a message seen
  twice (a copy on two department topics, a replay, a redelivery) is stored once.
* ``ticket_participants``: who may write into a ticket (threading accepts only them).
* ``ticket_events``: the audit history, also the events outbox: ``published_at`` is set once the
  relay has put the row on ``frontdoor.events``.
* ``consumer_offsets``: the last offset applied per (group, topic, partition), written in the same
  transaction as the work, so the database, not Kafka, says where a consumer resumes.

Times are stored as UTC (SQLite hands them back naive: :func:`aware` restores the zone).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Names for constraints, so Alembic revisions can refer to them on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TICKET_STATUSES = ("new", "open", "awaiting_resident", "resolved", "closed", "reopened", "merged")
OPEN_STATUSES = ("new", "open", "awaiting_resident", "reopened")

# An autoincrementing 64-bit key that SQLite still treats as its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for batched statements (typed as a Table, not a FromClause)."""
    return cast(Table, model.__table__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns datetimes naive; every one stored here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(300))
    # lower-cased, single-spaced: the index behind name search (prefix ranges, never LIKE)
    name_key: Mapped[str | None] = mapped_column(String(300), index=True)
    postcode: Mapped[str | None] = mapped_column(String(16), index=True)  # upper case, no spaces
    address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResidentIdentity(Base):
    __tablename__ = "resident_identities"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_resident_identities_kind_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # email | phone
    value: Mapped[str] = mapped_column(String(320))  # normalised: lower-case email, E.164 number
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    source_message_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketReference(Base):
    """The one reference allocator: every reference ever issued, on every channel."""

    __tablename__ = "ticket_references"

    reference: Mapped[str] = mapped_column(String(16), primary_key=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(300), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="issued")  # issued | primary | alias


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_queue", "primary_department", "status", "due_on"),
        Index("ix_tickets_status_updated", "status", "updated_at"),
        Index("ix_tickets_resident_created", "resident_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="new")
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    primary_department: Mapped[str | None] = mapped_column(String(64))
    triage: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    assignee: Mapped[str | None] = mapped_column(String(320), index=True)
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    enquiry_type: Mapped[str] = mapped_column(String(32), default="general")
    channel: Mapped[str] = mapped_column(String(16))  # the first message's channel
    subject: Mapped[str | None] = mapped_column(String(500))
    model_version: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    due_on: Mapped[date | None] = mapped_column(Date)  # earliest running clock's due date
    tracking_secret_hash: Mapped[str | None] = mapped_column(String(200))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TicketDepartment(Base):
    __tablename__ = "ticket_departments"
    __table_args__ = (Index("ix_ticket_departments_department", "department", "ticket_id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="involved")  # primary | involved
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketMessage(Base):
    """One message in or out, on any channel, with the routing decision that came with it."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        Index("ix_ticket_messages_ticket_received", "ticket_id", "received_at"),
        Index("ix_ticket_messages_sender_phone_received", "sender_phone", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    message_uuid: Mapped[str] = mapped_column(String(64))  # InboundMessage.id
    direction: Mapped[str] = mapped_column(String(8), default="in")  # in | out
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sender_name: Mapped[str | None] = mapped_column(String(300))
    sender_email: Mapped[str | None] = mapped_column(String(320), index=True)
    sender_phone: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_trimmed: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    email_message_id: Mapped[str | None] = mapped_column(String(500), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(500))
    email_references: Mapped[list[Any]] = mapped_column(JSON, default=list)
    thread_index: Mapped[str | None] = mapped_column(String(64), index=True)  # conversation root
    intake_reference: Mapped[str | None] = mapped_column(String(16))
    automation: Mapped[str] = mapped_column(String(16), default="none")
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)  # blob refs, never bytes
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    body_ref_sha256: Mapped[str | None] = mapped_column(String(64))
    recipients: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # to/cc/mailboxes
    routing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the router's decision
    thread_rule: Mapped[str] = mapped_column(String(32), default="new")  # which rule placed it
    thread_detail: Mapped[str | None] = mapped_column(String(500))  # which header / reference
    source_topic: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketParticipant(Base):
    __tablename__ = "ticket_participants"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", "value", name="uq_ticket_participants_ticket_kind_value"),
        Index("ix_ticket_participants_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(8))  # email | phone
    value: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="resident")  # resident | cc | staff
    name: Mapped[str | None] = mapped_column(String(300))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketNote(Base):
    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketEvent(Base):
    """The audit history of a ticket, and the outbox the events relay publishes from."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        Index("ix_ticket_events_ticket_at", "ticket_id", "id"),
        Index("ix_ticket_events_unpublished", "published_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    reference: Mapped[str] = mapped_column(String(16))  # the Kafka key on frontdoor.events
    # routed | threaded | transferred | corrected | status_changed | merged | unmerged | ...
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320), default="system")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Correction(Base):
    """A ticket moved to another department: a labelled example for the next training run."""

    __tablename__ = "routing_corrections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_messages.id"))
    from_department: Mapped[str | None] = mapped_column(String(64))
    to_department: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")  # what the agent said
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class StatutoryClockRow(Base):
    __tablename__ = "statutory_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", name="uq_statutory_clocks_ticket_kind"),
        Index("ix_statutory_clocks_state_due", "state", "due_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32))  # foi | sar | complaint_stage1 | ...
    started_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="running")  # running | paused | stopped
    paused_since: Mapped[date | None] = mapped_column(Date)
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    status_flag: Mapped[str] = mapped_column(String(16), default="ok")  # ok | due_soon | breached
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Feedback(Base):
    __tablename__ = "ticket_feedback"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)  # one per ticket
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackDepartment(Base):
    """The rating counted for each department that handled the ticket."""

    __tablename__ = "ticket_feedback_departments"
    __table_args__ = (Index("ix_ticket_feedback_departments_department", "department"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket_feedback.ticket_id"), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    rating: Mapped[int] = mapped_column(Integer)


class TicketLink(Base):
    __tablename__ = "ticket_links"
    __table_args__ = (Index("ix_ticket_links_to", "to_ticket_id"),)

    from_ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    to_ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # mentions | after_close | ...
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Merge(Base):
    """A merge of two tickets or two residents; ``snapshot`` holds what unmerge restores."""

    __tablename__ = "merges"
    __table_args__ = (Index("ix_merges_kind_source", "kind", "source_id"),
                      Index("ix_merges_kind_target", "kind", "target_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # ticket | resident
    source_id: Mapped[int] = mapped_column(BigId)
    target_id: Mapped[int] = mapped_column(BigId)
    actor: Mapped[str] = mapped_column(String(320))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(String(320))


class SuggestedMerge(Base):
    """Two residents that one submission tied together: only a person merges them."""

    __tablename__ = "suggested_merges"
    __table_args__ = (UniqueConstraint("resident_a_id", "resident_b_id",
                                       name="uq_suggested_merges_pair"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resident_a_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))  # the smaller id
    resident_b_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    reason: Mapped[str] = mapped_column(String(500))
    message_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    resolution: Mapped[str | None] = mapped_column(String(16))  # merged | rejected
    resolved_by: Mapped[str | None] = mapped_column(String(320))


class ConsumerOffset(Base):
    """The last offset applied per partition, committed with the work it stands for."""

    __tablename__ = "consumer_offsets"

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 server_default=text("CURRENT_TIMESTAMP"))


metadata = Base.metadata
