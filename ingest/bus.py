"""Producing to the stream: the idempotent publisher, dead letters, and a topic reader."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from ingest.errors import BrokerUnavailableError, PublishError
from ingest.serde import encode_for_stream
from schemas.blobs import BlobStore
from schemas.inbound import InboundMessage
from schemas.topics import DLQ, INBOUND

log = logging.getLogger(__name__)

Headers = Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a topic, free of kafka-python's own types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0


def message_key(message: InboundMessage) -> bytes:
    """Messages from one resident share a partition, so their order holds."""
    who = message.sender.email or message.sender.phone or message.dedupe_key
    return who.encode("utf-8")


class KafkaProducerClient:
    """One idempotent producer (acks=all), made lazily so a service can start before Kafka."""

    def __init__(self, bootstrap: str, *, delivery_timeout_s: float = 15.0,
                 client_id: str = "frontdoor", **overrides: object) -> None:
        self.bootstrap = bootstrap
        self.delivery_timeout_s = delivery_timeout_s
        self._config: dict[str, object] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 2,
            "max_request_size": 2 * 1024 * 1024,
            "delivery_timeout_ms": int(delivery_timeout_s * 1000),
            "request_timeout_ms": max(int(delivery_timeout_s * 1000) - 1000, 1000),
            "max_block_ms": int(delivery_timeout_s * 1000),
            "bootstrap_timeout_ms": 5000,
            "reconnect_backoff_max_ms": 2000,
            **overrides,
        }
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = KafkaProducer(**self._config)
                except (KafkaError, OSError) as exc:
                    raise BrokerUnavailableError(
                        f"no Kafka broker answers at {self.bootstrap} ({exc.__class__.__name__})"
                    ) from None
            return self._producer

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             headers: Headers | None = None, *, wait: bool = True) -> None:
        """Send one record; with ``wait`` return only after the broker acknowledged it."""
        producer = self.producer()
        header_list = [(k, v) for k, v in (headers or {}).items()]
        try:
            future = producer.send(topic, value=value, key=key, headers=header_list)
            if wait:
                future.get(timeout=self.delivery_timeout_s + 5)
        except KafkaTimeoutError as exc:
            raise BrokerUnavailableError(f"Kafka did not acknowledge in time: {exc}") from None
        except KafkaError as exc:
            raise PublishError(f"Kafka refused the record: {exc.__class__.__name__}: {exc}") from None

    def flush(self, timeout_s: float | None = None) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout_s)
            except KafkaTimeoutError as exc:
                raise BrokerUnavailableError(f"Kafka did not acknowledge in time: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


class KafkaPublisher:
    """The :class:`connectors.base.Publisher` every channel uses.

    ``publish`` returns only after acks=all; a body too large for the stream goes to the
    blob store first and the record carries its reference.
    """

    def __init__(self, bootstrap: str, blobs: BlobStore, *, topic: str = INBOUND,
                 max_record_bytes: int = 512 * 1024, delivery_timeout_s: float = 15.0) -> None:
        self.topic = topic
        self.blobs = blobs
        self.max_record_bytes = max_record_bytes
        self.client = KafkaProducerClient(bootstrap, delivery_timeout_s=delivery_timeout_s,
                                          client_id="frontdoor-publisher")

    def publish(self, message: InboundMessage) -> None:
        self.client.send(self.topic, self.encode(message), message_key(message),
                         {"schema-version": str(message.schema_version).encode()})

    def publish_nowait(self, message: InboundMessage) -> None:
        """Queue without waiting; call :meth:`flush` before acknowledging anything."""
        self.client.send(self.topic, self.encode(message), message_key(message),
                         {"schema-version": str(message.schema_version).encode()}, wait=False)

    def encode(self, message: InboundMessage) -> bytes:
        value = encode_for_stream(message, self.blobs, self.max_record_bytes)
        if len(value) > self.max_record_bytes * 2:
            raise PublishError(
                f"message {message.id} is {len(value)} bytes even without its body: too large"
            )
        return value

    def flush(self) -> None:
        self.client.flush()

    def close(self) -> None:
        self.client.close()


def dead_letter_headers(record: Record, reason: str, detail: str, error_type: str,
                        stage: str) -> dict[str, bytes]:
    """The record's own headers plus why it failed and where it came from."""
    headers = dict(record.headers)
    headers.update({
        "x-error-reason": reason.encode(),
        "x-error-detail": detail[:2000].encode("utf-8", "replace"),
        "x-error-type": error_type.encode(),
        "x-error-stage": stage.encode(),
        "x-origin-topic": record.topic.encode(),
        "x-origin-partition": str(record.partition).encode(),
        "x-origin-offset": str(record.offset).encode(),
        "x-failed-at": datetime.now(UTC).isoformat().encode(),
    })
    return headers


class DeadLetterWriter:
    """Writes a record that cannot be processed to ``frontdoor.dlq`` with why and whence."""

    def __init__(self, client: KafkaProducerClient, topic: str = DLQ) -> None:
        self.client = client
        self.topic = topic

    def send(self, record: Record, reason: str, detail: str, error_type: str, stage: str) -> None:
        headers = dead_letter_headers(record, reason, detail, error_type, stage)
        self.client.send(self.topic, record.value or b"", record.key, headers)


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 10.0,
               expect: int | None = None, isolation_level: str = "read_uncommitted") -> list[Record]:
    """Every record of ``topic`` from the beginning (no consumer group, nothing committed).

    Stops when ``expect`` records were read (without ``expect``: when every partition's end at
    the start was reached), or at the latest after ``timeout_s``.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, isolation_level=isolation_level,
                             consumer_timeout_ms=int(timeout_s * 1000))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for rows in batch.values():
                records.extend(to_record(r) for r in rows)
            if expect is not None and len(records) >= expect:
                break
            if expect is None and all(consumer.position(tp) >= end[tp] for tp in tps):
                break
        return records
    finally:
        consumer.close()


def read_window(bootstrap: str, topic: str, *, start_ms: int, end_ms: int | None = None,
                isolation_level: str = "read_committed", timeout_s: float = 10.0) -> Iterator[Record]:
    """The records of ``topic`` with timestamps in [start_ms, end_ms], partition by partition
    up to the end each partition had when reading began (no consumer group, nothing committed)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             isolation_level=isolation_level, max_poll_records=500)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
        if not tps:
            return
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        starts = consumer.offsets_for_times({tp: start_ms for tp in tps})
        pending = set()
        for tp in tps:
            found = starts.get(tp)
            if found is None or found.offset >= ends[tp]:
                continue
            consumer.seek(tp, found.offset)
            pending.add(tp)
        quiet_since = time.monotonic()
        while pending:
            batch = consumer.poll(timeout_ms=200)
            for tp, rows in batch.items():
                for row in rows:
                    if row.offset < ends[tp] and (end_ms is None or row.timestamp <= end_ms):
                        yield to_record(row)
            for tp in list(pending):
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if batch:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > timeout_s:
                raise BrokerUnavailableError(f"reading {topic} stalled for {timeout_s:.0f} s")
    finally:
        consumer.close()


def to_record(row: object) -> Record:
    return Record(
        topic=row.topic,  # type: ignore[attr-defined]
        partition=row.partition,  # type: ignore[attr-defined]
        offset=row.offset,  # type: ignore[attr-defined]
        key=row.key,  # type: ignore[attr-defined]
        value=row.value,  # type: ignore[attr-defined]
        headers={k: (v or b"") for k, v in (row.headers or [])},  # type: ignore[attr-defined]
        timestamp_ms=row.timestamp,  # type: ignore[attr-defined]
    )
