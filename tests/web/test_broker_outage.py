"""The broker stops in the middle of the day: every HTTP channel still answers at once with a
reference (the message is committed in the intake outbox), and once the broker is back the
relay puts each message on the stream exactly once, in order per sender, with nothing resent
by any client."""

from __future__ import annotations

import gc
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from ingest.admin import broker_answers
from tests.web.conftest import AGENT_TOKEN, REFERENCE, TWILIO_TOKEN, ServerFactory, WebServer, form_tokens

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RESIDENT = "+447911123456"


def signed_sms(server: WebServer, client: httpx.Client, body: str) -> tuple[str, httpx.Response]:
    sid = f"SM{uuid.uuid4().hex}"
    params = {"MessageSid": sid, "From": RESIDENT, "To": "+441632960000", "Body": body, "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        server.settings.public_url + "/webhooks/twilio/sms", params)
    return sid, client.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})


def backlog_metric(client: httpx.Client) -> float:
    found = re.search(r"^frontdoor_intake_backlog (\S+)$", client.get("/metrics/").text, re.M)
    assert found, "the relay's backlog is not exported"
    return float(found.group(1))


# kafka-python does not close the sockets of connection attempts refused while the broker is down.
@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
def test_every_channel_answers_during_an_outage_and_each_message_reaches_the_stream_once(
        web_server: ServerFactory, kafka: Any) -> None:
    server = web_server()
    with server.client() as client:  # the producer is connected before the outage
        warm = client.post("/api/enquiries", json={"email": "w@example.com", "message": "warm-up"})
        assert warm.status_code == 202
    server.published(30)

    kafka.stop()
    taken: dict[str, str] = {}  # dedupe key -> the reference its sender was given
    sms_order: list[str] = []
    try:
        with server.client() as client:
            for i in range(3):  # one resident texting three times: their order must hold
                started = time.monotonic()
                sid, answer = signed_sms(server, client, f"Dead fox on the pavement, message {i}")
                assert answer.status_code == 200, answer.text
                assert time.monotonic() - started < 5  # TwiML at once: Twilio's own timeout is 15 s
                row = server.store.get_intake(f"sms:{sid}")  # committed before the answer
                assert row is not None
                taken[f"sms:{sid}"] = row.reference
                sms_order.append(f"sms:{sid}")
            for i in range(2):
                key = f"outage-{uuid.uuid4().hex}"
                api = client.post("/api/enquiries", headers={"Idempotency-Key": key},
                                  json={"email": f"api{i}@example.com", "message": f"Fly-tipping {i}"})
                assert api.status_code == 202, api.text
                taken[f"webform:api:{key}"] = api.json()["reference"]
            note = client.post("/api/contacts", headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
                               json={"resident": {"name": "Mrs Patel", "phone": "07911 123457"},
                                     "summary": "Missed bin", "note": "Called during the outage",
                                     "channel": "phone", "note_id": f"crm-{uuid.uuid4().hex[:8]}"})
            assert note.status_code == 202, note.text
            tokens = form_tokens(client.get("/contact").text)
            page = client.post("/contact", data={**tokens, "email": "form@example.com", "website": "",
                                                 "message": "Street light out on Acacia Avenue"})
            assert page.status_code == 200, page.text
            form_reference = REFERENCE.search(page.text).group(0)  # type: ignore[union-attr]
            assert backlog_metric(client) >= 7  # three texts, two API enquiries, a note, a form
    finally:
        kafka.start()
    deadline = time.monotonic() + 60
    while not broker_answers(kafka.bootstrap) and time.monotonic() < deadline:
        time.sleep(0.5)

    server.published(90)  # the relay publishes as soon as the broker answers: no client resends
    with server.client() as client:
        assert backlog_metric(client) == 0
    messages = [m for m in server.messages() if m.body_text != "warm-up"]
    by_key: dict[str, list[str]] = {}
    for message in messages:
        by_key.setdefault(message.dedupe_key, []).append(message.reference or "")
    assert len(messages) == 7 and all(len(refs) == 1 for refs in by_key.values())  # each exactly once
    for key, reference in taken.items():
        assert by_key[key] == [reference]  # the reference the sender was told
    assert form_reference in {refs[0] for refs in by_key.values()}
    assert any(m.channel == "phone" for m in messages)
    assert [m.dedupe_key for m in messages if m.dedupe_key in sms_order] == sms_order  # in order per sender
    gc.collect()  # kafka-python's refused connection attempts leave unclosed sockets behind
