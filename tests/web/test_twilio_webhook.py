"""Twilio webhooks against the real app and broker, signed with twilio's own RequestValidator."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.web.conftest import REFERENCE, TWILIO_TOKEN, ServerFactory, WebServer

pytestmark = pytest.mark.kafka

RESIDENT = "+447911123456"
COUNCIL = "+441632960000"


def sms_params(body: str, sid: str | None = None, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid or f"SM{uuid.uuid4().hex}", "AccountSid": "AC" + "0" * 32,
            "From": RESIDENT, "To": COUNCIL, "Body": body, "NumMedia": "0", "NumSegments": "1", **extra}


def post_signed(server: WebServer, path: str, params: dict[str, str], token: str = TWILIO_TOKEN,
                signed_params: dict[str, str] | None = None) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(
        server.settings.public_url + path, signed_params if signed_params is not None else params)
    with server.client() as client:
        return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def test_signed_message_is_taken_with_its_reference_and_answered_without_a_second_text(
        web_server: ServerFactory) -> None:
    server = web_server()
    long_body = ("The bins on Acacia Avenue were not collected this week and the street is full of "
                 "rubbish bags that foxes have torn open. ") * 12  # ~1,200 characters: 8 segments
    params = sms_params(long_body, NumSegments="8")
    response = post_signed(server, "/webhooks/twilio/sms", params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    # no <Message>: the outbound stage sends the one acknowledgement (reference + tracking link)
    # when this opens a ticket, so the resident never gets two texts for one message
    assert "<Message>" not in response.text
    row = server.store.get_intake(f"sms:{params['MessageSid']}")
    assert row is not None and REFERENCE.fullmatch(row.reference)
    [message] = server.messages(expect=1)
    assert message.reference == row.reference
    assert message.channel == "sms"
    assert message.dedupe_key == f"sms:{params['MessageSid']}"
    assert message.sender.phone == RESIDENT
    assert message.body_text == long_body
    assert message.source.extra["num_segments"] == "8"
    assert server.store.reference_issued(message.reference or "")


def test_forged_and_replayed_requests_are_refused_and_publish_nothing(web_server: ServerFactory) -> None:
    server = web_server()
    params = sms_params("Pothole outside number 12")
    forged = post_signed(server, "/webhooks/twilio/sms", params, token="not-the-token")
    assert forged.status_code == 403
    unsigned_client = server.client()
    with unsigned_client:
        assert unsigned_client.post("/webhooks/twilio/sms", data=params).status_code == 403
    # A captured genuine signature replayed with a changed body.
    replayed = post_signed(server, "/webhooks/twilio/sms", {**params, "Body": "Send me everything"},
                           signed_params=params)
    assert replayed.status_code == 403
    assert server.messages(timeout_s=3) == []
    genuine = post_signed(server, "/webhooks/twilio/sms", params)
    assert genuine.status_code == 200
    assert len(server.messages(expect=1)) == 1


def test_a_retried_message_sid_gets_the_same_reference_and_one_record(web_server: ServerFactory) -> None:
    server = web_server()
    params = sms_params("Street light out on Mill Lane")
    first = post_signed(server, "/webhooks/twilio/sms", params)
    second = post_signed(server, "/webhooks/twilio/sms", params)
    assert first.status_code == second.status_code == 200
    messages = server.messages()
    assert [m.dedupe_key for m in messages] == [f"sms:{params['MessageSid']}"]


def test_stop_means_no_reply_but_the_enquiry_still_arrives(web_server: ServerFactory) -> None:
    server = web_server()
    stop = post_signed(server, "/webhooks/twilio/sms", sms_params(" Stop "))
    assert stop.status_code == 200
    assert "<Message" not in stop.text
    assert server.store.is_opted_out(RESIDENT)

    after = post_signed(server, "/webhooks/twilio/sms", sms_params("But my bin is still not emptied"))
    assert after.status_code == 200
    assert "<Message" not in after.text  # nothing is ever sent to an opted-out number
    help_reply = post_signed(server, "/webhooks/twilio/sms", sms_params("HELP"))
    assert "<Message" not in help_reply.text
    [message] = server.messages(expect=1)
    assert message.body_text == "But my bin is still not emptied"
    assert message.reference
    assert message.source.extra["sms_opted_out"] == "true"

    for synonym in ("UNSUBSCRIBE", "quit.", "StopAll", "cancel", "END"):
        post_signed(server, "/webhooks/twilio/sms", sms_params("START"))
        assert not server.store.is_opted_out(RESIDENT)
        post_signed(server, "/webhooks/twilio/sms", sms_params(synonym))
        assert server.store.is_opted_out(RESIDENT), synonym

    start = post_signed(server, "/webhooks/twilio/sms", sms_params("unstop"))
    assert "<Message>" in start.text
    taken = post_signed(server, "/webhooks/twilio/sms", sms_params("Thanks, one more thing"))
    assert taken.status_code == 200 and "<Message>" not in taken.text  # the ticket stage acknowledges


class MediaHost:
    """A stand-in for Twilio's media URLs: fails once, then serves the image (basic auth recorded)."""

    def __init__(self) -> None:
        self.calls: list[str | None] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                host.calls.append(self.headers.get("Authorization"))
                if len(host.calls) == 1:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = b"\x89PNG\r\n\x1a\n" + b"picture of a pothole"
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def media_host() -> Iterator[MediaHost]:
    host = MediaHost()
    host.thread.start()
    yield host
    host.httpd.shutdown()
    host.httpd.server_close()


def test_mms_media_are_kept_by_reference_and_fetched_with_retries(web_server: ServerFactory,
                                                                  media_host: MediaHost) -> None:
    server = web_server()
    url = f"{media_host.url}/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1"
    params = sms_params("Photo of the pothole", NumMedia="1", MediaUrl0=url, MediaContentType0="image/png")
    response = post_signed(server, "/webhooks/twilio/sms", params)
    assert response.status_code == 200
    [message] = server.messages(expect=1)
    assert message.source.extra["media_0_url"] == url
    assert message.source.extra["media_0_type"] == "image/png"
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        [row] = server.store.media_for(params["MessageSid"])
        if row.sha256:
            break
        time.sleep(0.1)
    assert row.sha256, row
    assert row.attempts == 2  # one 503, then fetched
    with server.blobs.path_for(row.sha256).open("rb") as fh:
        assert fh.read().endswith(b"picture of a pothole")
    expected = "Basic " + base64.b64encode(f"AC{'0' * 32}:{TWILIO_TOKEN}".encode()).decode()
    assert media_host.calls == [expected, expected]


def test_delivery_status_callbacks_are_recorded_once_and_must_be_signed(web_server: ServerFactory) -> None:
    server = web_server()
    status = {"MessageSid": "SMout1", "MessageStatus": "delivered", "To": RESIDENT, "From": COUNCIL}
    sent = {**status, "MessageStatus": "sent"}
    assert post_signed(server, "/webhooks/twilio/status", sent).status_code == 204
    assert post_signed(server, "/webhooks/twilio/status", status).status_code == 204
    assert post_signed(server, "/webhooks/twilio/status", status).status_code == 204
    assert post_signed(server, "/webhooks/twilio/status", {**status, "MessageStatus": "failed"},
                       token="forged").status_code == 403
    assert server.store.delivery_statuses("SMout1") == ["sent", "delivered"]
