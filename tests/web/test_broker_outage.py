"""The broker stops in the middle of the day: every channel answers 503 (so its sender
retries), and once the broker is back the same retries are taken exactly once."""

from __future__ import annotations

import gc
import time
import uuid
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from ingest.admin import broker_answers
from tests.web.conftest import REFERENCE, TWILIO_TOKEN, ServerFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


# kafka-python does not close the sockets of connection attempts refused while the broker is down.
@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
def test_503_while_the_broker_is_away_then_each_retry_is_taken_once(web_server: ServerFactory,
                                                                     kafka: Any) -> None:
    server = web_server()
    key = f"outage-{uuid.uuid4().hex}"
    payload = {"email": "resident@example.com", "message": "Fly-tipping behind the shops"}
    sms = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": "+447911123456", "To": "+441632960000",
           "Body": "Dead fox on the pavement", "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        server.settings.public_url + "/webhooks/twilio/sms", sms)

    def send_all() -> tuple[Any, Any]:
        with server.client() as client:
            api = client.post("/api/enquiries", json=payload, headers={"Idempotency-Key": key})
            text = client.post("/webhooks/twilio/sms", data=sms, headers={"X-Twilio-Signature": signature})
        return api, text

    with server.client() as client:  # the producer is connected before the outage
        warm = client.post("/api/enquiries", json={**payload, "message": "warm-up"})
        assert warm.status_code == 202

    kafka.stop()
    try:
        api, text = send_all()
        assert api.status_code == 503 and int(api.headers["Retry-After"]) > 0
        assert "try again" in api.json()["message"]
        assert text.status_code == 503
    finally:
        kafka.start()
    deadline = time.monotonic() + 60
    while not broker_answers(kafka.bootstrap) and time.monotonic() < deadline:
        time.sleep(0.5)

    for _ in range(20):  # the producer reconnects within a few tries
        api, text = send_all()
        if api.status_code == 202 and text.status_code == 200:
            break
        time.sleep(1)
    assert api.status_code == 202, api.text
    assert text.status_code == 200 and REFERENCE.search(text.text)
    again_api, again_text = send_all()
    assert again_api.json()["reference"] == api.json()["reference"]
    assert REFERENCE.search(again_text.text).group(0) == REFERENCE.search(text.text).group(0)  # type: ignore[union-attr]

    messages = server.messages()
    keys = sorted(m.dedupe_key for m in messages if m.body_text != "warm-up")
    assert keys == sorted([f"webform:api:{key}", f"sms:{sms['MessageSid']}"])
    gc.collect()  # kafka-python's refused connection attempts leave unclosed sockets behind
