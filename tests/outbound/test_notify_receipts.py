"""GOV.UK Notify's delivery receipts reach the outbox row through the running web app
(``/webhooks/notify/receipts``), in the shape Notify posts them (notifications-api's
``send_delivery_status_to_service``: JSON with the bearer token the council registered)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from outbound.bench import RecordingApi
from outbound.rendering import TemplateSet
from outbound.senders import NotifySender
from outbound.stage import OutboxSender
from tests.outbound.conftest import email_in, new_ticket, sms_in
from tests.outbound.test_providers import NOTIFY_KEY, POLICY, TEMPLATES
from tests.web.conftest import ServerFactory, WebServer, web_server  # noqa: F401 - the running app fixture
from tickets import outbox
from tickets.outbox import OutboxRow, OutboxStatus, queue_acknowledgement

pytestmark = pytest.mark.kafka

TOKEN = "notify-callback-9b1f2c7e"  # what the council typed in beside the callback URL


def sent_by_notify(engine: Engine, api: RecordingApi, *, sms: bool = False) -> OutboxRow:
    """One acknowledgement sent through the real Notify client to the recording API."""
    ticket = new_ticket(engine, "sms" if sms else "email")
    message = sms_in("+447700900456") if sms else email_in(sender="sam@example.org")
    with engine.begin() as conn:
        row = queue_acknowledgement(conn, ticket, message, secret="s", policy=POLICY)
    assert row is not None
    notify = NotifySender(NOTIFY_KEY, TEMPLATES, base_url=api.url)
    assert OutboxSender(engine, TemplateSet(), email=notify, sms=notify).send(row.id) is OutboxStatus.SENT
    with engine.connect() as conn:
        sent = outbox.get(conn, row.id)
    assert sent is not None and sent.provider_id
    return sent


def receipt(row: OutboxRow, status: str, *, notification_id: str | None = None) -> dict[str, Any]:
    return {"id": notification_id or row.provider_id, "reference": row.idempotency_key, "to": row.recipient,
            "status": status, "created_at": "2026-12-07T10:00:00.000000Z",
            "completed_at": "2026-12-07T10:00:05.000000Z", "sent_at": "2026-12-07T10:00:01.000000Z",
            "notification_type": row.channel.value, "template_id": "t-ack-email", "template_version": 1}


def post(server: WebServer, body: dict[str, Any], token: str | None = TOKEN) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with server.client() as client:
        return client.post("/webhooks/notify/receipts", content=json.dumps(body), headers=headers).status_code


def status_of(engine: Engine, row: OutboxRow) -> tuple[OutboxStatus, dict[str, str]]:
    with engine.connect() as conn:
        now = outbox.get(conn, row.id)
        marked = outbox.undeliverable_addresses(conn, [row.recipient])
    assert now is not None
    return now.status, marked


def test_receipts_move_the_row_and_a_permanent_failure_marks_the_address(
        engine: Engine, api: RecordingApi, web_server: ServerFactory) -> None:  # noqa: F811
    server = web_server(database_url=engine.url.render_as_string(hide_password=False),
                        notify_callback_token=TOKEN)
    delivered, failed = sent_by_notify(engine, api), sent_by_notify(engine, api, sms=True)
    assert post(server, receipt(delivered, "delivered")) == 204
    assert post(server, receipt(failed, "permanent-failure")) == 204
    assert status_of(engine, delivered) == (OutboxStatus.DELIVERED, {})
    assert status_of(engine, failed) == (OutboxStatus.FAILED, {"+447700900456": "Notify permanent-failure"})
    # a late or repeated receipt never moves a row back
    assert post(server, receipt(delivered, "temporary-failure")) == 204
    assert status_of(engine, delivered) == (OutboxStatus.DELIVERED, {})


def test_a_temporary_failure_fails_the_row_but_keeps_the_address(
        engine: Engine, api: RecordingApi, web_server: ServerFactory) -> None:  # noqa: F811
    server = web_server(database_url=engine.url.render_as_string(hide_password=False),
                        notify_callback_token=TOKEN)
    row = sent_by_notify(engine, api)
    assert post(server, receipt(row, "temporary-failure")) == 204
    assert status_of(engine, row) == (OutboxStatus.FAILED, {})


def test_a_receipt_for_a_row_whose_send_was_not_recorded_lands_by_reference(
        engine: Engine, web_server: ServerFactory) -> None:  # noqa: F811
    """The sender crashed after Notify accepted the message: the row is ``sending`` without
    Notify's id; the receipt finds it by the reference we gave Notify and records the id."""
    server = web_server(database_url=engine.url.render_as_string(hide_password=False),
                        notify_callback_token=TOKEN)
    ticket = new_ticket(engine)
    with engine.begin() as conn:
        queued = queue_acknowledgement(conn, ticket, email_in(sender="kim@example.org"), secret="s",
                                       policy=POLICY)
        assert queued is not None
        claimed = outbox.claim(conn, queued.id, lease_s=60)
    assert claimed is not None and claimed.status is OutboxStatus.SENDING
    notify_id = "740e5834-3a29-46b4-9a6f-16142fde533a"
    assert post(server, receipt(claimed, "delivered", notification_id=notify_id)) == 204
    with engine.connect() as conn:
        row = outbox.get(conn, queued.id)
    assert row is not None and row.status is OutboxStatus.DELIVERED and row.provider_id == notify_id


def test_receipts_without_the_token_change_nothing(
        engine: Engine, api: RecordingApi, web_server: ServerFactory) -> None:  # noqa: F811
    server = web_server(database_url=engine.url.render_as_string(hide_password=False),
                        notify_callback_token=TOKEN)
    row = sent_by_notify(engine, api)
    assert post(server, receipt(row, "permanent-failure"), token=None) == 401
    assert post(server, receipt(row, "permanent-failure"), token="notify-callback-wrong") == 401
    assert post(server, receipt(row, "permanent-failure"), token=TOKEN[:-1]) == 401
    assert status_of(engine, row) == (OutboxStatus.SENT, {})
    assert post(server, {"status": "delivered"}) == 400  # not a receipt: Notify does not retry a 4xx
    assert post(server, receipt(row, "delivered", notification_id="not-ours")
                | {"reference": "not-ours-either"}) == 204  # nothing to do, nothing to retry
    assert status_of(engine, row) == (OutboxStatus.SENT, {})


def test_without_a_configured_token_every_receipt_is_refused(
        engine: Engine, api: RecordingApi, web_server: ServerFactory) -> None:  # noqa: F811
    server = web_server(database_url=engine.url.render_as_string(hide_password=False))
    row = sent_by_notify(engine, api)
    assert post(server, receipt(row, "delivered"), token="anything-at-all") == 403
    assert status_of(engine, row) == (OutboxStatus.SENT, {})
