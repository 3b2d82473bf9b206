"""The threading cases other helpdesks get wrong, through the ticket stage's real batch writer
on SQLite and PostgreSQL: what an agent would see in the tickets tables afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ingest.bus import Record
from schemas.inbound import Automation, Channel, InboundMessage, Party, Source, Threading
from schemas.reference import new_reference
from tests.tickets.factory import T0, email, record, routed, sms
from tickets.db import make_engine
from tickets.merging import merge_tickets
from tickets.models import Ticket, TicketDepartment, TicketLink, TicketMessage, TicketParticipant
from tickets.service import TicketWriter
from tickets.threading import ThreadingPolicy

POLICY = ThreadingPolicy(reopen_window=timedelta(days=28), sms_window=timedelta(hours=72),
                         own_domains=frozenset({"council.gov.uk"}))
HOUSING = "housing@council.gov.uk"


@pytest.fixture
def engine(upgraded_url: str) -> Iterator[Engine]:
    engine = make_engine(upgraded_url, immediate=True)
    yield engine
    engine.dispose()


def deliver(engine: Engine, *messages: InboundMessage, department: str = "housing") -> None:
    records: list[Record] = [record(routed(m, department), topic=f"frontdoor.dept.{department}")
                             for m in messages]
    with engine.begin() as conn:
        TicketWriter(POLICY).write_batch(conn, records, lambda r, exc: pytest.fail(f"dead letter: {exc}"))


def ticket_of(engine: Engine, dedupe_key: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(TicketMessage.ticket_id).where(TicketMessage.dedupe_key == dedupe_key)) \
            .scalar_one()


def rule_of(engine: Engine, dedupe_key: str) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(select(TicketMessage.thread_rule, TicketMessage.thread_detail)
                           .where(TicketMessage.dedupe_key == dedupe_key)).one()
        return row.thread_rule, row.thread_detail


def links(engine: Engine) -> set[tuple[int, int]]:
    with engine.connect() as conn:
        return {(r.from_ticket_id, r.to_ticket_id) for r in conn.execute(select(TicketLink))}


def reference_of(engine: Engine, ticket_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(Ticket.reference).where(Ticket.id == ticket_id)).scalar_one()


def close(engine: Engine, ticket_id: int, days_ago_of: timedelta) -> None:
    with engine.begin() as conn:
        conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(status="closed",
                                                                         closed_at=T0 + days_ago_of))


def test_the_council_copied_in_mid_thread_then_a_reply_that_joins(engine: Engine) -> None:
    # Anna and her letting agent wrote for a week; then she copies the housing team in.
    copied = email("anna@example.org", "RE: Mould in the bedroom", "Copying in the council.",
                   message_id="<a3@example.org>", in_reply_to="<l2@agent.example.com>",
                   references=["<a1@example.org>", "<l1@agent.example.com>", "<l2@agent.example.com>"],
                   cc=[HOUSING, "lettings@agent.example.com"])
    deliver(engine, copied)
    answer = email("lettings@agent.example.com", "RE: Mould in the bedroom", "We will send someone.",
                   message_id="<l3@agent.example.com>", in_reply_to="<a3@example.org>",
                   references=["<l2@agent.example.com>", "<a3@example.org>"],
                   cc=[HOUSING, "anna@example.org"],
                   at=T0 + timedelta(hours=3))
    deliver(engine, answer)
    assert ticket_of(engine, answer.dedupe_key) == ticket_of(engine, copied.dedupe_key)
    assert rule_of(engine, answer.dedupe_key)[0] == "in_reply_to"
    with engine.connect() as conn:
        assert len(conn.execute(select(Ticket)).all()) == 1
        people = set(conn.execute(select(TicketParticipant.value)).scalars())
    assert people == {"anna@example.org", "lettings@agent.example.com"}  # the council is not one


def test_a_stranger_quoting_someones_reference_gets_a_new_linked_ticket(engine: Engine) -> None:
    first = email("anna@example.org", "Damp in flat", "The wall is wet.", message_id="<a1@example.org>")
    deliver(engine, first)
    annas = ticket_of(engine, first.dedupe_key)
    ref = reference_of(engine, annas)
    stranger = email("nosy@example.net", f"About {ref}", f"What did she say in {ref}?",
                     message_id="<s1@example.net>", at=T0 + timedelta(hours=1))
    deliver(engine, stranger)
    theirs = ticket_of(engine, stranger.dedupe_key)
    assert theirs != annas
    assert links(engine) == {(theirs, annas)}
    rule, detail = rule_of(engine, stranger.dedupe_key)
    assert rule == "reference" and detail is not None and "not a participant" in detail
    with engine.connect() as conn:
        on_annas = conn.execute(select(TicketMessage.dedupe_key).where(TicketMessage.ticket_id == annas))
        assert list(on_annas.scalars()) == [first.dedupe_key]


def test_one_email_to_two_department_inboxes_is_one_ticket_in_two_departments(engine: Engine) -> None:
    both = email("anna@example.org", "Bins and the broken pavement", "Both outside number 4.",
                 message_id="<both@example.org>",
                 mailboxes=["waste@council.gov.uk", "highways@council.gov.uk"])
    copy = routed(both, "waste", departments=["waste", "highways"])
    for department in ("waste", "highways"):  # the router's copy on each department topic
        with engine.begin() as conn:
            TicketWriter(POLICY).write_batch(conn, [record(copy, topic=f"frontdoor.dept.{department}")],
                                             lambda r, exc: pytest.fail(str(exc)))
    with engine.connect() as conn:
        assert len(conn.execute(select(Ticket)).all()) == 1
        assert sorted(conn.execute(select(TicketDepartment.department)).scalars()) == ["highways", "waste"]
        assert len(conn.execute(select(TicketMessage)).all()) == 1


def test_replies_to_a_bulk_email_from_different_people_are_separate_tickets(engine: Engine) -> None:
    residents = [f"resident{i}@example.org" for i in range(3)]
    mailing = InboundMessage(
        channel=Channel.EMAIL, sender=Party(email="news@council.gov.uk"),
        subject="Changes to bin collections",
        to=[Party(email=r) for r in residents], cc=[Party(email="waste@council.gov.uk")],
        body_text="From March your bins are collected on Tuesdays.", received_at=T0,
        threading=Threading(message_id="<bulk1@council.gov.uk>"), automation=Automation.BULK,
        source=Source(mailboxes=["waste@council.gov.uk"]), dedupe_key="email:<bulk1@council.gov.uk>")
    deliver(engine, mailing, department="waste")
    replies = [email(r, "RE: Changes to bin collections", f"Which Tuesday? ({r})",
                     message_id=f"<r{i}@example.org>",
                     in_reply_to="<bulk1@council.gov.uk>", references=["<bulk1@council.gov.uk>"],
                     at=T0 + timedelta(hours=i + 1)) for i, r in enumerate(residents)]
    deliver(engine, *replies, department="waste")
    tickets = [ticket_of(engine, r.dedupe_key) for r in replies]
    assert len(set(tickets)) == 3
    # Resident 1 writes again on their own thread: it joins their ticket, not a neighbour's.
    again = email(residents[1], "RE: Changes to bin collections", "Also, the green bin?",
                  message_id="<r1b@example.org>", in_reply_to="<r1@example.org>",
                  references=["<bulk1@council.gov.uk>", "<r1@example.org>"], at=T0 + timedelta(days=1))
    deliver(engine, again, department="waste")
    assert ticket_of(engine, again.dedupe_key) == tickets[1]


def test_references_stripped_but_the_reference_in_the_subject_still_threads(engine: Engine) -> None:
    first = email("anna@example.org", "Damp in flat", "The wall is wet.", message_id="<a1@example.org>")
    deliver(engine, first)
    ticket = ticket_of(engine, first.dedupe_key)
    ref = reference_of(engine, ticket)
    # Her employer's ticketing system rewrote the reply: new Message-ID, no In-Reply-To/References.
    rewritten = email("anna@example.org", f"[Ticket#4411] RE: Damp in flat ({ref})", "Any news?",
                      message_id="<helpdesk-99@corp.example>", at=T0 + timedelta(days=2))
    deliver(engine, rewritten)
    assert ticket_of(engine, rewritten.dedupe_key) == ticket
    rule, detail = rule_of(engine, rewritten.dedupe_key)
    assert rule == "reference" and detail is not None and ref in detail


def test_a_reply_with_a_new_subject_after_the_ticket_closed_opens_a_new_linked_ticket(engine: Engine) -> None:
    first = email("anna@example.org", "Damp in flat", "The wall is wet.", message_id="<a1@example.org>")
    deliver(engine, first)
    old = ticket_of(engine, first.dedupe_key)
    close(engine, old, timedelta(days=1))
    new_matter = email("anna@example.org", "Noise from next door", "Every night until 3am.",
                       message_id="<a2@example.org>", in_reply_to="<a1@example.org>",
                       at=T0 + timedelta(days=3))
    deliver(engine, new_matter)
    new = ticket_of(engine, new_matter.dedupe_key)
    assert new != old and links(engine) == {(new, old)}
    with engine.connect() as conn:
        assert conn.execute(select(Ticket.status).where(Ticket.id == old)).scalar_one() == "closed"
    # The same subject within the window reopens the old one instead.
    same = email("anna@example.org", "RE: Damp in flat", "It is back.", message_id="<a3@example.org>",
                 in_reply_to="<a1@example.org>", at=T0 + timedelta(days=4))
    deliver(engine, same)
    assert ticket_of(engine, same.dedupe_key) == old
    with engine.connect() as conn:
        assert conn.execute(select(Ticket.status).where(Ticket.id == old)).scalar_one() == "reopened"


def test_a_reply_long_after_closing_opens_a_new_linked_ticket(engine: Engine) -> None:
    first = email("anna@example.org", "Damp in flat", "The wall is wet.", message_id="<a1@example.org>")
    deliver(engine, first)
    old = ticket_of(engine, first.dedupe_key)
    close(engine, old, timedelta(days=1))
    late = email("anna@example.org", "RE: Damp in flat", "It is back.", message_id="<a2@example.org>",
                 in_reply_to="<a1@example.org>", at=T0 + timedelta(days=90))
    deliver(engine, late)
    new = ticket_of(engine, late.dedupe_key)
    assert new != old and links(engine) == {(new, old)}
    assert "reopen window" in (rule_of(engine, late.dedupe_key)[1] or "")


def test_all_sms_from_one_number_forever(engine: Engine) -> None:
    number = "07700 900123"
    texts = [sms(number, "Bins not collected on Elm Road", sid="SM1", at=T0),
             sms("+447700900123", "Still not collected", sid="SM2", at=T0 + timedelta(hours=20))]
    deliver(engine, *texts)
    first = ticket_of(engine, "sms:SM1")
    assert ticket_of(engine, "sms:SM2") == first
    close(engine, first, timedelta(hours=21))
    deliver(engine, sms(number, "Streetlight out on Oak Lane", sid="SM3", at=T0 + timedelta(hours=22)))
    second = ticket_of(engine, "sms:SM3")
    assert second != first and links(engine) == {(second, first)}
    deliver(engine, sms(number, "By number 12", sid="SM4", at=T0 + timedelta(hours=23)))
    assert ticket_of(engine, "sms:SM4") == second
    with engine.connect() as conn:
        assert conn.execute(select(Ticket.status).where(Ticket.id == first)).scalar_one() == "closed"


def test_mail_to_a_merged_ticket_lands_in_the_one_it_was_merged_into(engine: Engine) -> None:
    one = email("anna@example.org", "Damp in flat", "The wall is wet.", message_id="<a1@example.org>")
    two = email("anna@example.org", "Mould", "And mould too.", message_id="<a2@example.org>",
                at=T0 + timedelta(hours=1))
    deliver(engine, one, two)
    kept, gone = ticket_of(engine, one.dedupe_key), ticket_of(engine, two.dedupe_key)
    assert kept != gone
    with Session(engine) as s, s.begin():
        merge_tickets(s, gone, kept, actor="agent@council", reason="one problem", now=T0 + timedelta(hours=2))
    ref_gone = reference_of(engine, gone)
    reply = email("anna@example.org", "RE: Mould", "Photos attached.", message_id="<a3@example.org>",
                  in_reply_to="<a2@example.org>", at=T0 + timedelta(hours=3))
    deliver(engine, reply)
    assert ticket_of(engine, reply.dedupe_key) == kept  # its messages moved with the merge
    quoting = email("anna@example.org", f"Mould, ref {ref_gone}", "Any date for the visit?",
                    message_id="<a4@example.org>", at=T0 + timedelta(hours=4))
    deliver(engine, quoting)
    assert ticket_of(engine, quoting.dedupe_key) == kept
    assert "merged into" in (rule_of(engine, quoting.dedupe_key)[1] or "")


def test_an_sms_quoting_a_reference_from_a_number_on_the_ticket_joins(engine: Engine) -> None:
    ref = new_reference()
    deliver(engine, sms("07700 900123", "Bins", sid="SM1", at=T0, reference=ref))
    ticket = ticket_of(engine, "sms:SM1")
    ticket_ref = reference_of(engine, ticket)
    deliver(engine, sms("07700900123", f"{ticket_ref} any update?", sid="SM2", at=T0 + timedelta(days=9)))
    assert ticket_of(engine, "sms:SM2") == ticket
    assert rule_of(engine, "sms:SM2")[0] == "reference"
    deliver(engine, sms("07700900999", f"{ticket_ref} is my neighbour's", sid="SM3",
                        at=T0 + timedelta(days=9)))
    assert ticket_of(engine, "sms:SM3") != ticket


def test_outlooks_thread_index_threads_when_a_gateway_rewrote_the_headers(engine: Engine) -> None:
    import base64

    conversation = bytes.fromhex("01d9a1b2c3d4") + bytes(range(16))
    first = email("anna@example.org", "Damp in flat", "The wall is wet.", message_id="<a1@example.org>")
    first = first.model_copy(update={"source": Source(extra={"thread_index": base64.b64encode(conversation)
                                                             .decode()})})
    deliver(engine, first)
    rewritten = email("anna@example.org", "Damp", "Any news?", message_id="<gw-1@gateway.example>",
                      at=T0 + timedelta(days=1))
    child = base64.b64encode(conversation + b"\x00\x00\x01\x02\x03").decode()
    rewritten = rewritten.model_copy(update={"source": Source(extra={"thread_index": child})})
    deliver(engine, rewritten)
    assert ticket_of(engine, rewritten.dedupe_key) == ticket_of(engine, first.dedupe_key)
    assert rule_of(engine, rewritten.dedupe_key)[0] == "thread_index"
