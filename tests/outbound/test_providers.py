"""Twilio and GOV.UK Notify through their own client libraries, pointed at a local server that
records every API call: their real services are unreachable from here. Delivery status (Twilio
callbacks, email bounces) moves the outbox row on and marks permanent failures undeliverable."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
from sqlalchemy import Engine

from connectors.email_parser import parse_email
from outbound.bench import RecordingApi
from outbound.rendering import TemplateSet
from outbound.senders import NotifySender, NotifyTemplates, TwilioSender
from outbound.stage import OutboxSender
from outbound.status import record_bounce, record_twilio_status
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Automation
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

ACCOUNT = "AC" + "1" * 32
CALLBACK = "https://contact.council.example.gov.uk/webhooks/twilio/status"
SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
NOTIFY_KEY = f"frontdoor_test-{SERVICE_ID}-{SECRET}"
TEMPLATES = NotifyTemplates(acknowledgement_email="t-ack-email", acknowledgement_sms="t-ack-sms",
                            reply_email="t-reply-email", reply_sms="t-reply-sms")


def twilio_stage(engine: Engine, api: RecordingApi, opted_out: set[str] | None = None) -> OutboxSender:
    sms = TwilioSender(ACCOUNT, "auth-token", default_from=POLICY.twilio_from, status_callback=CALLBACK,
                       api_base=api.url)
    return OutboxSender(engine, TemplateSet(), email=None, sms=sms,
                        opted_out=lambda number: number in (opted_out or set()))


def queue_sms_ack(engine: Engine, sender: str = "+447700900123") -> int:
    ticket = new_ticket(engine, "sms")
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, sms_in(sender), secret="s3cret", policy=POLICY)
    assert row is not None
    return row.id


def test_sms_acknowledgement_is_one_twilio_api_call_from_the_number_they_texted(
        engine: Engine, api: RecordingApi) -> None:
    outbox_id = queue_sms_ack(engine)
    assert twilio_stage(engine, api).send(outbox_id) is OutboxStatus.SENT
    assert len(api.calls) == 1
    call = api.calls[0]
    assert call.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert call.form["To"] == "+447700900123"
    assert call.form["From"] == COUNCIL_NUMBER
    assert call.form["StatusCallback"] == CALLBACK
    assert "FD-" in call.form["Body"] and "secret=s3cret" in call.form["Body"]
    expected = base64.b64encode(f"{ACCOUNT}:auth-token".encode()).decode()
    assert call.headers["Authorization"] == f"Basic {expected}"
    with engine.connect() as conn:
        row = outbox.get(conn, outbox_id)
    assert row is not None and row.provider == "twilio" and (row.provider_id or "").startswith("SM")


def test_an_opted_out_number_is_never_texted(engine: Engine, api: RecordingApi) -> None:
    outbox_id = queue_sms_ack(engine)  # the number sent STOP after its enquiry was queued
    assert twilio_stage(engine, api, {"+447700900123"}).send(outbox_id) is OutboxStatus.SUPPRESSED
    assert api.calls == []
    with engine.connect() as conn:
        row = outbox.get(conn, outbox_id)
    assert row is not None and "opted out" in (row.status_reason or "")


def test_twilio_status_callbacks_move_the_row_forward_only(engine: Engine, api: RecordingApi) -> None:
    outbox_id = queue_sms_ack(engine)
    twilio_stage(engine, api).send(outbox_id)
    with engine.connect() as conn:
        sid = (outbox.get(conn, outbox_id) or pytest.fail("row")).provider_id
    assert sid is not None
    assert record_twilio_status(engine, "SMnot-ours", "delivered") is None
    delivered = record_twilio_status(engine, sid, "delivered")
    assert delivered is not None and delivered.status is OutboxStatus.DELIVERED
    late = record_twilio_status(engine, sid, "sent")  # callbacks arrive out of order
    assert late is not None and late.status is OutboxStatus.DELIVERED


def test_a_permanent_twilio_failure_marks_the_number_undeliverable(engine: Engine, api: RecordingApi) -> None:
    outbox_id = queue_sms_ack(engine, "+441632960000")
    stage = twilio_stage(engine, api)
    stage.send(outbox_id)
    with engine.connect() as conn:
        sid = (outbox.get(conn, outbox_id) or pytest.fail("row")).provider_id
    assert sid is not None
    failed = record_twilio_status(engine, sid, "undelivered", "30006")  # a landline
    assert failed is not None and failed.status is OutboxStatus.FAILED
    assert failed.status_reason == "Twilio undelivered (error 30006)"
    with engine.connect() as conn:
        assert outbox.undeliverable_addresses(conn, ["+441632960000"]) == {
            "+441632960000": "Twilio undelivered (error 30006)"}
    ticket = new_ticket(engine, "sms")
    with engine.begin() as conn:
        reply = queue_reply(conn, ticket, "A. Officer", "Fixed.", OutboxChannel.SMS,
                            target=ReplyTarget("+441632960000"), policy=POLICY)
    assert reply.status is OutboxStatus.SUPPRESSED and len(api.calls) == 1  # not texted again


def test_twilio_refusing_the_number_fails_the_row_without_retrying(engine: Engine, api: RecordingApi) -> None:
    outbox_id = queue_sms_ack(engine)
    api.fail_with = (400, {"code": 21211, "message": "The 'To' number is not a valid phone number.",
                           "status": 400, "more_info": "https://www.twilio.com/docs/errors/21211"})
    assert twilio_stage(engine, api).send(outbox_id) is OutboxStatus.FAILED
    api.fail_with = (503, {"code": 20503, "message": "Service unavailable", "status": 503})
    other = queue_sms_ack(engine, "+447700900555")
    assert twilio_stage(engine, api).send(other) is OutboxStatus.SENDING  # kept: offered again later


def test_notify_gets_the_council_template_ids_and_our_rendered_text(engine: Engine,
                                                                    api: RecordingApi) -> None:
    notify = NotifySender(NOTIFY_KEY, TEMPLATES, base_url=api.url)
    stage = OutboxSender(engine, TemplateSet(), email=notify, sms=notify)
    email_id = new_ticket(engine)
    sms_id = new_ticket(engine, "sms")
    with engine.begin() as conn:
        email_row = queue_acknowledgement(conn, email_id, email_in(), secret="s3cret", policy=POLICY)
        sms_row = queue_acknowledgement(conn, sms_id, sms_in(), secret="s3cret", policy=POLICY)
    assert email_row is not None and sms_row is not None
    assert stage.send(email_row.id) is OutboxStatus.SENT
    assert stage.send(sms_row.id) is OutboxStatus.SENT
    assert [c.path for c in api.calls] == ["/v2/notifications/email", "/v2/notifications/sms"]
    email_call, sms_call = (json.loads(c.body) for c in api.calls)
    assert email_call["email_address"] == "resident@example.org"
    assert email_call["template_id"] == "t-ack-email"
    assert email_call["reference"] == email_row.idempotency_key
    assert email_call["personalisation"]["subject"] == f"[{email_id.reference}] Re: Bins not collected"
    assert "secret=s3cret" in email_call["personalisation"]["body"]
    assert sms_call["phone_number"] == "+447700900123" and sms_call["template_id"] == "t-ack-sms"
    token = api.calls[0].headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])  # signed with the key's secret
    assert claims["iss"] == SERVICE_ID
    with engine.connect() as conn:
        row = outbox.get(conn, email_row.id)
    assert row is not None and row.provider == "notify" and row.provider_id


def test_notify_refusing_a_message_fails_it(engine: Engine, api: RecordingApi) -> None:
    notify = NotifySender(NOTIFY_KEY, TEMPLATES, base_url=api.url)
    api.fail_with = (400, {"status_code": 400, "errors": [{"error": "BadRequestError",
                                                          "message": "Can't send to this recipient"}]})
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(), secret="s", policy=POLICY)
    assert row is not None
    assert OutboxSender(engine, TemplateSet(), email=notify, sms=notify).send(row.id) is OutboxStatus.FAILED


def bounce_for(message_id: str, status: str = "5.1.1", *, recipient: str = "gone@example.org",
               references: str = "") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: enquiries@council.example.gov.uk
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-{status}@mx.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; {recipient}
Action: {"failed" if status.startswith("5") else "delayed"}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: User unknown

--B1
Content-Type: text/rfc822-headers

From: enquiries@council.example.gov.uk
To: {recipient}
Subject: Your enquiry
References: {references or "<resident-1@example.org>"}
Message-ID: {message_id}

--B1--
""".replace("\n", "\r\n").encode()


def test_a_bounce_fails_the_mail_it_returns_and_marks_the_address(engine: Engine, tmp_path: Path) -> None:
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(sender="gone@example.org"), secret="s",
                                    policy=POLICY)
        assert row is not None and row.message_id
        outbox.claim(conn, row.id, lease_s=60)
        outbox.advance(conn, row.id, OutboxStatus.SENT)
    raw = bounce_for(row.message_id)
    message = parse_email(raw, blobs=FilesystemBlobStore(tmp_path / "blobs"))
    assert message.automation is Automation.BOUNCE  # the existing parser flags it
    failed = record_bounce(engine, message, raw)
    assert failed is not None and failed.id == row.id and failed.status is OutboxStatus.FAILED
    assert (failed.status_reason or "").startswith("bounced 5.1.1")
    with engine.connect() as conn:
        assert "gone@example.org" in outbox.undeliverable_addresses(conn, ["gone@example.org"])
        shown = outbox.for_ticket(conn, ticket.id)  # what the console shows on the ticket
    assert [(r.kind.value, r.status.value) for r in shown] == [("acknowledgement", "failed")]


def test_a_delay_notice_is_not_a_failure(engine: Engine, tmp_path: Path) -> None:
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, email_in(sender="slow@example.org"), secret="s",
                                    policy=POLICY)
        assert row is not None and row.message_id
        outbox.claim(conn, row.id, lease_s=60)
        outbox.advance(conn, row.id, OutboxStatus.SENT)
    raw = bounce_for(row.message_id, "4.4.1")
    message = parse_email(raw, blobs=FilesystemBlobStore(tmp_path / "blobs"))
    record_bounce(engine, message, raw)
    with engine.connect() as conn:
        kept = outbox.get(conn, row.id)
        assert outbox.undeliverable_addresses(conn, ["slow@example.org"]) == {}
    assert kept is not None and kept.status is OutboxStatus.SENT


def test_a_bounce_names_the_mail_it_returns_not_the_earlier_ones_it_quotes(engine: Engine,
                                                                          tmp_path: Path) -> None:
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        ack = queue_acknowledgement(conn, ticket, email_in(sender="gone@example.org"), secret="s",
                                    policy=POLICY)
        assert ack is not None and ack.message_id
        reply = queue_reply(conn, ticket, "A. Officer", "Done.", "email", policy=POLICY,
                            target=ReplyTarget("gone@example.org", cc=("copied@example.org",),
                                               thread=Thread("<first@example.org>")))
        for row in (ack, reply):
            outbox.claim(conn, row.id, lease_s=60)
            outbox.advance(conn, row.id, OutboxStatus.SENT)
    assert reply.message_id
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    copy_bounced = bounce_for(reply.message_id, recipient="copied@example.org", references=ack.message_id)
    record_bounce(engine, parse_email(copy_bounced, blobs=blobs), copy_bounced)
    with engine.connect() as conn:
        # only the copy bounced: the resident got it
        assert (outbox.get(conn, reply.id) or pytest.fail("row")).status is OutboxStatus.SENT
        assert set(outbox.undeliverable_addresses(conn, ["copied@example.org", "gone@example.org"])) == {
            "copied@example.org"}
    raw = bounce_for(reply.message_id, references=ack.message_id)
    failed = record_bounce(engine, parse_email(raw, blobs=blobs), raw)
    assert failed is not None and failed.id == reply.id and failed.status is OutboxStatus.FAILED
    with engine.connect() as conn:
        assert (outbox.get(conn, ack.id) or pytest.fail("row")).status is OutboxStatus.SENT
