"""`frontdoor imap` and `frontdoor smtp` as an operator runs them."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.bus import read_topic
from schemas.inbound import InboundMessage
from schemas.topics import INBOUND
from tests.conftest import ROOT, KafkaHandle, frontdoor
from tests.dovecot import DovecotServer, dovecot_available

pytestmark = pytest.mark.kafka


def env_for(kafka: KafkaHandle, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap, "FRONTDOOR_VAR_DIR": str(tmp_path),
           **extra}
    return env


def inbound_with(kafka: KafkaHandle, subject: str, timeout_s: float = 20) -> list[InboundMessage]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in (InboundMessage.model_validate_json(r.value or b"")
                             for r in read_topic(kafka.bootstrap, INBOUND, timeout_s=3))
                 if m.subject == subject]
        if found:
            return found
        time.sleep(0.5)
    return []


@pytest.mark.imap
@pytest.mark.skipif(dovecot_available() is not None, reason=str(dovecot_available()))
def test_frontdoor_imap_once_reads_the_configured_mailboxes(kafka: KafkaHandle, tmp_path: Path) -> None:
    subject = f"Overgrown hedge {time.time_ns()}"
    with DovecotServer(users=["parks"]) as dovecot:
        msg = EmailMessage()
        msg["From"] = "resident@example.org"
        msg["Subject"] = subject
        msg.set_content("The hedge blocks the pavement.\n")
        dovecot.append("parks", msg.as_bytes())
        config = tmp_path / "imap.toml"
        config.write_text(
            f'[defaults]\nhost = "127.0.0.1"\nport = {dovecot.port}\ntls = false\n'
            'password_env = "PARKS_IMAP_PASSWORD"\n\n'
            '[[mailboxes]]\nname = "parks@council.example.gov.uk"\nuser = "parks"\ndepartment = "parks"\n'
        )
        env = env_for(kafka, tmp_path, FRONTDOOR_IMAP_CONFIG=str(config), PARKS_IMAP_PASSWORD="secret-pw")
        result = frontdoor("imap", "--once", env=env, timeout=120)
        assert result.stdout.strip() == "published 1 message(s)", result.stderr
        assert dovecot.count("parks") == 0
        assert (tmp_path / "imap-state.sqlite").exists()
    (message,) = inbound_with(kafka, subject)
    assert message.source.mailboxes == ["parks@council.example.gov.uk"]
    assert message.source.department_hint == "parks"


def test_frontdoor_imap_without_config_says_what_to_do(kafka: KafkaHandle, tmp_path: Path) -> None:
    env = env_for(kafka, tmp_path)
    env.pop("FRONTDOOR_IMAP_CONFIG", None)
    result = frontdoor("imap", env=env, check=False)
    assert result.returncode == 2
    assert "FRONTDOOR_IMAP_CONFIG is not set" in result.stderr and "Traceback" not in result.stderr


def test_frontdoor_smtp_accepts_mail_for_its_domains(kafka: KafkaHandle, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = env_for(kafka, tmp_path, FRONTDOOR_SMTP_DOMAINS="council.example.gov.uk, other.example.gov.uk")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "frontdoor", "smtp", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        client = None
        while client is None and time.monotonic() < deadline:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=30)
            except OSError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                time.sleep(0.3)
        assert client is not None
        subject = f"Licence renewal {time.time_ns()}"
        msg = EmailMessage()
        msg["From"] = "landlord@example.org"
        msg["To"] = "licensing@other.example.gov.uk"
        msg["Subject"] = subject
        msg.set_content("When does my HMO licence expire?\n")
        with client:
            assert client.send_message(msg) == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.send_message(msg, to_addrs=["someone@gmail.example"])
        (message,) = inbound_with(kafka, subject)
        assert message.source.mailboxes == ["licensing@other.example.gov.uk"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        finally:
            if server.poll() is None:
                server.kill()
            for stream in (server.stdout, server.stderr):
                if stream is not None:
                    stream.close()
    assert server.returncode == 0
