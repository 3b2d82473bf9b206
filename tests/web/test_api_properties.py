"""Property tests against the JSON endpoints through a real server: every bad request gets a
4xx with a message (never a 500) and nothing partial reaches the stream."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.inbound import InboundMessage
from tests.web.conftest import AGENT_TOKEN, ServerFactory, WebServer

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
plausible = {
    "name": st.text(max_size=40),
    "email": st.sampled_from(["a@example.com", "bad", "", "x@y", "JO@EXAMPLE.COM "]) | st.text(max_size=20),
    "phone": st.sampled_from(["07911 123456", "+44 808 157 0192", "123", ""]) | st.text(max_size=15),
    "postcode": st.sampled_from(["SW1A 1AA", "sw1a1aa", "ZZ", "12345", ""]) | st.text(max_size=10),
    "address": st.text(max_size=60),
    "message": st.text(max_size=80),
    "cc": st.lists(st.sampled_from(["a@example.com", "b@example.org", "nope"]), max_size=12) | json_values,
    "topic": st.sampled_from(["bins", "Council-Tax", "no spaces allowed", ""]) | json_values,
    "extra": json_values,
}
enquiries = st.fixed_dictionaries({}, optional={k: v for k, v in plausible.items()}) | json_values
bodies = st.one_of(
    enquiries.map(lambda v: ("application/json", json.dumps(v).encode())),
    st.binary(max_size=60).map(lambda b: ("application/json", b)),
    st.text(max_size=40).map(lambda t: ("text/plain", t.encode())),
)
keys = st.none() | st.sampled_from(["short", "fine-key-123456", "bad key with spaces", "x" * 300])


def check_answer(response: httpx.Response, accepted: set[str]) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 202:
        accepted.add(body["reference"])
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(body["message"], str) and body["message"]


def test_bad_requests_get_a_4xx_with_a_message_and_nothing_partial_is_published(
        web_server: ServerFactory) -> None:
    server = web_server(form_rate_limit=10_000)
    references: set[str] = set()
    with server.client() as client:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=bodies, key=keys, endpoint=st.sampled_from(["/api/enquiries", "/api/contacts"]))
        def run(body: tuple[str, bytes], key: str | None, endpoint: str) -> None:
            headers = {"Content-Type": body[0], "Authorization": f"Bearer {AGENT_TOKEN}"}
            if key is not None:
                headers["Idempotency-Key"] = key
            check_answer(client.post(endpoint, content=body[1], headers=headers), references)

        run()
        valid = client.post("/api/enquiries", json={"email": "a@example.com", "message": "Pothole"})
        check_answer(valid, references)
    assert valid.status_code == 202
    assert_stream_holds_only(server, references)


def assert_stream_holds_only(server: WebServer, references: set[str]) -> None:
    messages: list[InboundMessage] = server.messages(timeout_s=5)
    assert {m.reference for m in messages} == references
    assert len(messages) == len(references)
    for message in messages:
        assert message.body_text and (message.sender.email or message.sender.phone)


@given(note=st.fixed_dictionaries({
    "resident": st.fixed_dictionaries({}, optional={
        "name": st.text(max_size=10), "phone": st.sampled_from(["07911 123456", "x"])}) | json_values,
    "summary": st.text(max_size=20), "note": st.text(max_size=20),
}, optional={"channel": st.sampled_from(["phone", "face_to_face", "email", ""]),
             "reference": st.sampled_from(["FD-0000-0000", "nope", ""]) | json_values,
             "occurred_at": st.sampled_from(["2026-11-25T10:00:00Z", "yesterday", ""])}))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_agent_notes_never_500(note: dict[str, Any], note_server: WebServer) -> None:
    with note_server.client() as client:
        response = client.post("/api/contacts", json=note, headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert response.status_code in (202, 422), response.text
    assert response.json().get("message") or response.status_code == 202


@pytest.fixture
def note_server(web_server: ServerFactory) -> WebServer:
    return web_server()
