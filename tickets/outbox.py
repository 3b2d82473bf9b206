"""The transactional outbox: every acknowledgement and reply is first a row here.

A row is written inside the caller's session, in the same transaction as the ticket change
that caused it (a new ticket, an officer's reply), so a message is queued if and only if the
change committed. ``frontdoor outbound`` then publishes rows to ``frontdoor.outbound`` and
sends each one that is still ``created``.

Status only moves forward (notifications-api's ``send_to_providers`` habit)::

    created ──► sending ──► sent ──► delivered
       │           │          └────► failed
       │           └────────► failed
       └──► suppressed  (never to be sent: an auto-reply, the council itself, opted out, loop)

Every transition is one conditional UPDATE naming the statuses it may leave, so two senders,
a late callback or a redelivered record can never move a row backwards. A sender that crashed
after the provider accepted a message but before recording it leaves the row ``sending``; once
its lease runs out the row is sent again, with the same Message-ID (chosen here, at queue time),
so a resident's mail client shows one message.

The ticket consumer calls :func:`queue_acknowledgement` when it opens a ticket; the console
calls :func:`queue_reply`. Neither renders anything: templates are the sender's business, so a
council can change them without touching queued rows.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from schemas.inbound import Automation, Channel, InboundMessage
from tickets.models import BigId, metadata  # one metadata, one Alembic history for the whole database


class OutboxStatus(StrEnum):
    CREATED = "created"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class OutboxKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    REPLY = "reply"


class OutboxChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


# The statuses a transition may leave: nothing ever goes back.
_FROM: dict[OutboxStatus, tuple[OutboxStatus, ...]] = {
    OutboxStatus.SENDING: (OutboxStatus.CREATED, OutboxStatus.SENDING),  # SENDING: an expired lease
    OutboxStatus.SENT: (OutboxStatus.SENDING,),
    OutboxStatus.DELIVERED: (OutboxStatus.SENDING, OutboxStatus.SENT),
    OutboxStatus.FAILED: (OutboxStatus.SENDING, OutboxStatus.SENT),
    OutboxStatus.SUPPRESSED: (OutboxStatus.CREATED, OutboxStatus.SENDING),
}
FINAL = frozenset({OutboxStatus.DELIVERED, OutboxStatus.FAILED, OutboxStatus.SUPPRESSED})

outbox = Table(
    "outbox", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("ticket_id", BigId, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("reference", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("cc", Text, nullable=False, default="[]"),  # JSON list of addresses copied in
    Column("sender", String(320), nullable=True),  # SMS: the council number the resident texted
    Column("author", String(200), nullable=True),  # a reply's officer
    Column("body", Text, nullable=True),  # a reply's text; acknowledgements come from templates
    Column("context", Text, nullable=False, default="{}"),  # JSON: the template variables
    Column("message_id", String(250), nullable=True, unique=True),  # email: fixed at queue time
    Column("in_reply_to", String(250), nullable=True),
    Column("references", Text, nullable=True),  # space-separated Message-IDs, oldest first
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("provider_id", String(100), nullable=True, index=True),  # Twilio SID / Notify id
    Column("provider", String(16), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_recipient_created", "recipient", "created_at"),
    Index("ix_outbox_unpublished", "published_at", "status"),
)

undeliverable = Table(
    "outbound_undeliverable", metadata,
    Column("address", String(320), primary_key=True),  # lower-cased email or E.164 number
    Column("channel", String(8), nullable=False),
    Column("reason", Text, nullable=False),
    Column("outbox_id", BigId, nullable=True),
    Column("marked_at", DateTime(timezone=True), nullable=False),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every one stored here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class TicketLike(Protocol):
    """What the outbox needs of a ticket: its id and the reference the resident was told."""

    @property
    def id(self) -> Any: ...

    @property
    def reference(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    """What queueing needs from configuration (built once by ``frontdoor.wiring``)."""

    public_url: str = "http://127.0.0.1:8000"
    mail_from: str = "enquiries@council.example.gov.uk"
    council_domains: tuple[str, ...] = ("council.example.gov.uk",)
    ack_rate_per_hour: int = 3
    twilio_from: str | None = None  # the council's number when the resident's own cannot be told

    @property
    def mail_domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "frontdoor.invalid"

    def is_council_address(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.council_domains) \
            or address.lower() == self.mail_from.lower()


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    idempotency_key: str
    ticket_id: int
    reference: str
    kind: OutboxKind
    channel: OutboxChannel
    recipient: str
    cc: tuple[str, ...]
    sender: str | None
    author: str | None
    body: str | None
    context: dict[str, Any]
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    status: OutboxStatus
    status_reason: str | None
    provider_id: str | None
    provider: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None = None
    lease_until: datetime | None = None
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a reply goes in the resident's mail client: their last message and its chain."""

    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Who a reply goes to: the resident's address or number, and anyone copied in."""

    recipient: str
    cc: tuple[str, ...] = ()
    thread: Thread = field(default_factory=Thread)
    sender: str | None = None  # SMS: the council number the resident texted


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        id=r.id, idempotency_key=r.idempotency_key, ticket_id=r.ticket_id, reference=r.reference,
        kind=OutboxKind(r.kind), channel=OutboxChannel(r.channel), recipient=r.recipient,
        cc=tuple(json.loads(r.cc or "[]")), sender=r.sender, author=r.author, body=r.body,
        context=json.loads(r.context or "{}"), message_id=r.message_id, in_reply_to=r.in_reply_to,
        references=tuple((r.references or "").split()), status=OutboxStatus(r.status),
        status_reason=r.status_reason, provider_id=r.provider_id, provider=r.provider,
        attempts=r.attempts, created_at=_aware(r.created_at) or _now(), sent_at=_aware(r.sent_at),
        lease_until=_aware(r.lease_until), published_at=_aware(r.published_at),
    )


def new_message_id(policy: OutboxPolicy, reference: str) -> str:
    """A Message-ID fixed when the row is written: a re-send after a crash reuses it."""
    return f"<{reference.lower()}.{secrets.token_hex(10)}@{policy.mail_domain}>"


def tracking_url(policy: OutboxPolicy, reference: str, secret: str) -> str:
    from urllib.parse import urlencode

    return f"{policy.public_url}/track?{urlencode({'ref': reference, 'secret': secret})}"


# -- queueing, inside the caller's transaction ------------------------------------------------


def queue_acknowledgement(session: Session | Connection, ticket: TicketLike, message: InboundMessage,
                          *, secret: str, policy: OutboxPolicy,
                          now: datetime | None = None) -> OutboxRow | None:
    """Queue the acknowledgement of a new ticket, on the channel the resident used.

    Call it only when ``message`` opened ``ticket`` (a follow-up that joins a ticket gets
    none). ``secret`` is the ticket's tracking secret in clear: the link needs it, and the
    ticket only keeps its hash. Returns the row (``suppressed`` with the reason when it must
    not go: an auto-reply, bounce or bulk mail, the council's own address, an opted-out or
    undeliverable recipient, or too many acknowledgements to that recipient this hour), or
    None when there is nobody to acknowledge (a call note, a form without an email address).
    One acknowledgement per ticket: a redelivered message returns the row already queued.
    """
    now = now or _now()
    key = f"ack:{ticket.id}"
    existing = _by_key(session, key)
    if existing is not None:
        return existing
    channel, recipient, sender = _ack_route(message, policy)
    if recipient is None or channel is None:
        return None
    reason = _suppression(session, message, channel, recipient, policy, now)
    thread = message.threading
    references = [*thread.references, *([thread.message_id] if thread.message_id else [])]
    context = {
        "reference": ticket.reference,
        "tracking_url": tracking_url(policy, ticket.reference, secret),
        "resident_name": message.sender.name or "",
        "subject": message.subject or "",
        "channel": message.channel.value,
    }
    return _insert(
        session, key=key, ticket=ticket, kind=OutboxKind.ACKNOWLEDGEMENT, channel=channel,
        recipient=recipient, cc=(), sender=sender, author=None, body=None, context=context,
        message_id=new_message_id(policy, ticket.reference) if channel is OutboxChannel.EMAIL else None,
        in_reply_to=thread.message_id if channel is OutboxChannel.EMAIL else None,
        references=references[-20:] if channel is OutboxChannel.EMAIL else [],
        status=OutboxStatus.SUPPRESSED if reason else OutboxStatus.CREATED, reason=reason, now=now,
    )


def queue_reply(session: Session | Connection, ticket: TicketLike, author: str, body: str,
                channel: OutboxChannel | str, *, target: ReplyTarget, policy: OutboxPolicy,
                idempotency_key: str | None = None, now: datetime | None = None) -> OutboxRow:
    """Queue an officer's reply on the resident's channel, in the console's transaction.

    Email replies thread in the resident's mail client (In-Reply-To / References to their
    last message, the reference in the subject) and copy in ``target.cc``; SMS replies go
    from the number they texted. ``idempotency_key`` (the console form's) makes a double
    submit one reply. The row is ``suppressed`` when the recipient is undeliverable.
    """
    now = now or _now()
    channel = OutboxChannel(channel)
    key = f"reply:{ticket.id}:{idempotency_key or secrets.token_hex(12)}"
    existing = _by_key(session, key)
    if existing is not None:
        return existing
    recipient = target.recipient.strip()
    recipient = recipient.lower() if channel is OutboxChannel.EMAIL else recipient
    reason = _undeliverable_reason(session, recipient)
    cc = tuple(dict.fromkeys(
        c.strip().lower() for c in target.cc
        if c.strip() and c.strip().lower() != recipient and not policy.is_council_address(c)
        and _undeliverable_reason(session, c.strip().lower()) is None
    )) if channel is OutboxChannel.EMAIL else ()
    thread = target.thread
    references = [*thread.references]
    if thread.in_reply_to and thread.in_reply_to not in references:
        references.append(thread.in_reply_to)
    context = {"reference": ticket.reference, "subject": thread.subject or "", "author": author}
    return _insert(
        session, key=key, ticket=ticket, kind=OutboxKind.REPLY, channel=channel, recipient=recipient,
        cc=cc, sender=target.sender or policy.twilio_from, author=author, body=body, context=context,
        message_id=new_message_id(policy, ticket.reference) if channel is OutboxChannel.EMAIL else None,
        in_reply_to=thread.in_reply_to if channel is OutboxChannel.EMAIL else None,
        references=references[-20:] if channel is OutboxChannel.EMAIL else [],
        status=OutboxStatus.SUPPRESSED if reason else OutboxStatus.CREATED, reason=reason, now=now,
    )


def _ack_route(message: InboundMessage,
               policy: OutboxPolicy) -> tuple[OutboxChannel | None, str | None, str | None]:
    if message.channel is Channel.SMS and message.sender.phone:
        council_number = message.to[0].phone if message.to and message.to[0].phone else policy.twilio_from
        return OutboxChannel.SMS, message.sender.phone, council_number
    if message.channel in (Channel.EMAIL, Channel.WEBFORM) and message.sender.email:
        return OutboxChannel.EMAIL, message.sender.email.lower(), None
    return None, None, None


def _suppression(session: Session | Connection, message: InboundMessage, channel: OutboxChannel,
                 recipient: str, policy: OutboxPolicy, now: datetime) -> str | None:
    """Why this acknowledgement must not go, or None. Loops die here: robots, the council
    itself, and at most ``ack_rate_per_hour`` acknowledgements per recipient."""
    if message.automation is not Automation.NONE:
        return f"never acknowledge {message.automation.value} mail"
    if channel is OutboxChannel.EMAIL and policy.is_council_address(recipient):
        return "the council's own address"
    if channel is OutboxChannel.SMS and message.source.extra.get("sms_opted_out") == "true":
        return "the number opted out (STOP)"
    reason = _undeliverable_reason(session, recipient)
    if reason:
        return reason
    recent = session.execute(
        select(func.count()).select_from(outbox).where(
            outbox.c.recipient == recipient, outbox.c.kind == OutboxKind.ACKNOWLEDGEMENT.value,
            outbox.c.status != OutboxStatus.SUPPRESSED.value,
            outbox.c.created_at >= now - timedelta(hours=1))
    ).scalar_one()
    if recent >= policy.ack_rate_per_hour:
        return f"rate limit: {recent} acknowledgements to this recipient in the last hour"
    return None


def _undeliverable_reason(session: Session | Connection, address: str) -> str | None:
    row = session.execute(select(undeliverable.c.reason).where(undeliverable.c.address == address)).first()
    return f"undeliverable: {row.reason}" if row else None


def _by_key(session: Session | Connection, key: str) -> OutboxRow | None:
    row = session.execute(select(outbox).where(outbox.c.idempotency_key == key)).first()
    return _row(row) if row else None


def _insert(session: Session | Connection, *, key: str, ticket: TicketLike, kind: OutboxKind,
            channel: OutboxChannel, recipient: str, cc: Sequence[str], sender: str | None,
            author: str | None, body: str | None, context: dict[str, Any], message_id: str | None,
            in_reply_to: str | None, references: Iterable[str], status: OutboxStatus,
            reason: str | None, now: datetime) -> OutboxRow:
    result = session.execute(insert(outbox).values(
        idempotency_key=key, ticket_id=ticket.id, reference=ticket.reference, kind=kind.value,
        channel=channel.value, recipient=recipient, cc=json.dumps(list(cc)), sender=sender,
        author=author, body=body, context=json.dumps(context, sort_keys=True), message_id=message_id,
        in_reply_to=in_reply_to, references=" ".join(references) or None, status=status.value,
        status_reason=reason, attempts=0, created_at=now, updated_at=now,
    ).returning(outbox.c.id))
    new_id = result.scalar_one()
    row = session.execute(select(outbox).where(outbox.c.id == new_id)).first()
    assert row is not None  # noqa: S101 - just inserted in this transaction
    return _row(row)


# -- what the sender and the console read -----------------------------------------------------


def get(conn: Session | Connection, outbox_id: int) -> OutboxRow | None:
    row = conn.execute(select(outbox).where(outbox.c.id == outbox_id)).first()
    return _row(row) if row else None


def for_ticket(conn: Session | Connection, ticket_id: Any) -> list[OutboxRow]:
    """Every outbound message of a ticket, oldest first: what the console shows, with status."""
    rows = conn.execute(select(outbox).where(outbox.c.ticket_id == ticket_id).order_by(outbox.c.id))
    return [_row(r) for r in rows]


def by_message_id(conn: Session | Connection, message_id: str) -> OutboxRow | None:
    """The outbound mail a resident's reply (In-Reply-To) or a bounce names: threading and
    bounces use it to find the ticket."""
    mid = message_id.strip()
    if not mid.startswith("<"):
        mid = f"<{mid}>"
    row = conn.execute(select(outbox).where(outbox.c.message_id == mid)).first()
    return _row(row) if row else None


def by_provider_id(conn: Session | Connection, provider_id: str) -> OutboxRow | None:
    row = conn.execute(select(outbox).where(outbox.c.provider_id == provider_id)).first()
    return _row(row) if row else None


def by_idempotency_key(conn: Session | Connection, key: str) -> OutboxRow | None:
    """The row a provider's receipt names by the reference we gave it (Notify's ``reference``)."""
    row = conn.execute(select(outbox).where(outbox.c.idempotency_key == key)).first()
    return _row(row) if row else None


def undeliverable_addresses(conn: Session | Connection, addresses: Iterable[str]) -> dict[str, str]:
    """Which of ``addresses`` are marked undeliverable, with why: the console shows it."""
    wanted = list(addresses)
    if not wanted:
        return {}
    rows = conn.execute(select(undeliverable.c.address, undeliverable.c.reason)
                        .where(undeliverable.c.address.in_(wanted)))
    return {r.address: r.reason for r in rows}


# -- the sender's transitions (each its own short transaction, run by outbound/) -------------


def to_publish(conn: Connection, *, limit: int = 500, now: datetime | None = None) -> list[OutboxRow]:
    """Rows for the relay: never published yet, or stuck ``sending`` past their lease (the
    sender that claimed them died; sending again reuses their Message-ID)."""
    now = now or _now()
    rows = conn.execute(select(outbox).where(or_(
        and_(outbox.c.published_at.is_(None), outbox.c.status == OutboxStatus.CREATED.value),
        and_(outbox.c.status == OutboxStatus.SENDING.value, outbox.c.lease_until < now,
             or_(outbox.c.published_at.is_(None), outbox.c.published_at < outbox.c.lease_until)),
    )).order_by(outbox.c.id).limit(limit))
    return [_row(r) for r in rows]


def mark_published(conn: Connection, ids: Sequence[int], now: datetime | None = None) -> None:
    if ids:
        conn.execute(update(outbox).where(outbox.c.id.in_(list(ids))).values(published_at=now or _now()))


def claim(conn: Connection, outbox_id: int, *, lease_s: float, idempotency_key: str | None = None,
          now: datetime | None = None) -> OutboxRow | None:
    """Take a row for sending: ``created`` → ``sending``, or a ``sending`` row whose sender's
    lease ran out. One conditional UPDATE: of two senders, exactly one gets it; a row already
    sent (a redelivered record) is never claimed again. With ``idempotency_key``, only the row
    that key names (a record from another database names some other row, or none)."""
    now = now or _now()
    query = update(outbox).where(outbox.c.id == outbox_id)
    if idempotency_key is not None:
        query = query.where(outbox.c.idempotency_key == idempotency_key)
    claimed = conn.execute(
        query.where(or_(
            outbox.c.status == OutboxStatus.CREATED.value,
            and_(outbox.c.status == OutboxStatus.SENDING.value, outbox.c.lease_until < now),
        )).values(status=OutboxStatus.SENDING.value, lease_until=now + timedelta(seconds=lease_s),
                  attempts=outbox.c.attempts + 1, updated_at=now).returning(*outbox.c)
    ).first()
    return _row(claimed) if claimed is not None else None


def advance(conn: Connection, outbox_id: int, status: OutboxStatus, *, reason: str | None = None,
            provider_id: str | None = None, provider: str | None = None,
            now: datetime | None = None) -> bool:
    """Move a row forward to ``status``; False (and nothing changed) if that would go back."""
    now = now or _now()
    values: dict[str, Any] = {"status": status.value, "updated_at": now}
    if reason is not None:
        values["status_reason"] = reason[:2000]
    if provider_id is not None:
        values["provider_id"] = provider_id
    if provider is not None:
        values["provider"] = provider
    if status is OutboxStatus.SENT:
        values["sent_at"] = now
        values["lease_until"] = None
    result = conn.execute(update(outbox).where(
        outbox.c.id == outbox_id, outbox.c.status.in_([s.value for s in _FROM[status]])).values(**values))
    return result.rowcount == 1


def release(conn: Connection, outbox_id: int, reason: str, *, retry_in_s: float,
            now: datetime | None = None) -> None:
    """A transient failure: keep the row ``sending`` with a short lease, so the relay offers it
    again once the lease runs out (status does not go back to ``created``)."""
    now = now or _now()
    conn.execute(update(outbox).where(outbox.c.id == outbox_id,
                                      outbox.c.status == OutboxStatus.SENDING.value)
                 .values(status_reason=reason[:2000], lease_until=now + timedelta(seconds=retry_in_s),
                         updated_at=now))


def mark_undeliverable(conn: Connection, address: str, channel: OutboxChannel, reason: str,
                       outbox_id: int | None, now: datetime | None = None) -> None:
    """A permanent failure: nothing more goes to this address or number until a person clears it."""
    address = address.lower() if channel is OutboxChannel.EMAIL else address
    exists = conn.execute(select(undeliverable.c.address).where(undeliverable.c.address == address)).first()
    values = {"channel": channel.value, "reason": reason[:2000], "outbox_id": outbox_id,
              "marked_at": now or _now()}
    if exists:
        conn.execute(update(undeliverable).where(undeliverable.c.address == address).values(**values))
    else:
        conn.execute(insert(undeliverable).values(address=address, **values))


def clear_undeliverable(conn: Connection, address: str) -> bool:
    """A person confirmed the address works again (the console's action)."""
    from sqlalchemy import delete

    return conn.execute(delete(undeliverable).where(undeliverable.c.address == address)).rowcount == 1
