"""The web front's durable state, on SQLite and on a real PostgreSQL: every path idempotent."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.base import BrokerUnavailableError
from schemas.inbound import Channel, InboundMessage, Party
from schemas.reference import normalise_reference
from web.intake import InProgressError, IntakeService
from web.store import IntakeStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IntakeStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'web.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = IntakeStore.from_url(url)
    yield opened
    opened.dispose()


class FlakyBroker:
    """Stands in for the publisher's broker: away for the first ``down`` calls, slow if asked."""

    def __init__(self, down: int = 0, delay_s: float = 0.0) -> None:
        self.down = down
        self.delay_s = delay_s
        self.published: list[InboundMessage] = []

    def publish(self, message: InboundMessage) -> None:
        time.sleep(self.delay_s)
        if self.down:
            self.down -= 1
            raise BrokerUnavailableError("broker away")
        self.published.append(message)


def build(key: str) -> Callable[[str], InboundMessage]:
    return lambda ref: InboundMessage(channel=Channel.WEBFORM, sender=Party(email="a@example.com"),
                                      body_text="hello", reference=ref, dedupe_key=key)


def test_references_are_unique_valid_and_recorded(store: IntakeStore) -> None:
    refs = {store.allocate_reference(f"k{i}") for i in range(300)}
    assert len(refs) == 300
    assert all(normalise_reference(r) == r for r in refs)
    assert all(store.reference_issued(r) for r in list(refs)[:20])
    with pytest.raises(Exception, match="(?i)unique|duplicate"), store.engine.begin() as conn:
        conn.execute(text("INSERT INTO intake_references (reference, dedupe_key, issued_at) "
                          "VALUES (:r, 'x', CURRENT_TIMESTAMP)"), {"r": next(iter(refs))})


def test_a_key_is_published_once_across_a_broker_outage(store: IntakeStore) -> None:
    broker = FlakyBroker(down=1)
    intake = IntakeService(store, broker)
    key = f"webform:{uuid.uuid4().hex}"
    with pytest.raises(BrokerUnavailableError):
        intake.submit(key, build(key), "fp")
    first = intake.submit(key, build(key), "fp")
    second = intake.submit(key, build(key), "fp")
    assert not first.duplicate and second.duplicate
    assert first.reference == second.reference
    assert [m.dedupe_key for m in broker.published] == [key]
    assert broker.published[0].reference == first.reference


def test_concurrent_requests_with_one_key_publish_once(store: IntakeStore) -> None:
    broker = FlakyBroker(delay_s=0.5)
    intake = IntakeService(store, broker)
    key = f"sms:{uuid.uuid4().hex}"
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            outcomes.append(intake.submit(key, build(key)).reference)
        except InProgressError:
            outcomes.append("in progress")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(broker.published) == 1
    assert broker.published[0].reference in outcomes


def test_opt_outs_survive_a_restart(store: IntakeStore) -> None:
    phone = f"+44791{uuid.uuid4().int % 10**7:07d}"
    store.set_opt_out(phone, True, "STOP", "SM1")
    store.set_opt_out(phone, True, "STOP", "SM1")  # Twilio retried the STOP
    again = IntakeStore.from_url(str(store.engine.url.render_as_string(hide_password=False)))
    assert again.is_opted_out(phone)
    again.set_opt_out(phone, False, "START", "SM2")
    assert not store.is_opted_out(phone)
    again.dispose()


def test_rate_limit_and_delivery_status_are_counted_once(store: IntakeStore) -> None:
    bucket = f"contact:{uuid.uuid4().hex}"
    now = 1_800_000_000.0
    assert [store.hit(bucket, 3, 3600, now) for _ in range(3)] == [None, None, None]
    wait = store.hit(bucket, 3, 3600, now)
    assert wait is not None and 0 < wait <= 3600
    assert store.hit(bucket, 3, 3600, now + 3600) is None  # a new window
    sid = f"SM{uuid.uuid4().hex}"
    assert store.record_delivery(sid, "sent", None, None)
    assert not store.record_delivery(sid, "sent", None, None)
    assert store.delivery_statuses(sid) == ["sent"]
