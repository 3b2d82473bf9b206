"""A move made in the console is a labelled correction on the events topic (real Kafka): the
console writes it as an audit row, the ticket stage's events relay publishes it."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.bus import KafkaProducerClient, read_topic
from tests.tickets import factory
from tests.web.console_support import ConsoleFactory, hidden
from tickets.events import EventsRelay, decode_events

pytestmark = pytest.mark.kafka


def test_a_move_in_the_console_is_a_correction_on_the_events_topic(console_server: ConsoleFactory, kafka: Any,
                                                                   fresh_topic: str) -> None:
    server = console_server()
    mail = factory.email("ann@example.com", "Fallen tree on Park Road", "A tree is blocking the pavement.",
                         message_id="<tree-1@example.com>")
    server.receive(factory.routed(mail, "highways", confidence=0.62))
    with server.client() as browser:
        server.sign_in(browser, "agent@council.example.gov.uk")
        reference = browser.get("/console/queues/department:highways").text.split("/console/tickets/")[1][:12]
        token = hidden(browser.get(f"/console/tickets/{reference}").text)["csrf_token"]
        moved = browser.post(f"/console/tickets/{reference}/move", data={
            "department": "parking", "mode": "move", "reason": "Trees belong to parks, but this one is on a "
            "parking bay", "csrf_token": token})
        assert moved.status_code == 303
    client = KafkaProducerClient(kafka.bootstrap)
    try:
        EventsRelay(server.engine, lambda t, k, v, h: client.send(t, v, k, h), fresh_topic).drain()
    finally:
        client.close()
    events = decode_events([r.value or b"" for r in read_topic(kafka.bootstrap, fresh_topic, timeout_s=10)])
    [correction] = [e for e in events if e.kind == "corrected"]
    assert correction.reference == reference
    detail = correction.detail
    assert (detail["from_department"], detail["to_department"]) == ("highways", "parking")
    assert correction.detail["confidence"] == 0.62 and correction.detail["model_version"] == "test-1"
    assert correction.detail["reason"].startswith("Trees belong") and correction.actor.startswith("agent@")
