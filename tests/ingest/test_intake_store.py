"""The intake's durable state (the outbox every HTTP channel answers from), on SQLite and on a
real PostgreSQL: every path idempotent, one commit per message with its reference."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

from ingest.intake import IdempotencyConflictError, IntakeService, TableReferenceAllocator
from ingest.intake_store import IntakeStore, references
from schemas.inbound import Channel, InboundMessage, Party
from schemas.reference import normalise_reference


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IntakeStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'web.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = IntakeStore.from_url(url)
    yield opened
    opened.dispose()


def build(key: str, sender: str = "a@example.com") -> Callable[[str], InboundMessage]:
    return lambda ref: InboundMessage(channel=Channel.WEBFORM, sender=Party(email=sender),
                                      body_text="hello", reference=ref, dedupe_key=key)


def test_references_are_unique_valid_and_recorded(store: IntakeStore) -> None:
    allocator = TableReferenceAllocator()
    with store.engine.begin() as conn:
        refs = {allocator.allocate(conn, f"k{i}") for i in range(300)}
    assert len(refs) == 300
    assert all(normalise_reference(r) == r for r in refs)
    assert all(store.reference_issued(r) for r in list(refs)[:20])
    with pytest.raises(Exception, match="(?i)unique|duplicate"), store.engine.begin() as conn:
        conn.execute(text("INSERT INTO intake_references (reference, dedupe_key, issued_at) "
                          "VALUES (:r, 'x', CURRENT_TIMESTAMP)"), {"r": next(iter(refs))})


class ClashingAllocator:
    """The tickets database's allocator stands behind this port: here one that hands out a
    taken reference first, to show a clash inside the intake's transaction is survived."""

    def __init__(self, taken: str) -> None:
        self.taken = taken
        self.calls = 0

    def allocate(self, conn: Connection, dedupe_key: str) -> str:
        self.calls += 1
        inner = TableReferenceAllocator()
        if self.calls == 1:  # the savepoint keeps the outer transaction usable after the clash
            from sqlalchemy.exc import IntegrityError
            try:
                with conn.begin_nested():
                    conn.execute(insert(references).values(reference=self.taken, dedupe_key=dedupe_key,
                                                           issued_at=datetime.now(UTC)))
            except IntegrityError:
                pass
        return inner.allocate(conn, dedupe_key)


def test_a_commit_is_the_answer_and_a_key_is_taken_once(store: IntakeStore) -> None:
    woken: list[int] = []
    intake = IntakeService(store, on_commit=lambda: woken.append(1))
    key = f"webform:{uuid.uuid4().hex}"
    first = intake.submit(key, build(key), "fp")
    second = intake.submit(key, build(key), "fp")
    assert not first.duplicate and second.duplicate
    assert first.reference == second.reference and woken == [1]
    with pytest.raises(IdempotencyConflictError):
        intake.submit(key, build(key), "another request")
    rows = store.unpublished(100)
    assert [(r.dedupe_key, r.reference, r.published) for r in rows if r.dedupe_key == key] == \
        [(key, first.reference, False)]
    count, oldest = store.backlog()
    assert count >= 1 and oldest is not None
    store.mark_published([key])
    assert key not in {r.dedupe_key for r in store.unpublished(100)}
    assert intake.submit(key, build(key), "fp").reference == first.reference  # still answered after


def test_an_injected_allocator_commits_with_the_row(store: IntakeStore) -> None:
    with store.engine.begin() as conn:
        taken = TableReferenceAllocator().allocate(conn, "earlier")
    allocator = ClashingAllocator(taken)
    key = f"sms:{uuid.uuid4().hex}"
    receipt = IntakeService(store, allocator).submit(key, build(key))
    assert receipt.reference != taken and store.reference_issued(receipt.reference)

    class Failing:
        def allocate(self, conn: Connection, dedupe_key: str) -> str:
            conn.execute(insert(references).values(reference="FD-AAAA-AAAA", dedupe_key=dedupe_key,
                                                   issued_at=datetime.now(UTC)))
            raise RuntimeError("the tickets database said no")

    other = f"sms:{uuid.uuid4().hex}"
    with pytest.raises(RuntimeError):
        IntakeService(store, Failing()).submit(other, build(other))
    assert store.get_intake(other) is None and not store.reference_issued("FD-AAAA-AAAA")  # rolled back


def test_concurrent_requests_with_one_key_get_one_reference(store: IntakeStore) -> None:
    intake = IntakeService(store)
    key = f"sms:{uuid.uuid4().hex}"
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda: outcomes.append(intake.submit(key, build(key)).reference))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 4 and len(set(outcomes)) == 1
    assert [r.dedupe_key for r in store.unpublished(1000)].count(key) == 1


def test_the_outbox_keeps_commit_order_and_sets_aside_a_refused_row(store: IntakeStore) -> None:
    intake = IntakeService(store)
    keys = [f"webform:order:{uuid.uuid4().hex}:{i}" for i in range(5)]
    for key in keys:
        intake.submit(key, build(key, "same@example.com"))
    ours = [r.dedupe_key for r in store.unpublished(1000) if r.dedupe_key in keys]
    assert ours == keys
    for _ in range(3):
        store.record_failure(keys[0], "RecordTooLargeError")
    assert keys[0] not in {r.dedupe_key for r in store.unpublished(1000, max_attempts=3)}
    assert (keys[0], 3, "RecordTooLargeError") in store.failures()


def test_one_relay_holds_the_lease(store: IntakeStore) -> None:
    assert store.take_lease("inbound-test", "a", 60)
    assert not store.take_lease("inbound-test", "b", 60)
    assert store.take_lease("inbound-test", "a", 60)  # renewed
    store.drop_lease("inbound-test", "a")
    assert store.take_lease("inbound-test", "b", 0.01)
    time.sleep(0.05)
    assert store.take_lease("inbound-test", "a", 60)  # b's lease ran out


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

    export = tmp_path / "calls.csv"
    # Excel on a UK machine writes Windows-1252; the second C1 row was edited after the first export.
    export.write_bytes("call_id,caller_name,caller_phone,summary,notes\n"
                       "C1,Ann,07911123451,Bins,Missed bin\n"
                       "C1,Ann,07911123451,Bins,Missed bin again - edited\n"
                       "C2,Café owner,07911123452,Licence,Pays £100 a year\n"
                       "C3,Bob,07911123453,Road,Called on 25/11/2030\n".encode("cp1252"))
    report = import_calls(export, IntakeService(store))
    assert (report.ingested, report.already_imported) == (3, 0)
    assert [(bad.line, "different details" in bad.reason) for bad in report.rejected] == [(3, True)]
    committed = [InboundMessage.model_validate_json(r.message_json) for r in store.unpublished(1000)]
    cafe = next(m for m in committed if m.sender.name == "Café owner")
    assert "£100" in cafe.body_text


def test_a_call_in_the_future_is_refused(tmp_path: Path) -> None:
    from connectors.call_notes import BadRow, read_calls

    rows = list(read_calls("call_id,started_at,caller_phone,summary,notes\n"
                           "C9,2030-11-25T10:00:00Z,07911123459,Road,Pothole\n"))
    assert isinstance(rows[0], BadRow) and "future" in rows[0].reason


def test_a_rate_limit_counted_in_the_commit_refuses_without_committing(store: IntakeStore) -> None:
    from functools import partial

    from ingest.intake_store import RateLimitedError

    intake = IntakeService(store)
    bucket = f"api:{uuid.uuid4().hex}"
    gate = partial(store.count_hit, bucket=bucket, limit=2, window_s=3600)
    keys = [f"webform:api:gate-{uuid.uuid4().hex}" for _ in range(3)]
    taken = [intake.submit(k, build(k), gate=gate) for k in keys[:2]]
    with pytest.raises(RateLimitedError) as refused:
        intake.submit(keys[2], build(keys[2]), gate=gate)
    assert 0 < refused.value.retry_after_s <= 3600
    assert store.get_intake(keys[2]) is None  # nothing committed, no reference spent on it
    assert [store.get_intake(k).reference for k in keys[:2]] == [t.reference for t in taken]  # type: ignore[union-attr]
    assert store.hit(bucket, 2, 3600) is not None  # the two taken were counted, the refused one not beyond
