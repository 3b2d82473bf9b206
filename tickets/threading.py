"""Which ticket a message belongs to: threading as a pure function over what the repository loads.

The consumer asks :func:`thread_keys` what to look up for a message, the repository loads those
tickets and messages into a :class:`ThreadContext`, and :func:`decide` answers with a
:class:`ThreadDecision` that says what to do and why (the rule, the header or reference that
decided it), for the console to show. Nothing here touches the database, so every rule is
tested on its own and the same code serves SQLite and PostgreSQL.

The rules, in order:

1. ``In-Reply-To``, then ``References`` (newest first): a message we hold.
2. Outlook's ``Thread-Index`` (its first 22 bytes name the conversation), for mail whose
   headers a gateway rewrote. The email parser keeps it in ``source.extra["thread_index"]``.
3. A Frontdoor reference (any alias) in the subject or body, or the one the channel recorded.
4. SMS: the number's latest ticket, while it is still active and the last message on it is
   within the SMS window.

Each candidate is accepted only when the sender is already a participant of that ticket (the
resident, or someone copied in on a message of it), so no one writes into a stranger's case by
quoting a reference or replying to a forwarded mail: the message then opens a new ticket linked
to the one it mentions. A reply to a bulk mailing is its own enquiry. A finished (resolved or
closed) ticket reopens on a reply within the reopen window; later, or under a new subject, the
reply opens a new ticket linked to it. A merged ticket forwards to the one it was merged into.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.inbound import Automation, Channel, InboundMessage, Party
from schemas.reference import find_references, normalise_reference
from tickets.identity import DEFAULT_REGION, Identity, identities_of, normalise_email
from tickets.status import ACTIVE, FINISHED, TicketStatus, on_resident_reply

MAX_MERGE_HOPS = 16  # a merge chain longer than this is a bug; stop rather than loop
THREAD_INDEX_HEADER_BYTES = 22  # FILETIME (6) + conversation GUID (16); replies append 5 each


class Action(StrEnum):
    DUPLICATE = "duplicate"  # already held (another department's copy, a replay): nothing new
    JOIN = "join"  # add to the ticket
    REOPEN = "reopen"  # add to the ticket and reopen it
    NEW = "new"  # a new ticket
    NEW_LINKED = "new_linked"  # a new ticket linked to the one it mentions
    IGNORE = "ignore"  # an auto-reply or bounce that threads nowhere: never opens a ticket


class Rule(StrEnum):
    DUPLICATE = "duplicate"
    IN_REPLY_TO = "in_reply_to"
    REFERENCES = "references"
    THREAD_INDEX = "thread_index"
    REFERENCE = "reference"
    SMS_WINDOW = "sms_window"
    NONE = "none"


@dataclass(frozen=True)
class ThreadingPolicy:
    """Windows and the council's own addresses (never a participant), from settings."""

    reopen_window: timedelta = timedelta(days=28)
    sms_window: timedelta = timedelta(hours=72)
    own_domains: frozenset[str] = frozenset()  # e.g. council.example.gov.uk and its subdomains
    own_addresses: frozenset[str] = frozenset()  # department inboxes on other domains
    region: str = DEFAULT_REGION

    def is_own(self, email: str | None) -> bool:
        address = normalise_email(email)
        if address is None:
            return False
        if address in self.own_addresses:
            return True
        domain = address.rpartition("@")[2]
        return any(domain == d or domain.endswith("." + d) for d in self.own_domains)


@dataclass(frozen=True)
class TicketView:
    """What threading needs to know of one ticket."""

    id: str
    reference: str
    status: TicketStatus
    participants: frozenset[str]  # identity keys (``email:…``, ``phone:…``)
    subject: str | None = None
    finished_at: datetime | None = None  # when it was last resolved or closed
    last_message_at: datetime | None = None
    merged_into: str | None = None  # ticket id, when status is merged


@dataclass(frozen=True)
class HeldMessage:
    """A message we hold, found by its Message-ID (inbound or one we sent)."""

    message_id: str
    ticket_id: str
    bulk: bool = False  # a mailing to many: replying to it is no claim on its ticket


@dataclass(frozen=True)
class ThreadKeys:
    """What the repository must load for one message (all already canonical)."""

    header_ids: tuple[tuple[Rule, str], ...]  # In-Reply-To first, then References newest first
    thread_index: str | None
    references: tuple[str, ...]
    sms_number: str | None
    sender: tuple[Identity, ...]


@dataclass(frozen=True)
class ThreadContext:
    """What the repository loaded for :class:`ThreadKeys`: only hits, nothing else.

    ``duplicate_of`` is the ticket already holding a message with this dedupe key;
    ``sms_ticket`` the latest ticket whose resident or participants hold the SMS number.
    Every ticket id mentioned must be in ``tickets`` (merge targets included).
    """

    tickets: Mapping[str, TicketView] = field(default_factory=dict)
    messages: Mapping[str, HeldMessage] = field(default_factory=dict)
    thread_indexes: Mapping[str, str] = field(default_factory=dict)  # conversation key → ticket id
    references: Mapping[str, str] = field(default_factory=dict)  # reference or alias → ticket id
    sms_ticket: str | None = None
    duplicate_of: str | None = None


@dataclass(frozen=True)
class ThreadDecision:
    """What to do with a message, and why (shown in the console and kept in the audit)."""

    action: Action
    rule: Rule
    ticket_id: str | None = None  # the ticket joined, reopened or already holding it
    linked_to: str | None = None  # for a new linked ticket: the ticket it mentions
    evidence: str = ""  # the header value, conversation key or reference that decided
    reason: str = ""
    status_after: TicketStatus | None = None  # the ticket's status after a join or reopen

    def as_dict(self) -> dict[str, str | None]:
        return {"action": self.action.value, "rule": self.rule.value, "ticket_id": self.ticket_id,
                "linked_to": self.linked_to, "evidence": self.evidence, "reason": self.reason,
                "status_after": self.status_after.value if self.status_after else None}


def thread_index_key(value: str | None) -> str | None:
    """The conversation an Outlook ``Thread-Index`` names (its 22-byte header, hex), or None."""
    if not value:
        return None
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < THREAD_INDEX_HEADER_BYTES:
        return None
    return raw[:THREAD_INDEX_HEADER_BYTES].hex()


def _thread_index_of(message: InboundMessage) -> str | None:
    extra = message.source.extra
    return extra.get("thread_index") or extra.get("Thread-Index")


def _message_id(value: str) -> str:
    return value.strip().strip("<>").strip()


def sender_identities(message: InboundMessage, policy: ThreadingPolicy) -> tuple[Identity, ...]:
    """The sender's identities (the channel's own first: the number for SMS, the address for mail)."""
    found = identities_of(message.sender.email, message.sender.phone, policy.region)
    if message.channel is Channel.SMS:
        found = tuple(sorted(found, key=lambda i: i.kind != "phone"))
    return found


def participants_of(message: InboundMessage, policy: ThreadingPolicy) -> frozenset[str]:
    """Everyone on a message who becomes a participant of its ticket: the sender and those it
    was sent or copied to, except the council's own addresses. A bulk mailing makes only its
    sender one: its many recipients have no claim on the ticket by having been sent it."""
    keys: set[str] = set()
    parties: Iterable[Party] = (message.sender,) if message.automation is Automation.BULK \
        else (message.sender, *message.to, *message.cc)
    for party in parties:
        if policy.is_own(party.email):
            continue
        keys.update(str(i) for i in identities_of(party.email, party.phone, policy.region))
    return frozenset(keys)


def thread_keys(message: InboundMessage, policy: ThreadingPolicy) -> ThreadKeys:
    header_ids: list[tuple[Rule, str]] = []
    seen: set[str] = set()
    own_id = _message_id(message.threading.message_id) if message.threading.message_id else None
    candidates: list[tuple[Rule, str]] = []
    if message.threading.in_reply_to:
        candidates.append((Rule.IN_REPLY_TO, message.threading.in_reply_to))
    candidates += [(Rule.REFERENCES, r) for r in reversed(message.threading.references)]
    for rule, raw in candidates:
        mid = _message_id(raw)
        if mid and mid not in seen and mid != own_id:
            seen.add(mid)
            header_ids.append((rule, mid))

    references: list[str] = []
    quoted = [message.threading.reference or "",
              *find_references(f"{message.subject or ''}\n{message.body_text}")]
    own_reference = normalise_reference(message.reference) if message.reference else None
    for raw in quoted:
        ref = normalise_reference(raw) if raw else None
        if ref and ref != own_reference and ref not in references:
            references.append(ref)

    sender = sender_identities(message, policy)
    sms_number = next((i.value for i in sender if i.kind == "phone"), None) \
        if message.channel is Channel.SMS else None
    return ThreadKeys(header_ids=tuple(header_ids),
                      thread_index=thread_index_key(_thread_index_of(message)),
                      references=tuple(references), sms_number=sms_number, sender=sender)


_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|vs|antw|wg|tr|rif)\s*(\[\d+\])?\s*:\s*|\[[^\]]*\]\s*)+", re.I)
_REFERENCE_TEXT = re.compile(r"\bFD[-\s]?[0-9A-Z]{4}[-\s]?[0-9A-Z]{4}\b", re.I)
_NOT_WORD = re.compile(r"[^\w]+")


def subject_key(subject: str | None) -> str:
    """A subject without reply prefixes, tags, references, case or punctuation."""
    text = _PREFIX.sub("", subject or "")
    text = _REFERENCE_TEXT.sub(" ", text)
    text = re.sub(r"\b(your )?(reference|ref)\b", " ", text, flags=re.I)
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def same_subject(a: str | None, b: str | None) -> bool:
    """Whether a reply's subject still names the ticket's matter (unknown counts as the same)."""
    ka, kb = subject_key(a), subject_key(b)
    return not ka or not kb or ka == kb or ka in kb or kb in ka


@dataclass(frozen=True)
class _Candidate:
    rule: Rule
    evidence: str
    ticket_id: str
    refused: str = ""  # why this candidate cannot take the message, before participants


def decide(message: InboundMessage, keys: ThreadKeys, context: ThreadContext,
           policy: ThreadingPolicy, now: datetime) -> ThreadDecision:
    """The threading decision for ``message`` given what the repository loaded for ``keys``."""
    if context.duplicate_of is not None:
        ticket = _survivor(context, context.duplicate_of)[0]
        return ThreadDecision(Action.DUPLICATE, Rule.DUPLICATE, ticket_id=ticket.id,
                              evidence=message.dedupe_key, reason="already held: another copy of it")

    automated = message.automation is not Automation.NONE
    sender = {str(i) for i in keys.sender}
    first_refusal: tuple[_Candidate, str] | None = None
    for candidate in _candidates(keys, context):
        ticket, hops = _survivor(context, candidate.ticket_id)
        via = f" (merged into {ticket.reference})" if hops else ""
        refusal = candidate.refused
        known = ticket.participants | context.tickets[candidate.ticket_id].participants
        if not refusal and not sender & known:
            refusal = f"the sender is not a participant of {ticket.reference}"
        if refusal:
            first_refusal = first_refusal or (candidate, refusal)
            continue
        return _join(message, candidate, ticket, via, automated, policy, now)

    if first_refusal is not None:
        candidate, refusal = first_refusal
        if automated:
            return ThreadDecision(Action.IGNORE, candidate.rule, evidence=candidate.evidence,
                                  reason=f"{message.automation.value}: {refusal}; never opens a ticket")
        linked = _survivor(context, candidate.ticket_id)[0]
        return ThreadDecision(Action.NEW_LINKED, candidate.rule, linked_to=linked.id,
                              evidence=candidate.evidence,
                              reason=f"{refusal}: a new ticket linked to {linked.reference}")

    sms = _sms_decision(message, keys, context, policy, now)
    if sms is not None:
        return sms
    if automated:
        return ThreadDecision(Action.IGNORE, Rule.NONE,
                              reason=f"{message.automation.value} that threads nowhere: never opens a ticket")
    return ThreadDecision(Action.NEW, Rule.NONE, reason="no header, conversation or reference we hold")


def _candidates(keys: ThreadKeys, context: ThreadContext) -> Iterable[_Candidate]:
    for rule, mid in keys.header_ids:
        held = context.messages.get(mid)
        if held is not None:
            refused = "a reply to a bulk mailing is an enquiry of its own" if held.bulk else ""
            yield _Candidate(rule, f"<{mid}>", held.ticket_id, refused)
    if keys.thread_index and keys.thread_index in context.thread_indexes:
        yield _Candidate(Rule.THREAD_INDEX, keys.thread_index, context.thread_indexes[keys.thread_index])
    for ref in keys.references:
        if ref in context.references:
            yield _Candidate(Rule.REFERENCE, ref, context.references[ref])


def _survivor(context: ThreadContext, ticket_id: str) -> tuple[TicketView, int]:
    """The ticket that holds ``ticket_id``'s conversation now (itself unless merged), and how
    many merges led there."""
    ticket = context.tickets[ticket_id]
    hops = 0
    while ticket.status is TicketStatus.MERGED and ticket.merged_into and hops < MAX_MERGE_HOPS:
        ticket = context.tickets[ticket.merged_into]
        hops += 1
    return ticket, hops


def _join(message: InboundMessage, candidate: _Candidate, ticket: TicketView, via: str,
          automated: bool, policy: ThreadingPolicy, now: datetime) -> ThreadDecision:
    found = f"{candidate.rule.value} {candidate.evidence} names {ticket.reference}{via}"
    if ticket.status in FINISHED and not automated:
        age = now - ticket.finished_at if ticket.finished_at else timedelta(0)
        if age > policy.reopen_window:
            return ThreadDecision(
                Action.NEW_LINKED, candidate.rule, linked_to=ticket.id, evidence=candidate.evidence,
                reason=f"{found}, {ticket.status} {age.days} days ago (reopen window "
                       f"{policy.reopen_window.days} days): a new ticket linked to it")
        if message.channel is Channel.EMAIL and not same_subject(message.subject, ticket.subject):
            return ThreadDecision(
                Action.NEW_LINKED, candidate.rule, linked_to=ticket.id, evidence=candidate.evidence,
                reason=f"{found}, {ticket.status}, and the reply has a new subject: "
                       "a new ticket linked to it")
        return ThreadDecision(Action.REOPEN, candidate.rule, ticket_id=ticket.id, evidence=candidate.evidence,
                              reason=f"{found}: reopened", status_after=TicketStatus.REOPENED)
    status = ticket.status if automated else on_resident_reply(ticket.status)
    return ThreadDecision(Action.JOIN, candidate.rule, ticket_id=ticket.id, evidence=candidate.evidence,
                          reason=found, status_after=status)


def _sms_decision(message: InboundMessage, keys: ThreadKeys, context: ThreadContext,
                  policy: ThreadingPolicy, now: datetime) -> ThreadDecision | None:
    if keys.sms_number is None or context.sms_ticket is None:
        return None
    ticket, _ = _survivor(context, context.sms_ticket)
    number = keys.sms_number
    if ticket.status not in ACTIVE:
        return ThreadDecision(Action.NEW_LINKED, Rule.SMS_WINDOW, linked_to=ticket.id, evidence=number,
                              reason=f"{number}'s latest ticket {ticket.reference} is {ticket.status}: "
                                     "a new ticket linked to it")
    quiet = now - ticket.last_message_at if ticket.last_message_at else timedelta(0)
    if quiet > policy.sms_window:
        hours, window = int(quiet.total_seconds() // 3600), int(policy.sms_window.total_seconds() // 3600)
        return ThreadDecision(Action.NEW_LINKED, Rule.SMS_WINDOW, linked_to=ticket.id, evidence=number,
                              reason=f"{number}'s ticket {ticket.reference} quiet for {hours} h "
                                     f"(window {window} h): a new ticket linked to it")
    return ThreadDecision(Action.JOIN, Rule.SMS_WINDOW, ticket_id=ticket.id, evidence=number,
                          reason=f"{number}'s open ticket {ticket.reference}, within the SMS window",
                          status_after=on_resident_reply(ticket.status))
