"""``frontdoor bench bus``: the adapter against raw kafka-python, same broker, same run (here
because only ingest/ imports kafka)."""

from __future__ import annotations

import gc
import sys
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer

from ingest.admin import delete_topics, ensure_topics
from ingest.bus import KafkaPublisher, Record
from ingest.consumer import ConsumerLoop
from ingest.serde import decode_inbound, encode_inbound
from schemas.blobs import BlobStore
from schemas.inbound import Channel, InboundMessage, Party, Source
from schemas.topics import TopicSpec

FILLER = ("The bin on Acacia Avenue was missed again this week and the recycling is piling "
          "up by the gate; please send someone before the weekend. ")


def sample_messages(count: int, size: int) -> list[InboundMessage]:
    body = (FILLER * (size // len(FILLER) + 1))[: max(size - 420, 16)]
    return [
        InboundMessage(
            channel=Channel.EMAIL,
            sender=Party(name="A Resident", email=f"resident{i % 997}@example.org"),
            to=[Party(email="waste@council.example.gov.uk")],
            subject=f"Missed collection {i}",
            body_text=body,
            source=Source(mailboxes=["waste"]),
            dedupe_key=f"email:<bench-{i}@example.org>",
        )
        for i in range(count)
    ]


def _progress(label: str, done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total:
        print(f"\r{label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr)


def bench_adapter(address: str, blobs: BlobStore, messages: list[InboundMessage]) -> float:
    topic = f"frontdoor.bench.{uuid.uuid4().hex[:8]}"
    ensure_topics(address, [TopicSpec(topic, 3, "bench")])
    try:
        publisher = KafkaPublisher(address, blobs, topic=topic)
        start = time.perf_counter()
        for message in messages:
            publisher.publish_nowait(message)
        publisher.flush()
        received: list[str] = []

        def handle(record: Record) -> None:
            decode_inbound(record.value)
            received.append("")

        loop = ConsumerLoop(address, [topic], f"bench-{topic}", handle, stage="bench",
                            max_poll_records=1000)
        loop.run(max_records=len(messages), idle_timeout_s=30)
        elapsed = time.perf_counter() - start
        publisher.close()
        if len(received) != len(messages):
            raise RuntimeError(f"adapter read {len(received)} of {len(messages)} messages back")
        _progress("adapter", len(received), len(messages))
        return len(messages) / elapsed
    finally:
        delete_topics(address, [topic])


def bench_raw(address: str, messages: list[InboundMessage]) -> float:
    topic = f"frontdoor.bench.{uuid.uuid4().hex[:8]}"
    ensure_topics(address, [TopicSpec(topic, 3, "bench")])
    try:
        producer = KafkaProducer(bootstrap_servers=address, acks="all", enable_idempotence=True,
                                 linger_ms=2)
        start = time.perf_counter()
        for message in messages:
            producer.send(topic, value=encode_inbound(message),
                          key=(message.sender.email or "").encode())
        producer.flush()
        consumer = KafkaConsumer(topic, bootstrap_servers=address, group_id=f"raw-{topic}",
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=1000)
        count = 0
        deadline = time.monotonic() + 60
        while count < len(messages) and time.monotonic() < deadline:
            for rows in consumer.poll(timeout_ms=200).values():
                for row in rows:
                    InboundMessage.model_validate_json(row.value)
                    count += 1
            consumer.commit()
        elapsed = time.perf_counter() - start
        consumer.close()
        producer.close()
        _progress("raw", count, len(messages))
        return len(messages) / elapsed
    finally:
        delete_topics(address, [topic])


def run_bus_bench(address: str, blobs: BlobStore, count: int, size: int) -> dict[str, float | int]:
    messages = sample_messages(count, size)
    gc.collect()
    gc.freeze()  # the samples are long-lived: keep the collector from rescanning them
    avg_size = sum(len(encode_inbound(m)) for m in messages[:100]) / min(len(messages), 100)
    raw = bench_raw(address, messages)
    bus = bench_adapter(address, blobs, messages)
    return {
        "messages": count,
        "message_bytes": round(avg_size),
        "bus_msgs_per_s": round(bus, 1),
        "raw_msgs_per_s": round(raw, 1),
        "ratio_to_raw": round(bus / raw, 3),
    }
