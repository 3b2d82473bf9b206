"""Mail through the council's relay: a real aiosmtpd server requiring STARTTLS and AUTH captures
what the sender stage sends; the resident's reply to it is parsed by the real email parser."""

from __future__ import annotations

import ssl
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from sqlalchemy import Engine

from connectors.email_parser import parse_email
from outbound.bench import RecordingRelay
from outbound.rendering import TemplateSet
from outbound.senders import RelayConfig, SmtpRelaySender
from outbound.stage import OutboxSender
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Automation
from tests.outbound.conftest import POLICY, RELAY_PASSWORD, RELAY_USER, email_in, new_ticket
from tickets import outbox
from tickets.outbox import OutboxStatus, ReplyTarget, Thread, queue_acknowledgement, queue_reply


def relay_sender(relay: RecordingRelay, cert: Path | None = None,
                 password: str = RELAY_PASSWORD) -> SmtpRelaySender:
    context = ssl.create_default_context(cafile=str(cert)) if cert else None
    return SmtpRelaySender(RelayConfig("127.0.0.1", relay.port, user=RELAY_USER if cert else None,
                                       password=password if cert else None, starttls=cert is not None,
                                       mail_from=POLICY.mail_from, from_name="Anytown Council",
                                       tls_context=context))


def send_once(engine: Engine, relay: RecordingRelay, outbox_id: int) -> None:
    sender = OutboxSender(engine, TemplateSet(), email=relay_sender(relay), sms=None)
    try:
        assert sender.send(outbox_id) is OutboxStatus.SENT
    finally:
        sender.close()


def parsed(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)


def test_acknowledgement_goes_through_starttls_and_auth_threaded_with_both_parts(
        engine: Engine, tls_relay: RecordingRelay, relay_cert: tuple[Path, Path]) -> None:
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(), secret="s3cret", policy=POLICY)
    assert row is not None
    sender = OutboxSender(engine, TemplateSet(), email=relay_sender(tls_relay, relay_cert[0]), sms=None)
    assert sender.send(row.id) is OutboxStatus.SENT
    assert sender.send(row.id) is None  # a redelivered record: already sent, nothing happens
    sender.close()
    assert len(tls_relay.mails) == 1
    mail = tls_relay.mails[0]
    assert mail.rcpt_tos == ("resident@example.org",)
    msg = parsed(mail.data)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"] == row.message_id
    assert msg["In-Reply-To"] == "<first@example.org>"
    assert msg["References"] == "<older@example.org> <first@example.org>"
    assert msg["Subject"] == f"[{ticket.reference}] Re: Bins not collected"
    assert msg["From"] == "Anytown Council <enquiries@council.example.gov.uk>"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    link = f"https://contact.council.example.gov.uk/track?ref={ticket.reference}&secret=s3cret"
    assert link in text.get_content()
    assert link.replace("&", "&amp;") in html.get_content()
    with engine.connect() as conn:
        done = outbox.get(conn, row.id)
    assert done is not None and done.status is OutboxStatus.SENT and done.provider == "smtp"


def test_reply_threads_on_their_last_message_and_copies_participants(
        engine: Engine, plain_relay: RecordingRelay) -> None:
    ticket = new_ticket(engine)
    target = ReplyTarget("resident@example.org", cc=("neighbour@example.org",),
                         thread=Thread("<second@example.org>", ("<first@example.org>",),
                                       "Bins not collected"))
    with engine.begin() as conn:
        row = queue_reply(conn, ticket, "A. Officer", "We will collect on Tuesday.\n\nSorry for the delay.",
                          "email", target=target, policy=POLICY)
    send_once(engine, plain_relay, row.id)
    mail = plain_relay.mails[0]
    assert set(mail.rcpt_tos) == {"resident@example.org", "neighbour@example.org"}
    msg = parsed(mail.data)
    assert msg["Cc"] == "neighbour@example.org"
    assert msg["In-Reply-To"] == "<second@example.org>"
    assert msg["References"] == "<first@example.org> <second@example.org>"
    assert ticket.reference in msg["Subject"]
    assert msg["Auto-Submitted"] is None  # a person wrote it
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and "We will collect on Tuesday." in plain.get_content()
    assert html is not None and "<p>Sorry for the delay.</p>" in html.get_content()


def test_the_residents_reply_to_the_acknowledgement_names_its_ticket(
        engine: Engine, plain_relay: RecordingRelay, tmp_path: Path) -> None:
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(), secret="s", policy=POLICY)
    assert row is not None
    send_once(engine, plain_relay, row.id)
    ack = parsed(plain_relay.mails[0].data)
    reply = EmailMessage()  # what the resident's mail client sends on "Reply"
    reply["From"] = "Sam Resident <resident@example.org>"
    reply["To"] = ack["From"]
    reply["Subject"] = "Re: " + ack["Subject"]
    reply["Message-ID"] = make_msgid("reply", "example.org")
    reply["In-Reply-To"] = ack["Message-ID"]
    reply["References"] = f'{ack["References"]} {ack["Message-ID"]}'
    reply.set_content("They still have not come.\n\n> Thank you for contacting the council.\n")
    message = parse_email(reply.as_bytes(), blobs=FilesystemBlobStore(tmp_path / "blobs"))
    assert message.automation is Automation.NONE
    assert message.threading.in_reply_to == row.message_id
    assert message.threading.reference == ticket.reference  # the subject carries it too
    with engine.connect() as conn:
        found = outbox.by_message_id(conn, message.threading.in_reply_to or "")
    assert found is not None and found.ticket_id == ticket.id


def test_an_out_of_office_answering_every_acknowledgement_gets_one(
        engine: Engine, plain_relay: RecordingRelay, tmp_path: Path) -> None:
    """The responder answers each acknowledgement; its answers are parsed by the real parser and,
    as the ticket consumer would, offered for acknowledgement as new tickets. Its first answer is
    marked (Auto-Submitted) and gets nothing; a cruder robot that marks nothing is cut off by
    the per-recipient hourly limit, so the exchange dies out instead of looping."""
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    sender = OutboxSender(engine, TemplateSet(), email=relay_sender(plain_relay), sms=None)
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        first = queue_acknowledgement(conn, ticket, email_in(sender="away@example.org"), secret="s",
                                      policy=POLICY)
    assert first is not None
    sender.send(first.id)

    def robot_answer(ack: EmailMessage, marked: bool) -> bytes:
        answer = EmailMessage()
        answer["From"] = "away@example.org"
        answer["To"] = ack["From"]
        answer["Subject"] = ("Automatic reply: " if marked else "Re: ") + ack["Subject"]
        answer["Message-ID"] = make_msgid("ooo", "example.org")
        if marked:
            answer["Auto-Submitted"] = "auto-replied"
        answer.set_content("I am away until Monday.")
        return answer.as_bytes()

    for marked in (True, False, False, False, False, False):
        last = parsed(plain_relay.mails[-1].data)
        message = parse_email(robot_answer(last, marked), blobs=blobs)
        assert (message.automation is Automation.AUTO_REPLY) == marked
        loop_ticket = new_ticket(engine)
        with engine.begin() as conn:
            row = queue_acknowledgement(conn, loop_ticket, message, secret="s", policy=POLICY)
        assert row is not None
        sender.send(row.id)
    sender.close()
    assert len(plain_relay.mails) == POLICY.ack_rate_per_hour  # 1 + 2 unmarked before the limit
    with engine.connect() as conn:
        statuses = [r.status for r in outbox.to_publish(conn)]
    assert statuses == []  # nothing left queued either


def test_welsh_subjects_and_names_arrive_intact(engine: Engine, plain_relay: RecordingRelay) -> None:
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(subject="Biniau heb eu casglu – Ffordd Siôn",
                                                           name="Siân Ŵyn"), secret="s", policy=POLICY)
    assert row is not None
    send_once(engine, plain_relay, row.id)
    msg = parsed(plain_relay.mails[0].data)
    assert msg["Subject"] == f"[{ticket.reference}] Re: Biniau heb eu casglu – Ffordd Siôn"
    plain = msg.get_body(("plain",))
    assert plain is not None and "Dear Siân Ŵyn," in plain.get_content()


def test_a_row_its_templates_cannot_render_fails_instead_of_coming_back_forever(
        engine: Engine, plain_relay: RecordingRelay, tmp_path: Path) -> None:
    (tmp_path / "reply_email.txt").write_text("{{ body }} {{ extra_line }}\n")  # a variable rows lack
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_reply(conn, ticket, "A. Officer", "Hello", "email", policy=POLICY,
                          target=ReplyTarget("resident@example.org"))
    sender = OutboxSender(engine, TemplateSet(tmp_path), email=relay_sender(plain_relay), sms=None)
    assert sender.send(row.id) is OutboxStatus.FAILED
    sender.close()
    with engine.connect() as conn:
        failed = outbox.get(conn, row.id)
        assert outbox.to_publish(conn, now=outbox._now() + timedelta(hours=1)) == []
        assert outbox.undeliverable_addresses(conn, ["resident@example.org"]) == {}  # not the address's fault
    assert failed is not None and "extra_line" in (failed.status_reason or "")
    assert plain_relay.mails == []
