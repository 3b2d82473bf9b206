"""With the real ticket writer: a new ticket's acknowledgement is queued in the batch's own
transaction, the resident's reply to it joins that ticket and gets no second acknowledgement, and
the tracking link's secret opens the ticket."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from sqlalchemy import Connection, Engine, select

from connectors.email_parser import parse_email
from ingest.bus import Record
from outbound.bench import RecordingRelay
from outbound.rendering import TemplateSet
from outbound.senders import RelayConfig, SmtpRelaySender
from outbound.stage import OutboxSender
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import InboundMessage
from tests.outbound.conftest import POLICY
from tests.tickets import factory
from tickets import outbox
from tickets.models import TicketMessage
from tickets.outbox import OutboxKind, queue_acknowledgement
from tickets.service import NewTicket, TicketWriter, check_tracking_secret, issue_tracking_secret


def acknowledge(conn: Connection, ticket: NewTicket, message: InboundMessage) -> None:
    """The new-ticket hook as ``frontdoor.wiring.ticket_writer`` installs it."""
    queue_acknowledgement(conn, ticket, message, secret=issue_tracking_secret(conn, ticket.id), policy=POLICY)


def write(engine: Engine, message: InboundMessage) -> None:
    records: list[Record] = [factory.record(factory.routed(message))]
    with engine.begin() as conn:
        TicketWriter(on_new_ticket=acknowledge).write_batch(conn, records, lambda r, exc: None)


def test_the_residents_reply_to_the_acknowledgement_joins_the_ticket(
        engine: Engine, plain_relay: RecordingRelay, tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    write(engine, factory.email("sam@example.org", "Bins not collected", "Our bins were missed.",
                                message_id="<first@example.org>", name="Sam"))
    with engine.connect() as conn:
        rows = outbox.to_publish(conn)
    assert [(r.kind, r.recipient) for r in rows] == [(OutboxKind.ACKNOWLEDGEMENT, "sam@example.org")]
    ack_row = rows[0]
    sender = OutboxSender(engine, TemplateSet(), email=SmtpRelaySender(RelayConfig(
        "127.0.0.1", plain_relay.port, starttls=False, mail_from=POLICY.mail_from)), sms=None)
    sender.send(ack_row.id)
    sender.close()
    ack = message_from_bytes(plain_relay.mails[0].data, policy=policy.default)

    link = urlparse(ack_row.context["tracking_url"])
    secret = parse_qs(link.query)["secret"][0]
    with engine.connect() as conn:
        assert check_tracking_secret(conn, ack_row.ticket_id, secret)

    reply = EmailMessage()  # the resident presses Reply
    reply["From"] = "Sam <sam@example.org>"
    reply["To"] = str(ack["From"])
    reply["Subject"] = f"Re: {ack['Subject']}"
    reply["Message-ID"] = make_msgid("reply", "example.org")
    reply["In-Reply-To"] = str(ack["Message-ID"])
    reply["References"] = f"{ack['References']} {ack['Message-ID']}"
    reply.set_content("They still have not come.")
    write(engine, parse_email(reply.as_bytes(), blobs=blobs))

    with engine.connect() as conn:
        messages = conn.execute(select(TicketMessage.ticket_id, TicketMessage.thread_rule)
                                .order_by(TicketMessage.id)).all()
        queued = outbox.for_ticket(conn, ack_row.ticket_id)
    assert [m.ticket_id for m in messages] == [ack_row.ticket_id, ack_row.ticket_id]
    assert messages[1].thread_rule != "new"
    assert [r.kind for r in queued] == [OutboxKind.ACKNOWLEDGEMENT]  # the follow-up got none


def test_an_sms_ticket_is_acknowledged_by_text(engine: Engine) -> None:
    write(engine, factory.sms("+447700900123", "Streetlight out on Elm Road", sid="SM1"))
    with engine.connect() as conn:
        rows = outbox.to_publish(conn)
    assert [(r.channel.value, r.recipient) for r in rows] == [("sms", "+447700900123")]
