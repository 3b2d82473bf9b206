"""The console served for real: the whole app (uvicorn in a thread) on a migrated tickets
database, accounts made with the real AccountStore and tickets written by the real ticket
stage (TicketWriter) from routed records, as the consumer would."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine

from ingest.intake_store import IntakeStore
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Attachment, InboundMessage
from tests.tickets import factory
from tickets.accounts import AccountStore, SessionPolicy, ThrottlePolicy
from tickets.db import make_engine, upgrade
from tickets.service import TicketWriter
from web.app import create_app
from web.config import WebConfig
from web.console import ConsoleContext
from web.security import CsrfGuard

PASSWORD = "correct horse battery staple"
DEPARTMENTS = {"waste": "Waste and recycling", "highways": "Highways", "housing": "Housing",
               "parking": "Parking", "environmental_health": "Environmental health"}
ACCOUNTS = {
    "agent@council.example.gov.uk": ("agent", ()),
    "supervisor@council.example.gov.uk": ("supervisor", ()),
    "waste.officer@council.example.gov.uk": ("officer", ("waste",)),
    "admin@council.example.gov.uk": ("admin", ()),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ConsoleServer:
    base_url: str
    engine: Engine
    accounts: AccountStore
    blobs: FilesystemBlobStore
    app: Any
    writer: TicketWriter = field(default_factory=TicketWriter)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)

    def receive(self, *messages: Any) -> None:
        """Messages through the ticket stage, as the consumer writes a polled batch."""
        records = [factory.record(m) for m in messages]
        with self.engine.begin() as conn:
            self.writer.write_batch(conn, records, lambda record, exc: None)

    def sign_in(self, client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
        page = client.get("/console/sign-in")
        token = hidden(page.text)["csrf_token"]
        return client.post("/console/sign-in",
                           data={"email": email, "password": password, "csrf_token": token})


def hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


class _Threaded:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


ConsoleFactory = Callable[..., ConsoleServer]


@pytest.fixture
def console_server(tmp_path: Path, migrated_sqlite: Path) -> Iterator[ConsoleFactory]:
    started: list[tuple[_Threaded, Engine, IntakeStore]] = []

    def start(*, database_url: str | None = None, throttle: ThrottlePolicy | None = None,
              sessions: SessionPolicy | None = None, scoping: bool = True) -> ConsoleServer:
        if database_url is None:  # a copy of the session's migrated file
            url = f"sqlite:///{tmp_path / 'tickets.db'}"
            if not (tmp_path / "tickets.db").exists():
                shutil.copyfile(migrated_sqlite, tmp_path / "tickets.db")
        else:
            url = database_url
            upgrade(url)
        engine = make_engine(url)
        accounts = AccountStore(engine, throttle=throttle or ThrottlePolicy(base_delay_s=0.02),
                                sessions=sessions or SessionPolicy())
        for email, (role, departments) in ACCOUNTS.items():
            if accounts.get(email) is None:
                accounts.add_user(email, PASSWORD, role, departments)
        blobs = FilesystemBlobStore(tmp_path / "blobs")
        store = IntakeStore.from_url(f"sqlite:///{tmp_path / 'intake.db'}")
        port = free_port()
        console = ConsoleContext(accounts=accounts, engine=engine, blobs=blobs, csrf=CsrfGuard("test-secret"),
                                 departments=DEPARTMENTS, scoping=scoping)
        app = create_app(WebConfig(public_url=f"http://127.0.0.1:{port}", web_secret="test-secret"),
                         store=store, blobs=blobs, console=console)
        server = _Threaded(app, port)
        server.start()
        started.append((server, engine, store))
        return ConsoleServer(f"http://127.0.0.1:{port}", engine, accounts, blobs, app)

    yield start
    for server, engine, store in reversed(started):
        server.stop()
        engine.dispose()
        store.dispose()


def with_attachment(message: InboundMessage, blobs: FilesystemBlobStore, data: bytes,
                    filename: str) -> InboundMessage:
    ref = blobs.put(data, "application/pdf")
    return message.model_copy(update={"attachments": [Attachment(blob=ref, filename=filename)]})
