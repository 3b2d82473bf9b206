"""The web app served for real: uvicorn on a loopback port in a thread, httpx as the client,
its intake relay publishing to a topic of the test's own on the session's real broker."""

from __future__ import annotations

import gc
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ingest.bus import KafkaPublisher, read_topic
from ingest.intake_relay import IntakeRelay
from ingest.intake_store import IntakeStore
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import InboundMessage
from web.app import create_app
from web.config import WebConfig

TWILIO_TOKEN = "test-twilio-auth-token"
AGENT_TOKEN = "agent-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WebServer:
    base_url: str
    settings: WebConfig
    store: IntakeStore
    blobs: FilesystemBlobStore
    topic: str
    bootstrap: str
    relay: IntakeRelay

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60, **kwargs)

    def messages(self, expect: int | None = None, timeout_s: float = 10.0) -> list[InboundMessage]:
        """What is on the stream once the relay has published everything the app took."""
        self.published(timeout_s)
        records = read_topic(self.bootstrap, self.topic, timeout_s=timeout_s, expect=expect)
        return [InboundMessage.model_validate_json(r.value or b"") for r in records]


    def published(self, timeout_s: float = 10.0) -> None:
        """Wait until Kafka acknowledged every row the app committed (the relay's backlog is 0)."""
        deadline = time.monotonic() + timeout_s
        while self.store.backlog()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.store.backlog()[0] == 0, f"the relay left {self.store.backlog()[0]} rows unpublished"


class ThreadedServer:
    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                proxy_headers=False)  # as frontdoor web: the app judges X-Forwarded-For
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


ServerFactory = Callable[..., WebServer]


@pytest.fixture
def web_server(kafka: Any, fresh_topic: str, tmp_path: Path) -> Iterator[ServerFactory]:
    """Call it (optionally with settings overrides) to get a running app; stopped after the test."""
    stack: list[tuple[ThreadedServer, KafkaPublisher, IntakeStore]] = []

    def start(database_url: str | None = None, **overrides: Any) -> WebServer:
        port = free_port()
        values: dict[str, Any] = {
            "public_url": f"http://127.0.0.1:{port}",
            "twilio_auth_token": TWILIO_TOKEN,
            "twilio_account_sid": "AC" + "0" * 32,
            "agent_tokens": f"sam={AGENT_TOKEN}",
            "web_secret": "test-secret",
            **overrides,
        }
        config = WebConfig(**values)
        blobs = FilesystemBlobStore(tmp_path / "blobs")
        store = IntakeStore.from_url(database_url or f"sqlite:///{tmp_path / 'web.db'}")
        publisher = KafkaPublisher(kafka.bootstrap, blobs, topic=fresh_topic, delivery_timeout_s=5.0)
        relay = IntakeRelay(store, publisher, retry_s=0.5, poll_s=0.2)
        app = create_app(config, store=store, blobs=blobs, relay=relay, media_backoff_s=0.05)
        server = ThreadedServer(app, port).__enter__()
        stack.append((server, publisher, store))
        return WebServer(f"http://127.0.0.1:{port}", config, store, blobs, fresh_topic, kafka.bootstrap,
                         relay)

    yield start
    with warnings.catch_warnings():
        # kafka-python leaves the sockets of connection attempts refused while a broker was
        # down to the garbage collector; collect them here rather than in a later test.
        warnings.filterwarnings("ignore", "unclosed <socket", ResourceWarning)
        for server, publisher, store in reversed(stack):
            server.__exit__()
            publisher.close()
            store.dispose()
        stack.clear()
        gc.collect()


def form_tokens(html: str) -> dict[str, str]:
    """The hidden fields a browser would send back (CSRF token, submission id, topic)."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


REFERENCE = re.compile(r"FD-[0-9A-Z]{4}-[0-9A-Z]{4}")


from tests.web.console_support import console_server  # noqa: E402, F401  (the console's fixture)
