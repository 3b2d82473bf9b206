"""The outbox rules: one acknowledgement per new ticket, never to robots, the council or opted-out
numbers, rate-limited per recipient; status only moves forward; one sender claims a row."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from schemas.inbound import Automation, Channel, InboundMessage, Party
from tests.outbound.conftest import COUNCIL_NUMBER, POLICY, email_in, new_ticket, sms_in
from tickets import outbox
from tickets.outbox import (
    OutboxChannel,
    OutboxStatus,
    ReplyTarget,
    Thread,
    queue_acknowledgement,
    queue_reply,
)


def test_new_email_ticket_queues_one_threaded_acknowledgement(any_engine: Engine) -> None:
    ticket = new_ticket(any_engine)
    with any_engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(), secret="s3cret", policy=POLICY)
        again = queue_acknowledgement(conn, ticket, email_in(), secret="s3cret", policy=POLICY)
    assert row is not None and again is not None and again.id == row.id  # a redelivery queues nothing new
    assert (row.status, row.channel, row.recipient) == (OutboxStatus.CREATED, OutboxChannel.EMAIL,
                                                         "resident@example.org")
    assert row.in_reply_to == "<first@example.org>"
    assert row.references == ("<older@example.org>", "<first@example.org>")
    assert row.message_id and row.message_id.endswith("@council.example.gov.uk>")
    assert row.context["tracking_url"] == (f"https://contact.council.example.gov.uk/track?ref={ticket.reference}"
                                           "&secret=s3cret")


def test_rolled_back_ticket_change_leaves_no_acknowledgement(engine: Engine) -> None:
    ticket = new_ticket(engine)
    try:
        with engine.begin() as conn:
            queue_acknowledgement(conn, ticket, email_in(), secret="s", policy=POLICY)
            raise RuntimeError("the ticket consumer's batch failed")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert outbox.for_ticket(conn, ticket.id) == []


def test_robots_the_council_and_opted_out_numbers_are_never_acknowledged(engine: Engine) -> None:
    cases: list[tuple[InboundMessage, str]] = [
        (email_in(automation=Automation.AUTO_REPLY), "auto_reply"),
        (email_in(automation=Automation.BOUNCE), "bounce"),
        (email_in(automation=Automation.BULK), "bulk"),
        (email_in(sender="waste@council.example.gov.uk"), "council's own address"),
        (email_in(sender="someone@housing.council.example.gov.uk"), "council's own address"),
        (sms_in(opted_out=True), "opted out"),
    ]
    for message, why in cases:
        ticket = new_ticket(engine)
        with engine.begin() as conn:
            row = queue_acknowledgement(conn, ticket, message, secret="s", policy=POLICY)
        assert row is not None and row.status is OutboxStatus.SUPPRESSED, why
        assert why in (row.status_reason or ""), row.status_reason
        with engine.connect() as conn:
            assert outbox.to_publish(conn) == []  # nothing for the sender


def test_sms_is_acknowledged_from_the_number_they_texted(engine: Engine) -> None:
    ticket = new_ticket(engine, "sms")
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, sms_in(), secret="s", policy=POLICY)
    assert row is not None and row.channel is OutboxChannel.SMS
    assert (row.recipient, row.sender, row.message_id) == ("+447700900123", COUNCIL_NUMBER, None)


def test_web_form_is_acknowledged_by_email_only_when_one_was_given(engine: Engine) -> None:
    with_email = InboundMessage(channel=Channel.WEBFORM, sender=Party(email="Form@Example.org"),
                                body_text="Pothole", dedupe_key="form:1")
    without = InboundMessage(channel=Channel.WEBFORM, sender=Party(name="No Email", phone="+447700900111"),
                             body_text="Pothole", dedupe_key="form:2")
    first, second = new_ticket(engine), new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, first, with_email, secret="s", policy=POLICY)
        none = queue_acknowledgement(conn, second, without, secret="s", policy=POLICY)
    assert row is not None and (row.channel, row.recipient) == (OutboxChannel.EMAIL, "form@example.org")
    assert none is None


def test_at_most_n_acknowledgements_per_recipient_per_hour(engine: Engine) -> None:
    rows = []
    for i in range(5):
        ticket = new_ticket(engine)
        with engine.begin() as conn:
            rows.append(queue_acknowledgement(conn, ticket, email_in(message_id=f"<m{i}@x>"),
                                              secret="s", policy=POLICY))
    assert [r.status for r in rows if r] == [OutboxStatus.CREATED] * 3 + [OutboxStatus.SUPPRESSED] * 2
    later = outbox._now() + timedelta(hours=1, minutes=1)
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(message_id="<m9@x>"), secret="s",
                                    policy=POLICY, now=later)
    assert row is not None and row.status is OutboxStatus.CREATED  # the window moved on


def test_reply_threads_on_their_last_message_and_copies_participants(engine: Engine) -> None:
    ticket = new_ticket(engine)
    target = ReplyTarget("Resident@Example.org", cc=("Neighbour@example.org", "waste@council.example.gov.uk",
                                                     "resident@example.org"),
                         thread=Thread("<last@example.org>", ("<first@example.org>",), "Bins"))
    with engine.begin() as conn:
        row = queue_reply(conn, ticket, "A. Officer", "We will collect on Tuesday.", "email", target=target,
                          policy=POLICY, idempotency_key="form-1")
        again = queue_reply(conn, ticket, "A. Officer", "We will collect on Tuesday.", "email", target=target,
                            policy=POLICY, idempotency_key="form-1")
    assert again.id == row.id  # a double submit is one reply
    assert row.recipient == "resident@example.org" and row.cc == ("neighbour@example.org",)
    assert row.in_reply_to == "<last@example.org>"
    assert row.references == ("<first@example.org>", "<last@example.org>")


def test_status_never_goes_backwards_and_one_sender_claims(any_engine: Engine) -> None:
    ticket = new_ticket(any_engine)
    with any_engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(), secret="s", policy=POLICY)
    assert row is not None
    with any_engine.begin() as conn:
        assert outbox.claim(conn, row.id, lease_s=60) is not None
    with any_engine.begin() as conn:
        assert outbox.claim(conn, row.id, lease_s=60) is None  # another sender: not while leased
        assert outbox.advance(conn, row.id, OutboxStatus.SENT, provider_id="x")
        assert outbox.advance(conn, row.id, OutboxStatus.DELIVERED)
        assert not outbox.advance(conn, row.id, OutboxStatus.SENT)  # a late 'sent' callback
        assert not outbox.advance(conn, row.id, OutboxStatus.FAILED)
        assert not outbox.advance(conn, row.id, OutboxStatus.SUPPRESSED)
        assert outbox.claim(conn, row.id, lease_s=60, now=outbox._now() + timedelta(days=1)) is None
        final = outbox.get(conn, row.id)
    assert final is not None and final.status is OutboxStatus.DELIVERED


def test_a_dead_senders_row_is_offered_again_after_its_lease(engine: Engine) -> None:
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(), secret="s", policy=POLICY)
        assert row is not None and [r.id for r in outbox.to_publish(conn)] == [row.id]
        outbox.mark_published(conn, [row.id])
        assert outbox.to_publish(conn) == []
        claimed = outbox.claim(conn, row.id, lease_s=30)
        assert claimed is not None
        assert outbox.to_publish(conn) == []  # leased: its sender is alive
        later = outbox._now() + timedelta(seconds=31)
        assert [r.id for r in outbox.to_publish(conn, now=later)] == [row.id]
        again = outbox.claim(conn, row.id, lease_s=30, now=later)
    assert again is not None and again.message_id == row.message_id and again.attempts == 2


def test_a_row_claimed_before_its_publication_was_recorded_is_not_lost(engine: Engine) -> None:
    """The relay died between Kafka's ack and marking the row published, and the sender that
    claimed the row died too: once the lease runs out the row is offered again."""
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(), secret="s", policy=POLICY)
        assert row is not None and outbox.claim(conn, row.id, lease_s=30) is not None
        later = outbox._now() + timedelta(seconds=31)
        assert [r.id for r in outbox.to_publish(conn, now=later)] == [row.id]
