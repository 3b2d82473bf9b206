"""The SMTP server: a real aiosmtpd Controller driven by smtplib, publishing to a real broker.

The broker-outage test stops and restarts the session's broker; it restarts it whatever
happens, and it is the last test in this file.
"""

from __future__ import annotations

import gc
import logging
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from connectors.smtp_server import SmtpHandler, SmtpServer, tls_context
from ingest.bus import KafkaPublisher, read_topic
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import InboundMessage
from tests.conftest import KafkaHandle

pytestmark = pytest.mark.kafka

DOMAIN = "council.example.gov.uk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def email(subject: str, body: str = "The bin was not collected.\n", size: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Resident <resident@example.org>"
    msg["To"] = f"waste@{DOMAIN}"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid("smtp", "example.org")
    msg.set_content(body + ("x" * 70 + "\n") * (size // 71))
    return msg


class Running:
    def __init__(self, server: SmtpServer, publisher: KafkaPublisher, blobs: FilesystemBlobStore) -> None:
        self.server = server
        self.publisher = publisher
        self.blobs = blobs

    def client(self, **kwargs: object) -> smtplib.SMTP:
        host, port = self.server.address
        return smtplib.SMTP(host, port, timeout=90, **kwargs)  # type: ignore[arg-type]


def start_server(kafka: KafkaHandle, topic: str, tmp: Path, *, max_bytes: int = 200_000,
                 tls: ssl.SSLContext | None = None) -> Running:
    blobs = FilesystemBlobStore(tmp / "blobs")
    publisher = KafkaPublisher(kafka.bootstrap, blobs, topic=topic, delivery_timeout_s=4)
    handler = SmtpHandler(publisher, blobs, [DOMAIN], max_bytes)
    server = SmtpServer(handler, "127.0.0.1", free_port(), tls=tls)
    server.start()
    return Running(server, publisher, blobs)


@pytest.fixture
def smtp(kafka: KafkaHandle, fresh_topic: str, tmp_path: Path) -> Iterator[Running]:
    running = start_server(kafka, fresh_topic, tmp_path)
    yield running
    running.server.stop()
    running.publisher.close()
    # kafka-python leaves the sockets of refused connection attempts (while the broker is
    # stopped) for the garbage collector; collect them here rather than in a later test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def messages(kafka: KafkaHandle, topic: str, expect: int | None = None) -> list[InboundMessage]:
    records = read_topic(kafka.bootstrap, topic, expect=expect, timeout_s=15 if expect else 5)
    return [InboundMessage.model_validate_json(r.value or b"") for r in records]


def mails(outcome: str) -> float:
    """'frontdoor smtp's count of mails answered with this outcome."""
    return REGISTRY.get_sample_value("frontdoor_smtp_mails_total", {"outcome": outcome}) or 0.0


def test_mail_to_several_departments_is_one_message_listing_every_mailbox(
        smtp: Running, kafka: KafkaHandle, fresh_topic: str) -> None:
    msg = email("Rubbish and rats behind the flats")
    with smtp.client() as client:
        refused = client.send_message(msg, from_addr="resident@example.org",
                                      to_addrs=[f"waste@{DOMAIN}", f"Housing@{DOMAIN}",
                                                f"environmental.health@{DOMAIN}"])
    assert refused == {}
    (message,) = messages(kafka, fresh_topic, expect=1)
    assert message.subject == "Rubbish and rats behind the flats"
    assert message.source.mailboxes == [f"waste@{DOMAIN}", f"housing@{DOMAIN}",
                                        f"environmental.health@{DOMAIN}"]
    assert message.dedupe_key.startswith(f"email:{msg['Message-ID']}#")
    assert message.source.extra["envelope_from"] == "resident@example.org"
    assert message.raw is not None and smtp.blobs.read(message.raw).startswith(b"From: Resident")


def test_reply_250_carries_the_message_id_only_after_the_ack(smtp: Running, kafka: KafkaHandle,
                                                             fresh_topic: str) -> None:
    with smtp.client() as client:
        client.ehlo()
        client.mail("resident@example.org")
        client.rcpt(f"waste@{DOMAIN}")
        accepted_before = mails("accepted")
        code, reply = client.data(email("Noise from the pub").as_bytes(policy=SMTP))
    assert code == 250
    (message,) = messages(kafka, fresh_topic, expect=1)
    assert message.id in reply.decode()
    # the stage's metrics count it (what the ops dashboard's ingest figures can read)
    assert mails("accepted") == accepted_before + 1


def test_relay_attempt_is_refused_with_550(smtp: Running, kafka: KafkaHandle, fresh_topic: str) -> None:
    with smtp.client() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        client.send_message(email("Buy now"), from_addr="spam@example.net",
                            to_addrs=["victim@elsewhere.example", f"x@sub.{DOMAIN}"])
    assert {code for code, _ in caught.value.recipients.values()} == {550}
    with smtp.client() as client:  # one foreign recipient among ours: ours still get it
        refused = client.send_message(email("Pothole"), from_addr="resident@example.org",
                                      to_addrs=[f"highways@{DOMAIN}", "friend@elsewhere.example"])
    assert refused["friend@elsewhere.example"][0] == 550
    (message,) = messages(kafka, fresh_topic, expect=1)
    assert message.source.mailboxes == [f"highways@{DOMAIN}"]


def test_oversize_mail_is_refused_with_552(smtp: Running, kafka: KafkaHandle, fresh_topic: str) -> None:
    big = email("Huge photo", size=400_000)
    with smtp.client() as client, pytest.raises(smtplib.SMTPResponseException) as caught:
        client.send_message(big, from_addr="resident@example.org", to_addrs=[f"waste@{DOMAIN}"])
    assert caught.value.smtp_code == 552
    # without the SIZE declaration the limit still holds, at DATA
    with smtp.client() as client:
        client.helo()  # plain HELO: no ESMTP, so no SIZE parameter
        client.mail("resident@example.org")
        client.rcpt(f"waste@{DOMAIN}")
        code, _ = client.data(big.as_bytes(policy=SMTP))
    assert code == 552
    assert messages(kafka, fresh_topic) == []


def test_a_nul_in_the_sender_never_reaches_the_stream(smtp: Running, kafka: KafkaHandle,
                                                     fresh_topic: str) -> None:
    with smtp.client() as client:
        client.ehlo()
        client.mail("resident@example.org")
        client.rcpt(f"waste@{DOMAIN}")
        code, _ = client.data(b"From: Eve <eve\x00@example.org>\r\nSubject: bins\x01\r\n"
                              b"Message-ID: <nul-1@example.org>\r\n\r\nMy bin was missed.\r\n")
    assert code == 250
    (message,) = messages(kafka, fresh_topic, expect=1)
    assert message.sender.email == "eve@example.org" and message.subject == "bins"
    assert message.defects == ["control_characters"]


def test_mail_without_any_sender_is_refused_permanently(smtp: Running) -> None:
    with smtp.client() as client:
        client.ehlo()
        client.mail("<>")
        client.rcpt(f"waste@{DOMAIN}")
        code, reply = client.data(b"Subject: no from at all\r\n\r\nhello\r\n")
    assert code == 554 and b"no_sender" in reply


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_starttls_is_offered_when_a_certificate_is_configured(
        kafka: KafkaHandle, fresh_topic: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    running = start_server(kafka, fresh_topic, tmp_path, tls=tls_context(cert, key))
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        client_context.check_hostname = False
        with running.client() as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=client_context)
            client.ehlo()
            client.send_message(email("Sent over TLS"), from_addr="resident@example.org",
                                to_addrs=[f"waste@{DOMAIN}"])
    finally:
        running.server.stop()
        running.publisher.close()
    assert [m.subject for m in messages(kafka, fresh_topic, expect=1)] == ["Sent over TLS"]


# kafka-python does not close the socket of a refused connection attempt (kafka/net/inet.py,
# sock_connect raises without sock.close()); while the broker is down its sender thread leaks
# one per retry, and the garbage collector's ResourceWarning must not fail this test.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_broker_away_answers_451_and_the_retry_is_accepted_once_it_is_back(
        smtp: Running, kafka: KafkaHandle, fresh_topic: str, caplog: pytest.LogCaptureFixture) -> None:
    # as the CLI does: kafka-python's own log records (with tracebacks that hold its leaked
    # sockets) are not kept
    caplog.set_level(logging.CRITICAL, logger="kafka")
    if kafka.external:
        pytest.skip("broker is external (FRONTDOOR_KAFKA_BOOTSTRAP): cannot stop it")
    msg = email("Blocked drain flooding the road")
    with smtp.client() as client:  # the producer is connected before the broker goes
        client.send_message(email("Warm-up"), from_addr="resident@example.org", to_addrs=[f"waste@{DOMAIN}"])
    kafka.stop()
    try:
        with smtp.client() as client:
            client.ehlo()
            client.mail("resident@example.org")
            client.rcpt(f"highways@{DOMAIN}")
            code, reply = client.data(msg.as_bytes(policy=SMTP))
        assert code == 451, reply
    finally:
        kafka.start()
    code = 0
    deadline = time.monotonic() + 60
    while code != 250 and time.monotonic() < deadline:  # what the sending MTA does
        with smtp.client() as client:
            client.ehlo()
            client.mail("resident@example.org")
            client.rcpt(f"highways@{DOMAIN}")
            code, _ = client.data(msg.as_bytes(policy=SMTP))
        if code != 250:
            time.sleep(1)
    assert code == 250
    ours = f"email:{msg['Message-ID']}#"
    got = [m for m in messages(kafka, fresh_topic, expect=2) if m.dedupe_key.startswith(ours)]
    assert len({m.dedupe_key for m in got}) == 1
    assert got[0].subject == "Blocked drain flooding the road"
