"""The ticket stage's work: merge a batch of routed records into tickets, in one transaction.

:meth:`TicketWriter.write_batch` is what the consumer loop hands each polled batch to. It

1. reads every record (a record it cannot read is dead-lettered before anything is written);
2. loads, with one query per kind of key for the whole batch, what threading and identity
   need: messages already held (dedupe keys, Message-IDs, Thread-Index conversations),
   references and aliases, each SMS number's latest ticket, the residents holding the senders'
   addresses and numbers, and the tickets all of these name;
3. decides each message in order with the pure rules (``tickets.threading.decide``,
   ``tickets.identity.resolve_identities``), a ticket opened earlier in the same batch being
   visible to the messages after it;
4. writes everything with batched inserts: residents, identities, tickets, references,
   departments, participants, messages, clocks, links, audit events, and the consumed offsets.

The caller commits, so messages, ticket changes and offsets are durable together or not at all.
A message already held (another department's copy, a replay, a redelivery) changes nothing, except
that a decision re-made by ``frontdoor replay`` moves the open ticket it opened (tickets/rerouting.py). Two
consumers racing on a new address or on one message meet a unique constraint; the loser's
transaction is rolled back and the batch redone, when it finds the winner's rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from ingest.bus import Record
from ingest.errors import PoisonMessageError, UnknownSchemaVersionError
from schemas.inbound import InboundMessage
from schemas.reference import normalise_reference
from schemas.routed import ROUTED_SCHEMA_VERSION, RoutedMessage, Routing
from tickets import clocks as clock_rules
from tickets.identity import Identity, IdentityKind, ResolutionKind, resolve_identities
from tickets.models import (
    ConsumerOffset,
    Resident,
    ResidentIdentity,
    StatutoryClockRow,
    SuggestedMerge,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketParticipant,
    TicketReference,
    aware,
    table_of,
    utcnow,
)
from tickets.references import draw_reference
from tickets.rerouting import apply_replayed, routed_departments
from tickets.status import TicketStatus
from tickets.threading import (
    Action,
    HeldMessage,
    ThreadContext,
    ThreadDecision,
    ThreadingPolicy,
    ThreadKeys,
    TicketView,
    decide,
    participants_of,
    thread_keys,
)

log = logging.getLogger(__name__)

residents_t = table_of(Resident)
identities_t = table_of(ResidentIdentity)
tickets_t = table_of(Ticket)
departments_t = table_of(TicketDepartment)
messages_t = table_of(TicketMessage)
participants_t = table_of(TicketParticipant)
events_t = table_of(TicketEvent)
links_t = table_of(TicketLink)
refs_t = table_of(TicketReference)
clocks_t = table_of(StatutoryClockRow)
offsets_t = table_of(ConsumerOffset)
suggested_t = table_of(SuggestedMerge)

CONSUMER_GROUP = "frontdoor-tickets"


@dataclass(frozen=True, slots=True)
class NewTicket:
    """A ticket opened by this batch, as the new-ticket hook sees it (nothing secret in it)."""

    id: int
    reference: str
    resident_id: int | None
    primary_department: str | None


class NewTicketHook(Protocol):
    """Called inside the batch's transaction for each ticket a message opened: where the
    acknowledgement is queued (``tickets.outbox.queue_acknowledgement``) with a secret from
    :func:`issue_tracking_secret`, so the plain secret exists only in that outbox row."""

    def __call__(self, conn: Connection, ticket: NewTicket, message: InboundMessage) -> None: ...


DeadLetter = Callable[[Record, PoisonMessageError], None]


def hash_secret(secret: str) -> str:
    """SHA-256 of a tracking secret. The secret is 128 random bits, not a password a person
    chose, so a fast hash is enough: there is nothing to guess from the hash."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_tracking_secret(conn: Connection, ticket_id: int) -> str:
    """A new tracking secret for the ticket: its hash is stored, the plain value returned once
    (to be put in the acknowledgement in this same transaction). Replaces any earlier secret."""
    secret = secrets.token_urlsafe(16)
    conn.execute(update(tickets_t).where(tickets_t.c.id == ticket_id)
                 .values(tracking_secret_hash=hash_secret(secret)))
    return secret


def check_tracking_secret(conn: Connection, ticket_id: int, secret: str) -> bool:
    stored = conn.execute(select(tickets_t.c.tracking_secret_hash)
                          .where(tickets_t.c.id == ticket_id)).scalar()
    return isinstance(stored, str) and secrets.compare_digest(stored, hash_secret(secret))


def decode_routed(record: Record) -> RoutedMessage:
    """The record as a routed message, or a :class:`PoisonMessageError` saying why not."""
    if not record.value:
        raise PoisonMessageError("empty_record", "the record has no value")
    try:
        routed = RoutedMessage.model_validate_json(record.value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        if first["type"] == "json_invalid":
            raise PoisonMessageError("malformed_json", first["msg"]) from None
        version = _schema_version(record.value)
        if version is not None and version > ROUTED_SCHEMA_VERSION:
            raise UnknownSchemaVersionError(version) from None  # a newer writer: never guess at it
        raise PoisonMessageError("invalid_routed_record", f"{where}: {first['msg']}") from None
    if routed.schema_version > ROUTED_SCHEMA_VERSION:
        raise UnknownSchemaVersionError(routed.schema_version)
    return routed


def _schema_version(value: bytes) -> int | None:
    try:
        data = json.loads(value)
    except ValueError:
        return None
    version = data.get("schema_version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


@dataclass
class _Item:
    record: Record
    routed: RoutedMessage
    keys: ThreadKeys
    participants: frozenset[str] = frozenset()  # everyone on it who joins its ticket (computed once)

    @property
    def message(self) -> InboundMessage:
        return self.routed.message


@dataclass
class _Loaded:
    """What the batch's lookups found (ticket ids as strings, as threading sees them)."""

    held: dict[str, str] = field(default_factory=dict)  # dedupe key → ticket id
    messages: dict[str, HeldMessage] = field(default_factory=dict)
    thread_indexes: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # reference → ticket id
    unclaimed_references: set[str] = field(default_factory=set)  # issued, naming no ticket yet
    sms: dict[str, str] = field(default_factory=dict)  # E.164 → latest ticket id
    holders: dict[Identity, str] = field(default_factory=dict)  # identity → resident id
    tickets: dict[str, TicketView] = field(default_factory=dict)
    ticket_residents: dict[str, str | None] = field(default_factory=dict)


@dataclass
class _Writes:
    """Rows to insert, with ticket and resident keys that may still be provisional (negative)."""

    residents: list[dict[str, Any]] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    suggested: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    new_refs: list[dict[str, Any]] = field(default_factory=list)
    claimed_refs: list[dict[str, Any]] = field(default_factory=list)
    departments: list[dict[str, Any]] = field(default_factory=list)
    participants: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    clocks: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    ticket_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    opened: list[tuple[int, _Item]] = field(default_factory=list)
    replayed: list[tuple[int, str, Routing]] = field(default_factory=list)  # held messages routed anew


@dataclass(frozen=True)
class BatchOutcome:
    applied: int = 0  # messages written into a ticket
    duplicates: int = 0  # already held: nothing changed
    ignored: int = 0  # auto-replies and bounces that thread nowhere
    dead: int = 0  # records dead-lettered
    opened: int = 0  # tickets opened


class TicketWriter:
    """Merges routed records into tickets; one instance per consumer process."""

    def __init__(self, policy: ThreadingPolicy | None = None, *,
                 periods: clock_rules.ClockPeriods | None = None,
                 on_new_ticket: NewTicketHook | None = None,
                 group_id: str = CONSUMER_GROUP) -> None:
        self.policy = policy or ThreadingPolicy()
        self.periods = periods or clock_rules.ClockPeriods()
        self.on_new_ticket = on_new_ticket
        self.group_id = group_id

    # -- offsets ------------------------------------------------------------------------------

    def stored_offsets(self, conn: Connection,
                       partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The last applied offset of each partition this group has written (absent: none)."""
        wanted = list(partitions)
        if not wanted:
            return {}
        rows = conn.execute(select(offsets_t.c.topic, offsets_t.c.partition, offsets_t.c.offset).where(
            offsets_t.c.group_id == self.group_id,
            tuple_(offsets_t.c.topic, offsets_t.c.partition).in_(wanted)))
        return {(r.topic, r.partition): r.offset for r in rows}

    def store_offsets(self, conn: Connection, records: Sequence[Record]) -> None:
        last: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            last[key] = max(last.get(key, -1), record.offset)
        if not last:
            return
        rows = [{"group_id": self.group_id, "topic": t, "partition": p, "offset": o, "updated_at": utcnow()}
                for (t, p), o in last.items()]
        if conn.dialect.name == "postgresql":
            stmt: Any = postgresql.insert(offsets_t)
            offset_value: Any = func.greatest(stmt.excluded.offset, offsets_t.c.offset)
        else:
            stmt = sqlite.insert(offsets_t)
            offset_value = func.max(stmt.excluded.offset, offsets_t.c.offset)
        # Never backwards: a consumer that lost the partition to a rebalance mid-batch may
        # commit after its successor; the larger offset stands.
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["group_id", "topic", "partition"],
            set_={"offset": offset_value, "updated_at": stmt.excluded.updated_at}), rows)

    # -- the batch ----------------------------------------------------------------------------

    def write_batch(self, conn: Connection, records: Sequence[Record], dead_letter: DeadLetter, *,
                    skip: frozenset[tuple[str, int, int]] = frozenset(),
                    now: datetime | None = None) -> BatchOutcome:
        """Apply ``records`` in the caller's transaction; dead-letter what cannot be read.

        Records in ``skip`` (already dead-lettered by the loop) only advance the offsets.
        ``now`` fixes the clock threading compares windows with (default: each message's
        arrival, so a replay decides as the live run did).
        """
        items: list[_Item] = []
        dead = 0
        seen: set[str] = set()
        duplicates = 0
        for record in records:
            if (record.topic, record.partition, record.offset) in skip:
                continue
            try:
                routed = decode_routed(record)
            except PoisonMessageError as exc:
                dead_letter(record, exc)
                dead += 1
                continue
            if routed.message.dedupe_key in seen:
                duplicates += 1  # the same message twice in one batch (two department topics)
                continue
            seen.add(routed.message.dedupe_key)
            items.append(_Item(record, routed, thread_keys(routed.message, self.policy),
                               participants_of(routed.message, self.policy)))
        loaded = self._load(conn, items)
        writes = _Writes()
        outcome = self._decide_all(items, loaded, writes, now)
        self._flush(conn, writes)
        for ticket_id, item in writes.opened:
            if self.on_new_ticket is not None:
                row = next(t for t in writes.tickets if t["id"] == ticket_id)
                self.on_new_ticket(conn, NewTicket(ticket_id, row["reference"], row["resident_id"],
                                                   row["primary_department"]), item.message)
        self.store_offsets(conn, records)
        return BatchOutcome(applied=outcome.applied, duplicates=outcome.duplicates + duplicates,
                            ignored=outcome.ignored, dead=dead, opened=outcome.opened)

    # -- loading ------------------------------------------------------------------------------

    def _load(self, conn: Connection, items: list[_Item]) -> _Loaded:
        loaded = _Loaded()
        if not items:
            return loaded
        m = messages_t.c
        dedupe = [i.message.dedupe_key for i in items]
        for row in conn.execute(select(m.dedupe_key, m.ticket_id).where(m.dedupe_key.in_(dedupe))):
            loaded.held[row.dedupe_key] = str(row.ticket_id)
        header_ids = {mid for i in items for _, mid in i.keys.header_ids}
        if header_ids:
            for row in conn.execute(select(m.email_message_id, m.ticket_id)
                                    .where(m.email_message_id.in_(header_ids))):
                loaded.messages.setdefault(row.email_message_id, HeldMessage(row.email_message_id,
                                                                             str(row.ticket_id)))
            self._load_outbox_ids(conn, header_ids, loaded)
        indexes = {i.keys.thread_index for i in items if i.keys.thread_index}
        if indexes:
            for row in conn.execute(select(m.thread_index, m.ticket_id).where(m.thread_index.in_(indexes))
                                    .order_by(m.id)):
                loaded.thread_indexes.setdefault(row.thread_index, str(row.ticket_id))
        quoted = {r for i in items for r in i.keys.references}
        own = {ref for i in items if (ref := _own_reference(i.message))}
        if quoted | own:
            for row in conn.execute(select(refs_t.c.reference, refs_t.c.ticket_id)
                                    .where(refs_t.c.reference.in_(quoted | own))):
                if row.ticket_id is not None:
                    loaded.references[row.reference] = str(row.ticket_id)
                else:
                    loaded.unclaimed_references.add(row.reference)
        numbers = {i.keys.sms_number for i in items if i.keys.sms_number}
        if numbers:
            p = participants_t.c
            for row in conn.execute(select(p.value, func.max(p.ticket_id).label("ticket_id"))
                                    .where(p.kind == "phone", p.value.in_(numbers)).group_by(p.value)):
                loaded.sms[row.value] = str(row.ticket_id)
        identities = {ident for i in items for ident in i.keys.sender}
        if identities:
            self._load_holders(conn, identities, loaded)
        wanted = set(loaded.held.values()) | {h.ticket_id for h in loaded.messages.values()} \
            | set(loaded.thread_indexes.values()) | set(loaded.references.values()) | set(loaded.sms.values())
        self._load_tickets(conn, wanted, loaded)
        return loaded

    def _load_outbox_ids(self, conn: Connection, header_ids: set[str], loaded: _Loaded) -> None:
        """Replies to our own acknowledgements and replies thread by the Message-ID we chose."""
        try:
            from tickets.outbox import outbox
        except ImportError:  # pragma: no cover - the outbox arrives with the outbound work
            return
        bracketed = {f"<{mid}>": mid for mid in header_ids}
        for row in conn.execute(select(outbox.c.message_id, outbox.c.ticket_id)
                                .where(outbox.c.message_id.in_(list(bracketed) + list(header_ids)))):
            mid = bracketed.get(row.message_id, row.message_id)
            loaded.messages.setdefault(mid, HeldMessage(mid, str(row.ticket_id)))

    def _load_holders(self, conn: Connection, identities: set[Identity], loaded: _Loaded) -> None:
        i = identities_t.c
        rows = conn.execute(select(i.kind, i.value, i.resident_id)
                            .where(i.value.in_({ident.value for ident in identities})))
        found = {Identity(IdentityKind(r.kind), r.value): r.resident_id for r in rows
                 if Identity(IdentityKind(r.kind), r.value) in identities}
        survivors = self._resident_survivors(conn, set(found.values()))
        loaded.holders.update({ident: str(survivors.get(rid, rid)) for ident, rid in found.items()})

    def _resident_survivors(self, conn: Connection, ids: set[int]) -> dict[int, int]:
        """Each resident id → the resident it was merged into (itself when not merged)."""
        result = {rid: rid for rid in ids}
        pending = set(ids)
        for _ in range(16):
            if not pending:
                break
            rows = conn.execute(select(residents_t.c.id, residents_t.c.merged_into_id)
                                .where(residents_t.c.id.in_(pending),
                                       residents_t.c.merged_into_id.is_not(None)))
            step = {r.id: r.merged_into_id for r in rows}
            for rid, target in list(result.items()):
                if target in step:
                    result[rid] = step[target]
            pending = set(step.values())
        return result

    def _load_tickets(self, conn: Connection, wanted: set[str], loaded: _Loaded) -> None:
        t = tickets_t.c
        for _ in range(16):  # follow merges: every ticket a decision may land on must be loaded
            ids = {int(x) for x in wanted if x not in loaded.tickets}
            if not ids:
                return
            rows = conn.execute(select(t.id, t.reference, t.status, t.subject, t.closed_at, t.last_message_at,
                                       t.merged_into_id, t.resident_id).where(t.id.in_(ids))).all()
            participants: dict[int, set[str]] = {tid: set() for tid in ids}
            p = participants_t.c
            for prow in conn.execute(select(p.ticket_id, p.kind, p.value).where(p.ticket_id.in_(ids))):
                participants[prow.ticket_id].add(f"{prow.kind}:{prow.value}")
            resident_ids = {r.resident_id for r in rows if r.resident_id is not None}
            held_by: dict[int, set[str]] = {}
            if resident_ids:  # the resident is a participant by any address or number they hold
                i = identities_t.c
                for irow in conn.execute(select(i.resident_id, i.kind, i.value)
                                         .where(i.resident_id.in_(resident_ids))):
                    held_by.setdefault(irow.resident_id, set()).add(f"{irow.kind}:{irow.value}")
            wanted = set()
            for r in rows:
                keys = participants[r.id] | held_by.get(r.resident_id, set())
                loaded.tickets[str(r.id)] = TicketView(
                    id=str(r.id), reference=r.reference, status=TicketStatus(r.status),
                    participants=frozenset(keys), subject=r.subject, finished_at=aware(r.closed_at),
                    last_message_at=aware(r.last_message_at),
                    merged_into=str(r.merged_into_id) if r.merged_into_id else None)
                loaded.ticket_residents[str(r.id)] = str(r.resident_id) if r.resident_id else None
                if r.merged_into_id:
                    wanted.add(str(r.merged_into_id))

    # -- deciding -----------------------------------------------------------------------------

    def _decide_all(self, items: list[_Item], loaded: _Loaded, writes: _Writes,
                    now: datetime | None) -> BatchOutcome:
        applied = duplicates = ignored = opened = 0
        next_temp = -1
        for item in items:
            message = item.message
            context = ThreadContext(
                tickets=loaded.tickets, messages=loaded.messages, thread_indexes=loaded.thread_indexes,
                references=loaded.references,
                sms_ticket=loaded.sms.get(item.keys.sms_number) if item.keys.sms_number else None,
                duplicate_of=loaded.held.get(message.dedupe_key))
            at = now or message.received_at
            decision = decide(message, item.keys, context, self.policy, at)
            if decision.action is Action.DUPLICATE:
                duplicates += 1
                held = loaded.held.get(message.dedupe_key)
                if item.routed.routing.replayed and held is not None:
                    writes.replayed.append((int(held), message.dedupe_key, item.routed.routing))
                continue
            if decision.action is Action.IGNORE:
                ignored += 1
                log.info("tickets: %s %s: %s", message.automation.value, message.dedupe_key, decision.reason)
                continue
            if decision.action in (Action.NEW, Action.NEW_LINKED):
                ticket_id = next_temp
                next_temp -= 1
                self._open(item, decision, ticket_id, loaded, writes)
                opened += 1
            else:
                assert decision.ticket_id is not None  # noqa: S101 - decide() sets it for a join
                ticket_id = int(decision.ticket_id)
                self._join(item, decision, ticket_id, loaded, writes)
            self._remember(item, ticket_id, loaded)
            applied += 1
        return BatchOutcome(applied=applied, duplicates=duplicates, ignored=ignored, opened=opened)

    def _remember(self, item: _Item, ticket_id: int, loaded: _Loaded) -> None:
        """What later messages of the same batch must see of this one."""
        key = str(ticket_id)
        message = item.message
        loaded.held[message.dedupe_key] = key
        mid = _bare_id(message.threading.message_id)
        if mid:
            loaded.messages.setdefault(mid, HeldMessage(mid, key))
        if item.keys.thread_index:
            loaded.thread_indexes.setdefault(item.keys.thread_index, key)
        numbers = {ident.partition(":")[2] for ident in item.participants if ident.startswith("phone:")}
        for number in numbers:  # what the participants lookup will find once this commits
            current = loaded.sms.get(number)
            if current is None or _newer(key, current):
                loaded.sms[number] = key

    def _resident_for(self, item: _Item, loaded: _Loaded, writes: _Writes, temp: int) -> str | None:
        message = item.message
        resolution = resolve_identities(item.keys.sender, loaded.holders)
        if resolution.kind is ResolutionKind.NEW:
            rid = temp
            sender = message.sender
            writes.residents.append({
                "id": rid, "name": sender.name, "name_key": name_key(sender.name),
                "postcode": postcode_key(sender.postcode), "address": sender.address,
                "created_at": message.received_at, "updated_at": message.received_at})
            resident = str(rid)
        else:
            assert resolution.resident_id is not None  # noqa: S101 - set unless NEW
            resident = resolution.resident_id
        for ident in resolution.link:
            writes.identities.append({"resident_id": int(resident), "kind": ident.kind.value,
                                      "value": ident.value, "verified": False, "created_at": utcnow()})
            loaded.holders[ident] = resident
        for other in resolution.suggested_merge:
            a, b = sorted((int(resident), int(other)))
            writes.suggested.append({"resident_a_id": a, "resident_b_id": b,
                                     "reason": resolution.reason[:500], "created_at": utcnow()})
        return resident

    def _open(self, item: _Item, decision: ThreadDecision, ticket_id: int, loaded: _Loaded,
              writes: _Writes) -> None:
        message, routing = item.message, item.routed.routing
        resident = self._resident_for(item, loaded, writes, ticket_id)
        reference = _own_reference(message)
        if reference is not None and reference in loaded.references:
            reference = None  # names another ticket already (a resent form): this one gets its own
        if reference is not None and reference in loaded.unclaimed_references:
            writes.claimed_refs.append({"b_reference": reference, "ticket_id": ticket_id, "kind": "primary"})
            loaded.unclaimed_references.discard(reference)
        else:
            reference = reference or draw_reference()
            writes.new_refs.append({"reference": reference, "dedupe_key": message.dedupe_key,
                                    "issued_at": utcnow(), "ticket_id": ticket_id, "kind": "primary"})
        loaded.references[reference] = str(ticket_id)
        departments = routed_departments(routing)
        clocks = clock_rules.clocks_for(
            statutory_kind=routing.statutory_clock.kind if routing.statutory_clock else None,
            enquiry_type=routing.enquiry_type, received_on=clock_rules.today_in_england(message.received_at),
            department=routing.department, periods=self.periods)
        if routing.statutory_clock is not None:  # the router counted it: keep its due date
            clocks = [c if c.kind != routing.statutory_clock.kind else
                      clock_rules.Clock(c.kind, routing.statutory_clock.started, routing.statutory_clock.due)
                      for c in clocks]
        writes.tickets.append({
            "id": ticket_id, "reference": reference, "status": TicketStatus.NEW.value,
            "resident_id": int(resident) if resident is not None else None,
            "primary_department": routing.department, "triage": routing.triage, "assignee": None,
            "priority": routing.priority, "flags": list(routing.flags), "enquiry_type": routing.enquiry_type,
            "channel": message.channel.value, "subject": (message.subject or "")[:500] or None,
            "model_version": routing.model_version, "confidence": routing.confidence,
            "due_on": clock_rules.earliest_due(clocks), "created_at": message.received_at,
            "updated_at": message.received_at, "last_message_at": message.received_at})
        writes.opened.append((ticket_id, item))
        for department in departments:
            writes.departments.append({"ticket_id": ticket_id, "department": department,
                                       "role": "primary" if department == routing.department else "involved",
                                       "added_at": message.received_at})
        for clock in clocks:
            writes.clocks.append({"ticket_id": ticket_id, "kind": clock.kind.value,
                                  "started_on": clock.started_on, "due_on": clock.due_on,
                                  "state": clock.state.value, "paused_days": 0,
                                  "extended": False, "status_flag": clock.flag.value,
                                  "detail": {"department": clock.department} if clock.department else {}})
        participants = item.participants
        sender = {str(i) for i in item.keys.sender}
        self._add_participants(ticket_id, participants, sender, message, writes, resident_role=True)
        if decision.action is Action.NEW_LINKED and decision.linked_to is not None:
            writes.links.append({"from_ticket_id": ticket_id, "to_ticket_id": int(decision.linked_to),
                                 "kind": "follow_up", "reason": decision.reason[:500], "at": utcnow()})
        loaded.tickets[str(ticket_id)] = TicketView(
            id=str(ticket_id), reference=reference, status=TicketStatus.NEW,
            participants=frozenset(participants | sender), subject=message.subject,
            last_message_at=message.received_at)
        self._message_row(item, decision, ticket_id, writes)
        self._event(writes, ticket_id, reference, "created", {
            "channel": message.channel.value, "dedupe_key": message.dedupe_key,
            "resident_id": resident, "linked_to": decision.linked_to})
        self._event(writes, ticket_id, reference, "routed", {
            "department": routing.department, "departments": departments, "triage": routing.triage,
            "priority": routing.priority, "enquiry_type": routing.enquiry_type,
            "model_version": routing.model_version, "confidence": routing.confidence,
            "clocks": [c.kind.value for c in clocks]})
        self._event(writes, ticket_id, reference, "threaded", decision.as_dict())

    def _join(self, item: _Item, decision: ThreadDecision, ticket_id: int, loaded: _Loaded,
              writes: _Writes) -> None:
        message = item.message
        view = loaded.tickets[str(ticket_id)]
        own = _own_reference(message)
        if own is not None and own != view.reference and own not in loaded.references:
            row = {"ticket_id": ticket_id, "kind": "alias"}
            if own in loaded.unclaimed_references:
                writes.claimed_refs.append({"b_reference": own, **row})
                loaded.unclaimed_references.discard(own)
            else:
                writes.new_refs.append({"reference": own, "dedupe_key": message.dedupe_key,
                                        "issued_at": utcnow(), **row})
            loaded.references[own] = str(ticket_id)
        participants = item.participants - view.participants
        self._add_participants(ticket_id, participants, set(), message, writes, resident_role=False)
        status = decision.status_after or view.status
        update_row = writes.ticket_updates.setdefault(ticket_id, {"b_id": ticket_id})
        update_row["last_message_at"] = max(message.received_at, update_row.get("last_message_at")
                                            or message.received_at)
        update_row["updated_at"] = utcnow()
        if status != view.status:
            update_row["status"] = status.value
            self._event(writes, ticket_id, view.reference, "status_changed", {
                "from": view.status.value, "to": status.value, "reason": decision.reason,
                "dedupe_key": message.dedupe_key})
        loaded.tickets[str(ticket_id)] = TicketView(
            id=view.id, reference=view.reference, status=status,
            participants=view.participants | participants, subject=view.subject,
            finished_at=view.finished_at, last_message_at=message.received_at, merged_into=view.merged_into)
        self._message_row(item, decision, ticket_id, writes)
        self._event(writes, ticket_id, view.reference, "threaded", decision.as_dict())

    def _add_participants(self, ticket_id: int, keys: Iterable[str], sender: set[str],
                          message: InboundMessage, writes: _Writes, *, resident_role: bool) -> None:
        names = _names_by_identity(message)
        sender_name = message.sender.name[:300] if message.sender.name else None
        for key in sorted(set(keys) | sender):
            kind, _, value = key.partition(":")
            writes.participants.append({
                "ticket_id": ticket_id, "kind": kind, "value": value,
                "role": "resident" if resident_role and key in sender else "cc",
                "name": names.get(key) or (sender_name if key in sender else None),
                "added_at": message.received_at})

    def _message_row(self, item: _Item, decision: ThreadDecision, ticket_id: int, writes: _Writes) -> None:
        message, routing = item.message, item.routed.routing
        thread = message.threading
        writes.messages.append({
            "ticket_id": ticket_id, "dedupe_key": message.dedupe_key, "message_uuid": message.id,
            "direction": "in", "channel": message.channel.value, "received_at": message.received_at,
            "sender_name": message.sender.name[:300] if message.sender.name else None,
            "sender_email": _first(i.value for i in item.keys.sender if i.kind is IdentityKind.EMAIL),
            "sender_phone": _first(i.value for i in item.keys.sender if i.kind is IdentityKind.PHONE),
            "subject": (message.subject or "")[:500] or None, "body_text": message.body_text,
            "body_trimmed": message.body_trimmed, "body_html": message.body_html,
            "email_message_id": _bare_id(thread.message_id),
            "in_reply_to": (thread.in_reply_to or "")[:500] or None,
            "email_references": list(thread.references[-50:]),
            "thread_index": item.keys.thread_index, "intake_reference": _own_reference(message),
            "automation": message.automation.value,
            "attachments": [a.model_dump(mode="json") for a in message.attachments],
            "raw_sha256": message.raw.sha256 if message.raw else None,
            "body_ref_sha256": message.body_ref.sha256 if message.body_ref else None,
            "recipients": {"to": [p.model_dump(mode="json", exclude_none=True) for p in message.to],
                           "cc": [p.model_dump(mode="json", exclude_none=True) for p in message.cc],
                           "mailboxes": list(message.source.mailboxes)},
            "routing": routing.model_dump(mode="json"),
            "thread_rule": decision.rule.value,
            "thread_detail": f"{decision.evidence} {decision.reason}".strip()[:500] or None,
            "source_topic": item.record.topic, "created_at": utcnow()})

    @staticmethod
    def _event(writes: _Writes, ticket_id: int, reference: str, kind: str, detail: dict[str, Any]) -> None:
        writes.events.append({"ticket_id": ticket_id, "reference": reference, "kind": kind, "actor": "system",
                              "detail": detail, "at": utcnow(), "published_at": None})

    # -- writing ------------------------------------------------------------------------------

    def _flush(self, conn: Connection, writes: _Writes) -> None:
        residents: dict[int, int] = {}
        if writes.residents:
            rows = [{k: v for k, v in r.items() if k != "id"} for r in writes.residents]
            made = conn.execute(insert(residents_t).returning(residents_t.c.id, sort_by_parameter_order=True),
                                rows)
            residents = {r["id"]: new for r, new in zip(writes.residents, made.scalars(), strict=True)}

        def rid(value: int | None) -> int | None:
            return residents.get(value, value) if value is not None else None

        for row in (*writes.identities,):
            row["resident_id"] = rid(row["resident_id"])
        for row in writes.suggested:
            row["resident_a_id"], row["resident_b_id"] = sorted((rid(row["resident_a_id"]) or 0,
                                                                 rid(row["resident_b_id"]) or 0))
        if writes.identities:
            conn.execute(insert(identities_t), writes.identities)
        if writes.suggested:
            self._insert_suggested(conn, writes.suggested)
        tickets: dict[int, int] = {}
        if writes.tickets:
            for row in writes.tickets:
                row["resident_id"] = rid(row["resident_id"])
            rows = [{k: v for k, v in r.items() if k != "id"} for r in writes.tickets]
            made = conn.execute(insert(tickets_t).returning(tickets_t.c.id, sort_by_parameter_order=True),
                                rows)
            tickets = {r["id"]: new for r, new in zip(writes.tickets, made.scalars(), strict=True)}
            for row in writes.tickets:
                row["id"] = tickets[row["id"]]
            writes.opened = [(tickets[t], item) for t, item in writes.opened]

        def tid(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
            for row in rows:
                for column in columns:
                    row[column] = tickets.get(row[column], row[column])
            return rows

        if writes.new_refs:
            conn.execute(insert(refs_t), tid(writes.new_refs, "ticket_id"))
        if writes.claimed_refs:
            conn.execute(update(refs_t).where(refs_t.c.reference == bindparam("b_reference"))
                         .values(ticket_id=bindparam("ticket_id"), kind=bindparam("kind")),
                         tid(writes.claimed_refs, "ticket_id"))
        if writes.departments:
            conn.execute(insert(departments_t), tid(writes.departments, "ticket_id"))
        if writes.participants:
            conn.execute(insert(participants_t), _unique(tid(writes.participants, "ticket_id"),
                                                         ("ticket_id", "kind", "value")))
        if writes.messages:
            conn.execute(insert(messages_t), tid(writes.messages, "ticket_id"))
        if writes.clocks:
            conn.execute(insert(clocks_t), tid(writes.clocks, "ticket_id"))
        if writes.links:
            conn.execute(insert(links_t), _unique(tid(writes.links, "from_ticket_id", "to_ticket_id"),
                                                  ("from_ticket_id", "to_ticket_id", "kind")))
        if writes.ticket_updates:
            by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in writes.ticket_updates.values():
                row["b_id"] = tickets.get(row["b_id"], row["b_id"])
                by_shape.setdefault(tuple(sorted(row)), []).append(row)
            for shape, rows in by_shape.items():
                values: dict[str, Any] = {c: bindparam(c) for c in shape if c != "b_id"}
                conn.execute(update(tickets_t).where(tickets_t.c.id == bindparam("b_id")).values(**values),
                             rows)
        if writes.events:
            conn.execute(insert(events_t), tid(writes.events, "ticket_id"))
        if writes.replayed:
            apply_replayed(conn, writes.replayed)

    @staticmethod
    def _insert_suggested(conn: Connection, rows: list[dict[str, Any]]) -> None:
        rows = _unique(rows, ("resident_a_id", "resident_b_id"))
        stmt: Any = postgresql.insert(suggested_t) if conn.dialect.name == "postgresql" \
            else sqlite.insert(suggested_t)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["resident_a_id", "resident_b_id"]), rows)


def _own_reference(message: InboundMessage) -> str | None:
    return normalise_reference(message.reference) if message.reference else None


def _newer(candidate: str, current: str) -> bool:
    """Whether ticket ``candidate`` is newer than ``current`` (provisional ids are the newest)."""
    a, b = int(candidate), int(current)
    if (a < 0) != (b < 0):
        return a < 0
    return a < b if a < 0 else a > b


def _bare_id(message_id: str | None) -> str | None:
    """A Message-ID without its angle brackets, as threading compares them."""
    return message_id.strip().strip("<>").strip()[:500] or None if message_id else None


def _first(values: Iterable[str]) -> str | None:
    return next(iter(values), None)


def _unique(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(tuple(row[k] for k in key), row)
    return list(seen.values())


def _names_by_identity(message: InboundMessage) -> dict[str, str]:
    """Names people gave, by the identity keys participants are stored under. Cheap on purpose
    (no phone parsing: the exact forms they wrote, and the canonical email), as it runs per message."""
    names: dict[str, str] = {}
    for party in (message.sender, *message.to, *message.cc):
        if party.name:
            if party.email:
                names.setdefault(f"email:{party.email.strip().lower()}", party.name[:300])
            if party.phone:
                names.setdefault(f"phone:{party.phone}", party.name[:300])
    return names


def name_key(name: str | None) -> str | None:
    """A name as search compares it: lower case, single spaces."""
    return " ".join(name.lower().split())[:300] or None if name else None


def postcode_key(postcode: str | None) -> str | None:
    """A UK postcode as search compares it: upper case, no spaces."""
    return "".join(postcode.upper().split())[:16] or None if postcode else None
