"""Fixtures for the outbound tests: a tickets database at head (SQLite, and PostgreSQL where a
test asks for ``any_engine``), tickets to acknowledge, and the local peers standing in for the
council's relay (a real aiosmtpd server), Twilio and GOV.UK Notify (recording HTTP servers:
their real services are unreachable from here)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from outbound.bench import RecordingApi, RecordingRelay
from schemas.inbound import Channel, InboundMessage, Party, Source, Threading
from schemas.reference import new_reference
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tickets import db
from tickets.models import Ticket
from tickets.outbox import OutboxPolicy, _now

POLICY = OutboxPolicy(public_url="https://contact.council.example.gov.uk",
                      mail_from="enquiries@council.example.gov.uk",
                      council_domains=("council.example.gov.uk",), ack_rate_per_hour=3,
                      twilio_from="+447700900999")
COUNCIL_NUMBER = "+447700900000"


@dataclass(frozen=True)
class TicketRef:
    id: int
    reference: str


@pytest.fixture
def engine(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Engine]:
    """The tickets database at head on SQLite (a copy of the session's migrated file)."""
    path = tmp_path / "tickets.db"
    shutil.copyfile(migrated_sqlite, path)
    engine = db.make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The tickets database at head on SQLite, then on PostgreSQL (copies of the session's
    migrated databases: running every migration per test cost a second a test on PostgreSQL)."""
    if request.param == "sqlite":
        engine = request.getfixturevalue("engine")
        yield engine
        return
    server = request.getfixturevalue("postgres_url")
    url = fresh_postgres_database(server, template=request.getfixturevalue("migrated_postgres"))
    engine = db.make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_postgres_database(server, url)


def new_ticket(engine: Engine, channel: str = "email") -> TicketRef:
    reference = new_reference()
    with engine.begin() as conn:
        ticket_id = conn.execute(insert(Ticket).values(
            reference=reference, channel=channel, status="new", created_at=_now(), updated_at=_now(),
        ).returning(Ticket.id)).scalar_one()
    return TicketRef(ticket_id, reference)


def email_in(sender: str = "resident@example.org", subject: str = "Bins not collected", *,
             message_id: str = "<first@example.org>", name: str | None = "Sam Resident",
             **kwargs: object) -> InboundMessage:
    return InboundMessage(channel=Channel.EMAIL, sender=Party(email=sender, name=name),
                          to=[Party(email="waste@council.example.gov.uk")], subject=subject,
                          body_text="Our bins were not collected on Monday.",
                          threading=Threading(message_id=message_id, references=["<older@example.org>"]),
                          dedupe_key=f"email:{message_id}", **kwargs)  # type: ignore[arg-type]


def sms_in(sender: str = "+447700900123", *, opted_out: bool = False) -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender=Party(phone=sender), to=[Party(phone=COUNCIL_NUMBER)],
                          body_text="Streetlight out on Elm Road",
                          source=Source(twilio_sid="SMin1",
                                        extra={"sms_opted_out": "true"} if opted_out else {}),
                          dedupe_key="sms:SMin1")


@pytest.fixture(scope="session")
def relay_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    where = tmp_path_factory.mktemp("relay-tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


RELAY_USER, RELAY_PASSWORD = "frontdoor", "relay-secret"


@pytest.fixture
def tls_relay(relay_cert: tuple[Path, Path]) -> Iterator[RecordingRelay]:
    """The council's relay as a real aiosmtpd server: STARTTLS required, then AUTH."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = relay_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert), str(key))

    def authenticate(server: object, session: object, envelope: object, mechanism: str,
                     auth_data: object) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == RELAY_USER.encode() \
            and auth_data.password == RELAY_PASSWORD.encode()
        return AuthResult(success=ok)

    with RecordingRelay(tls_context=server_ctx, require_starttls=True, authenticator=authenticate,
                        auth_required=True, auth_require_tls=True) as relay:
        yield relay


@pytest.fixture
def plain_relay() -> Iterator[RecordingRelay]:
    with RecordingRelay() as relay:
        yield relay


@pytest.fixture
def api() -> Iterator[RecordingApi]:
    with RecordingApi() as server:
        yield server
