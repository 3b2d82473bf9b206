"""Twilio's status callback, signed with twilio's own RequestValidator, reaches the outbox row
through the web app's existing webhook (``/webhooks/twilio/status``)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from outbound.bench import RecordingApi
from tests.outbound.test_providers import queue_sms_ack, twilio_stage
from tests.web.conftest import ServerFactory, web_server  # noqa: F401 - the running app fixture
from tests.web.test_twilio_webhook import post_signed
from tickets import outbox
from tickets.outbox import OutboxStatus

pytestmark = pytest.mark.kafka


def test_signed_status_callbacks_update_the_row_and_forged_ones_do_not(
        engine: Engine, api: RecordingApi, web_server: ServerFactory) -> None:  # noqa: F811
    server = web_server(database_url=engine.url.render_as_string(hide_password=False))
    outbox_id = queue_sms_ack(engine, "+441632960111")
    twilio_stage(engine, api).send(outbox_id)
    with engine.connect() as conn:
        sid = (outbox.get(conn, outbox_id) or pytest.fail("no row")).provider_id
    assert sid is not None
    callback = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30006",
                "To": "+441632960111", "From": "+447700900000", "AccountSid": "AC" + "1" * 32}
    assert post_signed(server, "/webhooks/twilio/status", callback, token="forged").status_code == 403
    with engine.connect() as conn:
        assert (outbox.get(conn, outbox_id) or pytest.fail("no row")).status is OutboxStatus.SENT
    assert post_signed(server, "/webhooks/twilio/status", callback).status_code == 204
    with engine.connect() as conn:
        row = outbox.get(conn, outbox_id)
        marked = outbox.undeliverable_addresses(conn, ["+441632960111"])
    assert row is not None and row.status is OutboxStatus.FAILED
    assert marked == {"+441632960111": "Twilio undelivered (error 30006)"}
