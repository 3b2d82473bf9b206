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


def test_an_overlapping_export_with_an_edited_call_is_reported_not_fatal(store: IntakeStore,
                                                                         tmp_path: Path) -> None:
    from web.call_import import import_calls

    broker = FlakyBroker()
    export = tmp_path / "calls.csv"
    # Excel on a UK machine writes Windows-1252; the second C1 row was edited after the first export.
    export.write_bytes("call_id,caller_name,caller_phone,summary,notes\n"
                       "C1,Ann,07911123451,Bins,Missed bin\n"
                       "C1,Ann,07911123451,Bins,Missed bin again - edited\n"
                       "C2,Café owner,07911123452,Licence,Pays £100 a year\n"
                       "C3,Bob,07911123453,Road,Called on 25/11/2030\n".encode("cp1252"))
    report = import_calls(export, IntakeService(store, broker))
    assert (report.ingested, report.already_imported) == (3, 0)
    assert [(bad.line, "different details" in bad.reason) for bad in report.rejected] == [(3, True)]
    cafe = next(m for m in broker.published if m.sender.name == "Café owner")
    assert "£100" in cafe.body_text


def test_a_call_in_the_future_is_refused(tmp_path: Path) -> None:
    from connectors.call_notes import BadRow, read_calls

    rows = list(read_calls("call_id,started_at,caller_phone,summary,notes\n"
                           "C9,2030-11-25T10:00:00Z,07911123459,Road,Pothole\n"))
    assert isinstance(rows[0], BadRow) and "future" in rows[0].reason
