"""``frontdoor twilio reconcile``: the real twilio REST client lists inbound messages, and those
the intake never saw are taken, once.

Twilio's servers are unreachable here: the client's HTTP layer is pointed at a local recording
server that serves canned pages in Twilio's own JSON shapes and records each request (path,
query, credentials), so the test sees exactly what would have been asked of Twilio.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.twilio_sms import parse_webhook, sms_dedupe_key, to_inbound
from ingest.intake import IntakeService
from ingest.intake_store import IntakeStore
from ingest.intake_twilio import reconcile, twilio_client
from schemas.inbound import InboundMessage
from tests.conftest import frontdoor

ACCOUNT = "AC" + "1" * 32
TOKEN = "reconcile-token"
COUNCIL = "+441632960000"
BASE = f"/2010-04-01/Accounts/{ACCOUNT}"


def message(sid: str, body: str, *, direction: str = "inbound", num_media: int = 0) -> dict[str, object]:
    return {"sid": sid, "account_sid": ACCOUNT, "from": "+447911123456", "to": COUNCIL, "body": body,
            "direction": direction, "num_media": str(num_media), "num_segments": "1", "status": "received",
            "messaging_service_sid": None, "date_sent": "Sun, 06 Dec 2026 21:00:00 +0000",
            "uri": f"{BASE}/Messages/{sid}.json"}


MESSAGES = [
    message("SM" + "a" * 32, "The bin on Elm Road was missed, photo attached", num_media=1),
    message("SM" + "b" * 32, "Street light out on Acacia Avenue"),  # the webhook took this one
    message("SM" + "c" * 32, "STOP"),  # Twilio applied the opt-out itself
    message("SM" + "d" * 32, "Thank you, your reference is FD-0000-0000", direction="outbound-api"),
]
MEDIA = {"media_list": [{"sid": "ME" + "e" * 32, "account_sid": ACCOUNT, "parent_sid": "SM" + "a" * 32,
                         "content_type": "image/jpeg", "uri": f"{BASE}/Messages/{'SM' + 'a' * 32}/Media/"
                                                            f"{'ME' + 'e' * 32}.json"}],
         "next_page_uri": None, "page": 0, "page_size": 50, "start": 0, "end": 0, "uri": "x",
         "first_page_uri": "x", "previous_page_uri": None}


class RecordingTwilio(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: RecordingTwilio

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        self.server.requests.append((parts.path, parse_qs(parts.query), auth))
        if parts.path == f"{BASE}/Messages.json":
            body: object = {"messages": MESSAGES, "next_page_uri": None, "page": 0, "page_size": 50,
                            "start": 0, "end": 3, "uri": parts.path, "first_page_uri": parts.path,
                            "previous_page_uri": None}
        elif parts.path == f"{BASE}/Messages/{'SM' + 'a' * 32}/Media.json":
            body = MEDIA
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def twilio_api() -> Iterator[RecordingTwilio]:
    server = RecordingTwilio()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_messages_the_intake_never_saw_are_taken_once(twilio_api: RecordingTwilio, tmp_path: Path) -> None:
    store = IntakeStore.from_url(f"sqlite:///{tmp_path / 'intake.db'}")
    intake = IntakeService(store)
    seen = parse_webhook({"MessageSid": "SM" + "b" * 32, "From": "+447911123456", "To": COUNCIL,
                          "Body": "Street light out on Acacia Avenue"})
    by_webhook = intake.submit(seen.dedupe_key, lambda ref: to_inbound(seen, ref))
    since = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    client = twilio_client(ACCOUNT, TOKEN, twilio_api.url)
    try:
        first = reconcile(client, intake, since=since, to=COUNCIL)
        again = reconcile(client, intake, since=since, to=COUNCIL)
        assert first.as_dict() == {"listed": 3, "ingested": 1, "already_taken": 1, "keywords": 1}
        assert again.as_dict() == {"listed": 3, "ingested": 0, "already_taken": 2, "keywords": 1}

        row = store.get_intake(sms_dedupe_key("SM" + "a" * 32))
        assert row is not None and row.reference == first.references["SM" + "a" * 32]
        taken = InboundMessage.model_validate_json(row.message_json)
        assert (taken.channel, taken.sender.phone) == ("sms", "+447911123456")
        assert "Elm Road" in taken.body_text
        media_url = f"https://api.twilio.com{BASE}/Messages/{'SM' + 'a' * 32}/Media/{'ME' + 'e' * 32}"
        assert taken.source.extra["media_0_url"] == media_url  # what the webhook would have carried
        assert [m.url for m in store.media_for("SM" + "a" * 32)] == [media_url]  # fetched in the background
        webhook_row = store.get_intake(sms_dedupe_key("SM" + "b" * 32))
        assert webhook_row is not None and webhook_row.reference == by_webhook.reference
        assert store.get_intake(sms_dedupe_key("SM" + "c" * 32)) is None  # STOP is no enquiry
        assert store.get_intake(sms_dedupe_key("SM" + "d" * 32)) is None  # our own outbound text

        listing = [r for r in twilio_api.requests if r[0] == f"{BASE}/Messages.json"]
        path, query, auth = listing[0]
        assert query == {"DateSent>": ["2026-12-06T20:00:00Z"], "To": [COUNCIL]}
        assert base64.b64decode(auth.removeprefix("Basic ")).decode() == f"{ACCOUNT}:{TOKEN}"
    finally:
        store.dispose()


def test_the_command_reports_totals_and_what_waits_for_the_broker(twilio_api: RecordingTwilio,
                                                                 tmp_path: Path) -> None:
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path), "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "FRONTDOOR_CONNECT_RETRIES": "1", "FRONTDOOR_TWILIO_ACCOUNT_SID": ACCOUNT,
           "FRONTDOOR_TWILIO_AUTH_TOKEN": TOKEN, "FRONTDOOR_TWILIO_API_BASE": twilio_api.url,
           "FRONTDOOR_DATABASE_URL": f"sqlite:///{tmp_path / 'fd.db'}"}
    frontdoor("db", "upgrade", env=env)  # the references come from the tickets database's allocator
    done = frontdoor("twilio", "reconcile", "--since", "2d", env=env, timeout=120)
    assert json.loads(done.stdout) == {"listed": 3, "ingested": 2, "already_taken": 0, "keywords": 1,
                                       "waiting_for_broker": 2}
    [(_, query, _)] = [r for r in twilio_api.requests if r[0].endswith("/Messages.json")]
    after = datetime.fromisoformat(query["DateSent>"][0].replace("Z", "+00:00"))
    assert timedelta(days=2) - timedelta(minutes=5) < datetime.now(UTC) - after < timedelta(days=2, minutes=5)
    again = frontdoor("twilio", "reconcile", "--since", "2d", env=env, timeout=120)
    assert json.loads(again.stdout)["ingested"] == 0

    wrong = frontdoor("twilio", "reconcile", "--since", "yesterday-ish", env=env, check=False)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "--since" in wrong.stderr
    no_account = frontdoor("twilio", "reconcile", "--since", "1h", check=False,
                           env={**env, "FRONTDOOR_TWILIO_ACCOUNT_SID": ""})
    assert no_account.returncode == 2 and "FRONTDOOR_TWILIO_ACCOUNT_SID" in no_account.stderr
