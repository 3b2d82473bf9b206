"""Threading rules on their own: a tiny in-memory store applies each decision the way the
ticket consumer does, so every case reads as the conversation a resident would have."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from schemas.inbound import Automation, Channel, InboundMessage, Party, Source, Threading
from schemas.reference import new_reference
from tickets.status import TicketStatus
from tickets.threading import (
    Action,
    HeldMessage,
    Rule,
    ThreadContext,
    ThreadDecision,
    ThreadingPolicy,
    TicketView,
    decide,
    participants_of,
    same_subject,
    thread_index_key,
    thread_keys,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = ThreadingPolicy(reopen_window=timedelta(days=28), sms_window=timedelta(hours=72),
                         own_domains=frozenset({"council.example.gov.uk"}))
HOUSING = Party(email="housing@council.example.gov.uk")
WASTE = Party(email="waste@council.example.gov.uk")
ANNA = Party(name="Anna Resident", email="Anna.Resident@Example.org")
LANDLORD = Party(name="Letting Agent", email="lettings@agent.example.com")
STRANGER = Party(email="someone.else@example.net")


def email(sender: Party, *, mid: str, subject: str = "Damp in flat", body: str = "Hello",
          to: tuple[Party, ...] = (HOUSING,), cc: tuple[Party, ...] = (), in_reply_to: str | None = None,
          references: tuple[str, ...] = (), thread_index: str | None = None, at: datetime = T0,
          automation: Automation = Automation.NONE) -> InboundMessage:
    return InboundMessage(
        channel=Channel.EMAIL, received_at=at, sender=sender, to=list(to), cc=list(cc), subject=subject,
        body_text=body,
        threading=Threading(message_id=mid, in_reply_to=in_reply_to, references=list(references)),
        source=Source(extra={"thread_index": thread_index} if thread_index else {}),
        reference=new_reference(), automation=automation, dedupe_key=f"email:{mid}",
    )


def sms(number: str, body: str, *, sid: str, at: datetime) -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, received_at=at, sender=Party(phone=number), body_text=body,
                          reference=new_reference(), dedupe_key=f"sms:{sid}")


@dataclass
class World:
    """Tickets and messages as the repository would hold them; applies decisions like the consumer."""

    tickets: dict[str, TicketView] = field(default_factory=dict)
    messages: dict[str, HeldMessage] = field(default_factory=dict)
    dedupe: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)
    departments: dict[str, list[str]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    sms_latest: dict[str, str] = field(default_factory=dict)

    def receive(self, message: InboundMessage, department: str = "housing",
                now: datetime | None = None) -> ThreadDecision:
        keys = thread_keys(message, POLICY)
        context = ThreadContext(
            tickets=dict(self.tickets),
            messages={m: self.messages[m] for _, m in keys.header_ids if m in self.messages},
            thread_indexes={k: v for k, v in self.indexes.items() if k == keys.thread_index},
            references={r: self.aliases[r] for r in keys.references if r in self.aliases},
            sms_ticket=self.sms_latest.get(keys.sms_number or ""),
            duplicate_of=self.dedupe.get(message.dedupe_key),
        )
        decision = decide(message, keys, context, POLICY, now or message.received_at)
        if decision.action in (Action.NEW, Action.NEW_LINKED):
            ticket_id = f"t{len(self.tickets) + 1}"
            self.tickets[ticket_id] = TicketView(ticket_id, message.reference or ticket_id, TicketStatus.NEW,
                                                 participants_of(message, POLICY), subject=message.subject,
                                                 last_message_at=message.received_at)
            self.departments[ticket_id] = [department]
            if decision.linked_to:
                self.links[ticket_id] = decision.linked_to
        elif decision.action in (Action.JOIN, Action.REOPEN, Action.DUPLICATE):
            assert decision.ticket_id is not None
            ticket_id = decision.ticket_id
            old = self.tickets[ticket_id]
            self.tickets[ticket_id] = replace(
                old, participants=old.participants | participants_of(message, POLICY),
                status=decision.status_after or old.status, last_message_at=message.received_at)
            if department not in self.departments[ticket_id]:
                self.departments[ticket_id].append(department)
        else:
            return decision
        self.dedupe[message.dedupe_key] = ticket_id
        if message.reference:
            self.aliases[message.reference] = ticket_id
        if message.threading.message_id:
            self.messages[message.threading.message_id] = HeldMessage(message.threading.message_id, ticket_id)
        index = thread_index_key(message.source.extra.get("thread_index"))
        if index:
            self.indexes.setdefault(index, ticket_id)
        if message.channel is Channel.SMS and message.sender.phone:
            self.sms_latest[thread_keys(message, POLICY).sms_number or ""] = ticket_id
        return replace(decision, ticket_id=ticket_id)

    def set_status(self, ticket_id: str, status: TicketStatus, at: datetime) -> None:
        self.tickets[ticket_id] = replace(self.tickets[ticket_id], status=status, finished_at=at)

    def reference(self, ticket_id: str) -> str:
        return self.tickets[ticket_id].reference

    def send(self, ticket_id: str, mid: str, *, bulk: bool = False) -> None:
        """The council's own reply (or a bulk mailing) on a ticket: its Message-ID is held."""
        self.messages[mid] = HeldMessage(mid, ticket_id, bulk=bulk)


def test_reply_to_a_message_we_hold_joins_by_in_reply_to() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    world.send(first.ticket_id or "", "out1@council.example.gov.uk")
    reply = world.receive(email(ANNA, mid="a2@example.org", subject="RE: Damp in flat",
                                in_reply_to="<out1@council.example.gov.uk>", at=T0 + timedelta(days=1)))
    assert (reply.action, reply.rule, reply.ticket_id) == (Action.JOIN, Rule.IN_REPLY_TO, first.ticket_id)
    assert reply.evidence == "<out1@council.example.gov.uk>"
    assert world.reference(first.ticket_id or "") in reply.reason


def test_the_council_copied_in_mid_thread_then_a_reply_that_joins() -> None:
    world = World()
    # Anna and her letting agent have been writing for a week; she copies the council in.
    copied = world.receive(email(ANNA, mid="a3@example.org", subject="RE: Mould in bedroom", to=(LANDLORD,),
                                 cc=(HOUSING,), in_reply_to="<l2@agent.example.com>",
                                 references=("<a1@example.org>", "<l1@agent.example.com>",
                                             "<l2@agent.example.com>")))
    assert copied.action is Action.NEW  # none of the earlier messages is ours
    # The agent answers all: they were on the message, so they are a participant.
    answer = world.receive(email(LANDLORD, mid="l3@agent.example.com", subject="RE: Mould in bedroom",
                                 to=(ANNA,), cc=(HOUSING,), in_reply_to="<a3@example.org>",
                                 references=("<l2@agent.example.com>", "<a3@example.org>"),
                                 at=T0 + timedelta(hours=3)))
    assert (answer.action, answer.ticket_id, answer.rule) == (Action.JOIN, copied.ticket_id, Rule.IN_REPLY_TO)
    assert len(world.tickets) == 1


def test_a_stranger_quoting_someones_reference_opens_a_new_linked_ticket() -> None:
    world = World()
    anna = world.receive(email(ANNA, mid="a1@example.org"))
    ref = world.reference(anna.ticket_id or "")
    stranger = world.receive(email(STRANGER, mid="s1@example.net", subject=f"About {ref}",
                                   body=f"I am writing about case {ref}. Please tell me what she said."))
    assert stranger.action is Action.NEW_LINKED
    assert stranger.rule is Rule.REFERENCE and stranger.evidence == ref
    assert stranger.linked_to == anna.ticket_id and stranger.ticket_id != anna.ticket_id
    assert "not a participant" in stranger.reason
    assert world.tickets[anna.ticket_id or ""].participants == frozenset({"email:anna.resident@example.org"})


def test_a_stranger_replying_to_a_forwarded_mail_is_not_joined_either() -> None:
    world = World()
    anna = world.receive(email(ANNA, mid="a1@example.org"))
    forwarded = world.receive(email(STRANGER, mid="s2@example.net", subject="RE: Damp in flat",
                                    in_reply_to="<a1@example.org>"))
    assert (forwarded.action, forwarded.rule, forwarded.linked_to) == (Action.NEW_LINKED, Rule.IN_REPLY_TO,
                                                                      anna.ticket_id)


def test_one_email_to_two_department_inboxes_is_one_ticket_with_two_departments() -> None:
    world = World()
    message = email(ANNA, mid="both@example.org", to=(HOUSING, WASTE))
    first = world.receive(message, department="housing")
    second = world.receive(message, department="waste")  # the copy on frontdoor.dept.waste
    assert second.action is Action.DUPLICATE and second.ticket_id == first.ticket_id
    assert world.departments == {first.ticket_id: ["housing", "waste"]}


def test_replies_to_a_bulk_email_from_different_people_are_separate_tickets() -> None:
    world = World()
    notice = world.receive(email(ANNA, mid="seed@example.org", subject="Bin collection changes"))
    world.send(notice.ticket_id or "", "bulk1@council.example.gov.uk", bulk=True)
    people = [Party(email=f"resident{i}@example.org") for i in range(3)]
    replies = [world.receive(email(p, mid=f"r{i}@example.org", subject="RE: Bin collection changes",
                                   in_reply_to="<bulk1@council.example.gov.uk>"))
               for i, p in enumerate(people)]
    assert {r.action for r in replies} == {Action.NEW_LINKED}
    assert len({r.ticket_id for r in replies}) == 3
    assert "bulk" in replies[0].reason
    # Each one's follow-up lands in their own ticket, not the bulk one nor a neighbour's.
    follow = world.receive(email(people[1], mid="r1b@example.org", subject="RE: Bin collection changes",
                                 in_reply_to="<r1@example.org>",
                                 references=("<bulk1@council.example.gov.uk>", "<r1@example.org>")))
    assert (follow.action, follow.ticket_id) == (Action.JOIN, replies[1].ticket_id)


def test_references_stripped_but_the_reference_in_the_subject_still_threads() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    ref = world.reference(first.ticket_id or "")
    # A helpdesk in between rewrote the mail: new Message-ID, no In-Reply-To, no References.
    again = world.receive(email(ANNA, mid="rewritten@helpdesk.example", subject=f"RE: Damp in flat [{ref}]",
                                at=T0 + timedelta(days=2)))
    assert (again.action, again.rule, again.ticket_id, again.evidence) == (Action.JOIN, Rule.REFERENCE,
                                                                          first.ticket_id, ref)


def test_a_reference_typed_in_lower_case_with_spaces_threads() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    ref = world.reference(first.ticket_id or "")
    typed = ref.lower().replace("-", " ")
    again = world.receive(email(ANNA, mid="a9@example.org", subject="still damp", body=f"my ref is {typed}"))
    assert (again.action, again.ticket_id) == (Action.JOIN, first.ticket_id)


def test_any_alias_reference_threads() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    world.send(first.ticket_id or "", "out1@council.example.gov.uk")
    second = email(ANNA, mid="a2@example.org", in_reply_to="<out1@council.example.gov.uk>")
    world.receive(second)  # joins: its own intake reference becomes an alias
    assert second.reference is not None
    third = world.receive(email(ANNA, mid="a3@example.org", subject=f"Ref {second.reference}"))
    assert (third.action, third.ticket_id) == (Action.JOIN, first.ticket_id)


def test_outlook_thread_index_threads_when_headers_were_rewritten() -> None:
    world = World()
    conversation = bytes(range(22))
    first = world.receive(email(ANNA, mid="a1@example.org",
                                thread_index=base64.b64encode(conversation).decode()))
    reply_index = base64.b64encode(conversation + b"\x00\x01\x02\x03\x04").decode()
    reply = world.receive(email(ANNA, mid="gw1@gateway.example", subject="Damp", thread_index=reply_index))
    assert (reply.action, reply.rule, reply.ticket_id) == (Action.JOIN, Rule.THREAD_INDEX, first.ticket_id)
    assert reply.evidence == conversation.hex()
    # The same conversation from someone who is not on it: linked, not joined.
    other = world.receive(email(STRANGER, mid="gw2@gateway.example", thread_index=reply_index))
    assert (other.action, other.linked_to) == (Action.NEW_LINKED, first.ticket_id)


def test_thread_index_key_refuses_what_is_not_one() -> None:
    assert thread_index_key("not base64 at all!") is None
    assert thread_index_key(base64.b64encode(b"short").decode()) is None
    assert thread_index_key(None) is None


def test_headers_come_before_the_thread_index_and_the_reference() -> None:
    world = World()
    one = world.receive(email(ANNA, mid="a1@example.org"))
    two = world.receive(email(ANNA, mid="a2@example.org", subject="Parking permit"), department="parking")
    ref_one = world.reference(one.ticket_id or "")
    reply = world.receive(email(ANNA, mid="a3@example.org", subject=f"RE: Parking permit ({ref_one})",
                                in_reply_to="<a2@example.org>"))
    assert (reply.action, reply.rule, reply.ticket_id) == (Action.JOIN, Rule.IN_REPLY_TO, two.ticket_id)


def test_reply_within_the_reopen_window_reopens() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    world.set_status(first.ticket_id or "", TicketStatus.CLOSED, T0 + timedelta(days=1))
    reply = world.receive(email(ANNA, mid="a2@example.org", subject="RE: Damp in flat",
                                in_reply_to="<a1@example.org>", at=T0 + timedelta(days=20)))
    assert (reply.action, reply.ticket_id, reply.status_after) == (Action.REOPEN, first.ticket_id,
                                                                   TicketStatus.REOPENED)


def test_reply_after_the_reopen_window_opens_a_new_linked_ticket() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    world.set_status(first.ticket_id or "", TicketStatus.CLOSED, T0 + timedelta(days=1))
    late = world.receive(email(ANNA, mid="a2@example.org", subject="RE: Damp in flat",
                               in_reply_to="<a1@example.org>", at=T0 + timedelta(days=60)))
    assert (late.action, late.linked_to) == (Action.NEW_LINKED, first.ticket_id)
    assert "reopen window" in late.reason
    assert world.tickets[first.ticket_id or ""].status is TicketStatus.CLOSED


def test_a_reply_with_a_new_subject_after_the_ticket_closed_opens_a_new_linked_ticket() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    world.set_status(first.ticket_id or "", TicketStatus.CLOSED, T0 + timedelta(days=1))
    new_matter = world.receive(email(ANNA, mid="a2@example.org", subject="Noise from next door",
                                     in_reply_to="<a1@example.org>", at=T0 + timedelta(days=3)))
    assert (new_matter.action, new_matter.linked_to) == (Action.NEW_LINKED, first.ticket_id)
    assert "new subject" in new_matter.reason


def test_a_reply_to_an_open_ticket_under_a_new_subject_still_joins() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    reply = world.receive(email(ANNA, mid="a2@example.org", subject="photos", in_reply_to="<a1@example.org>"))
    assert (reply.action, reply.ticket_id) == (Action.JOIN, first.ticket_id)


def test_the_residents_reply_to_an_awaiting_ticket_opens_it() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    world.set_status(first.ticket_id or "", TicketStatus.AWAITING_RESIDENT, T0)
    reply = world.receive(email(ANNA, mid="a2@example.org", in_reply_to="<a1@example.org>"))
    assert reply.status_after is TicketStatus.OPEN


def test_all_sms_from_one_number_forever() -> None:
    world = World()
    number = "07700 900123"
    first = world.receive(sms(number, "Bins not collected on Elm Road", sid="SM1", at=T0))
    second = world.receive(sms("+447700900123", "Still not collected", sid="SM2",
                               at=T0 + timedelta(hours=30)))
    assert (second.action, second.rule, second.ticket_id) == (Action.JOIN, Rule.SMS_WINDOW, first.ticket_id)
    assert second.evidence == "+447700900123"
    world.set_status(first.ticket_id or "", TicketStatus.CLOSED, T0 + timedelta(hours=40))
    # The next text, even minutes later, is a new enquiry: a closed ticket starts a new one.
    third = world.receive(sms(number, "Streetlight out on Oak Lane", sid="SM3", at=T0 + timedelta(hours=41)))
    assert (third.action, third.linked_to) == (Action.NEW_LINKED, first.ticket_id)
    fourth = world.receive(sms(number, "It is by number 12", sid="SM4", at=T0 + timedelta(hours=42)))
    assert (fourth.action, fourth.ticket_id) == (Action.JOIN, third.ticket_id)
    # Silence beyond the window: a new ticket again, linked to the last one.
    fifth = world.receive(sms(number, "Pothole", sid="SM5", at=T0 + timedelta(days=30)))
    assert (fifth.action, fifth.linked_to) == (Action.NEW_LINKED, third.ticket_id)
    assert "quiet" in fifth.reason


def test_an_sms_quoting_its_reference_joins_even_outside_the_window() -> None:
    world = World()
    first = world.receive(sms("07700900123", "Bins", sid="SM1", at=T0))
    ref = world.reference(first.ticket_id or "")
    later = world.receive(sms("07700900123", f"Re {ref} still waiting", sid="SM2",
                              at=T0 + timedelta(days=10)))
    assert (later.action, later.rule, later.ticket_id) == (Action.JOIN, Rule.REFERENCE, first.ticket_id)


def test_mail_to_a_merged_ticket_lands_in_the_one_it_was_merged_into() -> None:
    world = World()
    kept = world.receive(email(ANNA, mid="a1@example.org"))
    gone = world.receive(email(ANNA, mid="a2@example.org", subject="Damp again"))
    assert gone.ticket_id != kept.ticket_id
    gone_id = gone.ticket_id or ""
    world.tickets[gone_id] = replace(world.tickets[gone_id], status=TicketStatus.MERGED,
                                     merged_into=kept.ticket_id)
    reply = world.receive(email(ANNA, mid="a3@example.org", subject="RE: Damp again",
                                in_reply_to="<a2@example.org>"))
    assert (reply.action, reply.ticket_id) == (Action.JOIN, kept.ticket_id)
    assert "merged into" in reply.reason


def test_an_auto_reply_never_opens_or_reopens_a_ticket() -> None:
    world = World()
    first = world.receive(email(ANNA, mid="a1@example.org"))
    world.set_status(first.ticket_id or "", TicketStatus.CLOSED, T0)
    ooo = world.receive(email(ANNA, mid="ooo@example.org", subject="Out of office",
                              in_reply_to="<a1@example.org>", automation=Automation.AUTO_REPLY))
    assert (ooo.action, ooo.ticket_id) == (Action.JOIN, first.ticket_id)
    assert ooo.status_after is TicketStatus.CLOSED
    stray = world.receive(email(STRANGER, mid="ooo2@example.net", subject="Automatic reply",
                                automation=Automation.AUTO_REPLY))
    assert stray.action is Action.IGNORE


def test_council_addresses_are_never_participants() -> None:
    message = email(ANNA, mid="a1@example.org", to=(HOUSING,), cc=(Party(email="cllr@Council.Example.gov.uk"),
                                                                   LANDLORD))
    assert participants_of(message, POLICY) == frozenset({"email:anna.resident@example.org",
                                                         "email:lettings@agent.example.com"})


@pytest.mark.parametrize(("a", "b", "same"), [
    ("Damp in flat", "RE: Fwd: damp in flat!", True),
    ("Damp in flat", "[FD-ABCD-EFGH] Re: Damp in flat", True),
    ("Damp in flat", "Noise from next door", False),
    ("Damp in flat", "", True),
])
def test_subjects_compare_without_prefixes(a: str, b: str, same: bool) -> None:
    assert same_subject(a, b) is same
