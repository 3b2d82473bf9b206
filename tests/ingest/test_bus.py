"""The stream on a real broker: round trips, crash-safe commits, dead letters, big bodies."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.bus import DeadLetterWriter, KafkaProducerClient, KafkaPublisher, Record, read_topic
from ingest.consumer import ConsumerLoop
from ingest.errors import PoisonMessageError
from ingest.serde import decode_inbound, encode_inbound, load_body
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import (
    Attachment,
    BlobRef,
    Channel,
    InboundMessage,
    Party,
    Source,
    Threading,
)
from tests.conftest import KafkaHandle
from tests.processes import Processes

pytestmark = pytest.mark.kafka


def channel_shapes(blob: BlobRef) -> list[InboundMessage]:
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    return [
        InboundMessage(
            channel=Channel.EMAIL, received_at=when,
            sender=Party(name="Jane Doe", email="Jane.Doe@Example.org"),
            to=[Party(email="waste@council.example.gov.uk"), Party(email="highways@council.example.gov.uk")],
            cc=[Party(name="Cllr Smith", email="cllr.smith@council.example.gov.uk")],
            subject="Fly-tipping on Mill Lane", body_text="Sofa dumped.\n\n> earlier text",
            body_trimmed="Sofa dumped.", body_html="<p>Sofa dumped.</p>",
            attachments=[Attachment(blob=blob, filename="photo.jpg", inline=False)],
            raw=blob,
            threading=Threading(message_id="<a1@example.org>", in_reply_to="<a0@example.org>",
                                references=["<a0@example.org>"], reference="FD-PE5H-GYDK"),
            source=Source(mailboxes=["waste", "highways"], department_hint="waste"),
            dedupe_key="email:<a1@example.org>",
        ),
        InboundMessage(
            channel=Channel.SMS, received_at=when, sender=Party(phone="+447700900123"),
            body_text="bin not emptied again!!", source=Source(twilio_sid="SM" + "a" * 32),
            reference="FD-PE5H-GYDK", dedupe_key="sms:SM" + "a" * 32,
        ),
        InboundMessage(
            channel=Channel.WEBFORM, received_at=when,
            sender=Party(name="Sam", email="sam@example.org", postcode="LS6 2AB", address="1 High St"),
            cc=[Party(email="neighbour@example.org")], body_text="Pothole outside number 4",
            source=Source(form_id="contact", topic_hint="roads"), dedupe_key="webform:key-1",
        ),
        InboundMessage(
            channel=Channel.PHONE, received_at=when, sender=Party(name="Mr Patel", phone="+441632960001"),
            subject="Missed bin", body_text="Cust called re missed bin, adv 48hrs",
            source=Source(agent="agent-7", note_id="n-1"), dedupe_key="phone:n-1",
        ),
        InboundMessage(
            channel=Channel.FACE_TO_FACE, received_at=when, sender=Party(name="Ms Jones"),
            body_text="Visited reception about housing repair", source=Source(agent="desk-2", note_id="n-2"),
            dedupe_key="face_to_face:n-2",
        ),
    ]


def test_every_channel_shape_round_trips(kafka: KafkaHandle, fresh_topic: str,
                                         blob_store: FilesystemBlobStore) -> None:
    blob = blob_store.put(b"\xff\xd8 a photo", "image/jpeg")
    shapes = channel_shapes(blob)
    publisher = KafkaPublisher(kafka.bootstrap, blob_store, topic=fresh_topic)
    for message in shapes:
        publisher.publish(message)
    publisher.close()
    records = read_topic(kafka.bootstrap, fresh_topic, expect=len(shapes))
    back = {m.dedupe_key: m for m in (decode_inbound(r.value) for r in records)}
    assert back == {m.dedupe_key: m for m in shapes}
    email = back["email:<a1@example.org>"]
    assert email.sender.email == "jane.doe@example.org"
    assert [p.email for p in email.to] == ["waste@council.example.gov.uk", "highways@council.example.gov.uk"]
    # any Kafka client can read it: the value is the canonical JSON
    assert json.loads(records[0].value)["schema_version"] == 1


def _sink(db: Path) -> tuple[set[str], int]:
    with sqlite3.connect(db) as conn:
        keys = {row[0] for row in conn.execute("SELECT dedupe_key FROM sink")}
        deliveries = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    return keys, deliveries


def _worker(processes: Processes, kafka: KafkaHandle, topic: str, group: str, db: Path,
            *extra: str) -> subprocess.Popen[str]:
    log = (db.parent / f"worker-{time.monotonic_ns()}.log").open("w")
    try:
        return processes.start(
            [sys.executable, "-m", "tests.ingest.sink_worker", kafka.bootstrap, topic, group, str(db),
             *extra], stdout=log, stderr=log,
        )
    finally:
        log.close()


def test_crash_before_commit_redelivers_and_idempotent_sink_keeps_one(
    kafka: KafkaHandle, fresh_topic: str, blob_store: FilesystemBlobStore, tmp_path: Path,
    processes: Processes
) -> None:
    publisher = KafkaPublisher(kafka.bootstrap, blob_store, topic=fresh_topic)
    sent = [
        InboundMessage(channel=Channel.SMS, sender=Party(phone=f"+4477009{i:05d}"),
                       body_text=f"message {i}", dedupe_key=f"sms:SM{i}")
        for i in range(30)
    ]
    for message in sent:
        publisher.publish(message)
    publisher.close()
    db = tmp_path / "sink.db"

    crashed = _worker(processes, kafka, fresh_topic, "crashers", db, "5")
    assert crashed.wait(timeout=120) == 9  # died mid-batch, after its 5th durable write
    keys, deliveries = _sink(db)
    assert len(keys) == 5

    survivor = _worker(processes, kafka, fresh_topic, "crashers", db)
    assert survivor.wait(timeout=120) == 0
    keys, deliveries = _sink(db)
    assert keys == {m.dedupe_key for m in sent}  # nothing lost
    assert deliveries > len(sent)  # the uncommitted ones really came again...
    with sqlite3.connect(db) as conn:  # ...and the idempotent sink kept one copy of each
        assert conn.execute("SELECT COUNT(*) FROM sink").fetchone()[0] == len(sent)


def test_sigterm_stops_gracefully_and_commits(
    kafka: KafkaHandle, fresh_topic: str, blob_store: FilesystemBlobStore, tmp_path: Path,
    processes: Processes
) -> None:
    publisher = KafkaPublisher(kafka.bootstrap, blob_store, topic=fresh_topic)
    for i in range(10):
        publisher.publish(InboundMessage(channel=Channel.SMS, sender=Party(phone="+447700900001"),
                                         body_text=f"m{i}", dedupe_key=f"sms:T{i}"))
    db = tmp_path / "sink.db"
    worker = processes.start(
        [sys.executable, "-m", "tests.ingest.sink_worker", kafka.bootstrap, fresh_topic, "termers", str(db)],
        stdout=subprocess.PIPE, env={**__import__("os").environ, "SINK_IDLE_S": "60"},
    )
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    worker.stdout.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _safe_count(db) < 10:
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    # Everything it handled was committed: a new member of the group finds nothing left.
    again = _worker(processes, kafka, fresh_topic, "termers", db)
    assert again.wait(timeout=60) == 0
    assert _sink(db)[1] == 10


def _safe_count(db: Path) -> int:
    try:
        return _sink(db)[1]
    except sqlite3.OperationalError:
        return 0


def test_poison_records_go_to_the_dead_letter_topic_and_the_partition_flows(
    kafka: KafkaHandle, fresh_topic: str, blob_store: FilesystemBlobStore, tmp_path: Path
) -> None:
    from ingest.admin import ensure_topics
    from schemas.topics import TopicSpec

    dlq = fresh_topic + ".dlq"
    ensure_topics(kafka.bootstrap, [TopicSpec(dlq, 1, "test")])
    client = KafkaProducerClient(kafka.bootstrap)
    good = InboundMessage(channel=Channel.SMS, sender=Party(phone="+447700900002"), body_text="ok",
                          dedupe_key="sms:good")
    newer = json.loads(encode_inbound(good))
    newer.update(schema_version=99, dedupe_key="sms:newer", a_field_from_the_future=True)
    for value in (b"{not json", json.dumps(newer).encode(), b'{"schema_version": 1}', encode_inbound(good)):
        client.send(fresh_topic, value, key=b"same-partition")
    handled: list[str] = []

    def handle(record: Record) -> None:
        handled.append(decode_inbound(record.value).dedupe_key)

    loop = ConsumerLoop(kafka.bootstrap, [fresh_topic], "poison", handle, stage="test",
                        dead_letters=DeadLetterWriter(client, dlq))
    loop.run(max_records=4, idle_timeout_s=20)
    assert handled == ["sms:good"]
    dead = read_topic(kafka.bootstrap, dlq, expect=3)
    reasons = [r.headers["x-error-reason"].decode() for r in dead]
    assert reasons == ["malformed_json", "unknown_schema_version", "invalid_message"]
    assert all(r.headers["x-origin-topic"].decode() == fresh_topic for r in dead)
    assert dead[0].value == b"{not json"  # the original bytes, replayable
    assert b"99" in dead[1].headers["x-error-detail"]


def test_a_handler_bug_is_retried_then_dead_lettered(
    kafka: KafkaHandle, fresh_topic: str
) -> None:
    from ingest.admin import ensure_topics
    from schemas.topics import TopicSpec

    dlq = fresh_topic + ".dlq"
    ensure_topics(kafka.bootstrap, [TopicSpec(dlq, 1, "test")])
    client = KafkaProducerClient(kafka.bootstrap)
    client.send(fresh_topic, b"boom", key=b"k")
    client.send(fresh_topic, b"fine", key=b"k")
    calls: list[bytes | None] = []

    def handle(record: Record) -> None:
        calls.append(record.value)
        if record.value == b"boom":
            raise RuntimeError("downstream bug")

    loop = ConsumerLoop(kafka.bootstrap, [fresh_topic], "retry", handle, stage="test", max_attempts=3,
                        backoff_s=0.05, dead_letters=DeadLetterWriter(client, dlq))
    loop.run(max_records=2, idle_timeout_s=20)
    assert calls.count(b"boom") == 3 and calls[-1] == b"fine"
    dead = read_topic(kafka.bootstrap, dlq, expect=1)
    assert dead[0].headers["x-error-reason"] == b"handler_error"
    assert b"downstream bug" in dead[0].headers["x-error-detail"]


def test_oversized_body_goes_to_the_blob_store(
    kafka: KafkaHandle, fresh_topic: str, blob_store: FilesystemBlobStore
) -> None:
    huge = "Dear Sir, " + "the road is flooded again. " * 200_000  # ~5 MB: past the broker's limit
    message = InboundMessage(channel=Channel.EMAIL, sender=Party(email="a@example.org"),
                             body_text=huge, body_html=f"<p>{huge}</p>", dedupe_key="email:<big@x>")
    KafkaPublisher(kafka.bootstrap, blob_store, topic=fresh_topic).publish(message)
    [record] = read_topic(kafka.bootstrap, fresh_topic, expect=1)
    assert record.value is not None and len(record.value) < 600 * 1024
    on_stream = decode_inbound(record.value)
    assert on_stream.body_ref is not None and blob_store.exists(on_stream.body_ref)
    assert on_stream.body_text.startswith("Dear Sir, the road is flooded")
    restored = load_body(on_stream, blob_store)
    assert restored.body_text == huge and restored.body_html == f"<p>{huge}</p>"


def test_poison_error_reason_is_data() -> None:
    with pytest.raises(PoisonMessageError) as info:
        decode_inbound(b"[1, 2]")
    assert info.value.reason == "malformed_json"
