"""``frontdoor bench outbound``: acknowledgements/s through the sender stage to a local SMTP
relay (aiosmtpd) and a local server standing in for Twilio's API (Twilio is unreachable here),
beside raw ``smtplib`` sends of the same messages on one connection, in the same run.

The stage's figure includes what the raw side skips: claiming the row (a conditional UPDATE),
rendering the templates, composing the MIME message and recording ``sent``.
"""

from __future__ import annotations

import json
import logging
import secrets
import smtplib
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class RelayedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class _RelayHandler:
    def __init__(self, sink: RecordingRelay) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self.sink.lock:
            self.sink.mails.append(RelayedMail(envelope.mail_from, tuple(envelope.rcpt_tos),
                                               bytes(envelope.original_content or envelope.content)))
        if self.sink.delay_s:
            time.sleep(self.sink.delay_s)  # a slow relay: the sender waits for each 250
        return "250 OK queued"


class RecordingRelay:
    """A real SMTP server (aiosmtpd) on loopback that keeps every mail it accepts."""

    def __init__(self, *, delay_s: float = 0.0, **controller_kwargs: Any) -> None:
        self.mails: list[RelayedMail] = []
        self.lock = threading.Lock()
        self.delay_s = delay_s
        self.port = free_port()
        self.controller = Controller(_RelayHandler(self), hostname="127.0.0.1", port=self.port,
                                     **controller_kwargs)

    def __enter__(self) -> RecordingRelay:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


@dataclass(frozen=True, slots=True)
class RecordedCall:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes


class RecordingApi:
    """An HTTP server on loopback that records every call and answers like Twilio's Messages API
    (201 with a MessageSid) or GOV.UK Notify (201 with a notification id); ``fail_with`` makes
    it answer an error instead."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.lock = threading.Lock()
        self.fail_with: tuple[int, dict[str, Any]] | None = None
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's and Notify's APIs offer
            disable_nagle_algorithm = True  # headers and body go as separate writes

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                form: dict[str, str] = {}
                if "form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                call = RecordedCall("POST", self.path, form, dict(self.headers.items()), body)
                with recorder.lock:
                    recorder.calls.append(call)
                    failure = recorder.fail_with
                status, answer = failure if failure else recorder.answer(call)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def answer(call: RecordedCall) -> tuple[int, dict[str, Any]]:
        if call.path.endswith("/Messages.json"):
            return 201, {"sid": "SM" + secrets.token_hex(16), "status": "queued", "to": call.form.get("To"),
                         "from": call.form.get("From"), "body": call.form.get("Body"), "num_segments": "1"}
        payload = json.loads(call.body or b"{}")
        return 201, {"id": secrets.token_hex(16), "reference": payload.get("reference"),
                     "content": {}, "template": {"id": payload.get("template_id"), "version": 1}}

    def __enter__(self) -> RecordingApi:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_outbound_bench(n: int) -> dict[str, Any]:
    from sqlalchemy import insert

    from outbound.rendering import TemplateSet
    from outbound.senders import RelayConfig, SmtpRelaySender, TwilioSender, compose_email
    from outbound.stage import OutboxSender
    from schemas.inbound import Channel, InboundMessage, Party, Threading
    from schemas.reference import new_reference
    from tickets import db, outbox
    from tickets.models import Ticket
    from tickets.outbox import OutboxPolicy, queue_acknowledgement

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    with tempfile.TemporaryDirectory(prefix="fd-bench-outbound-") as tmp, RecordingRelay() as relay, \
            RecordingApi() as twilio:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db.upgrade(url)
        engine = db.make_engine(url)
        policy = OutboxPolicy(ack_rate_per_hour=10 * n)
        email_ids: list[int] = []
        sms_ids: list[int] = []
        with engine.begin() as conn:
            for i in range(2 * n):
                sms = i >= n
                ref = new_reference()
                ticket_id = conn.execute(insert(Ticket).values(
                    reference=ref, channel="sms" if sms else "email", status="new",
                    created_at=outbox._now(), updated_at=outbox._now()).returning(Ticket.id)).scalar_one()
                message = InboundMessage(
                    channel=Channel.SMS if sms else Channel.EMAIL,
                    sender=Party(phone=f"+4477009{i:05d}") if sms
                    else Party(email=f"resident{i}@example.org"),
                    to=[Party(phone="+447700900000")] if sms else [],
                    subject=None if sms else f"Missed bin collection {i}",
                    threading=Threading(message_id=None if sms else f"<m{i}@example.org>"),
                    body_text="The bins were not collected on our street this week.", dedupe_key=f"bench:{i}")
                row = queue_acknowledgement(conn, _T(ticket_id, ref), message,
                                            secret=secrets.token_urlsafe(16), policy=policy)
                assert row is not None  # noqa: S101
                (sms_ids if sms else email_ids).append(row.id)
        templates = TemplateSet()
        templates.check()
        smtp_sender = SmtpRelaySender(RelayConfig("127.0.0.1", relay.port, starttls=False))
        sms_sender = TwilioSender("AC" + "0" * 32, "token", default_from="+447700900000",
                                  status_callback="http://127.0.0.1:8000/webhooks/twilio/status",
                                  api_base=twilio.url)
        sender = OutboxSender(engine, templates, email=smtp_sender, sms=sms_sender)
        start = time.perf_counter()
        for outbox_id in email_ids:
            sender.send(outbox_id)
        email_s = time.perf_counter() - start
        start = time.perf_counter()
        for outbox_id in sms_ids:
            sender.send(outbox_id)
        sms_s = time.perf_counter() - start
        smtp_sender.close()

        # The raw side: the same MIME messages, already composed, through one smtplib connection.
        with engine.connect() as conn:
            rows = [outbox.get(conn, i) for i in email_ids]
        composed = [compose_email(r, templates.email("acknowledgement", dict(r.context)), policy.mail_from)
                    for r in rows if r is not None]
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", relay.port) as smtp:
            for msg in composed:
                smtp.send_message(msg)
        raw_s = time.perf_counter() - start
        with engine.connect() as conn:
            sent = sum(1 for i in email_ids + sms_ids
                       if (r := outbox.get(conn, i)) is not None and r.status.value == "sent")
        engine.dispose()
        return {
            "messages": n,
            "email_acks_per_s": round(n / email_s, 1),
            "sms_acks_per_s": round(n / sms_s, 1),
            "raw_smtplib_per_s": round(n / raw_s, 1),
            "email_ratio_to_raw": round(raw_s / email_s, 3),
            "rows_sent": sent,
            "mails_at_relay": len(relay.mails),
            "twilio_calls": len(twilio.calls),
        }


@dataclass(frozen=True, slots=True)
class _T:
    id: int
    reference: str
