"""Consume-transform-produce with an exactly-once effect, by Kafka transactions.

Each polled batch is one transaction: every output record, every dead letter and the
consumed offsets are committed together or not at all. Readers with
``isolation_level=read_committed`` (the default of :class:`ingest.consumer.ConsumerLoop`)
never see the output of a batch that did not commit, so a process killed mid-batch
leaves nothing visible, and its successor redoes the batch from the committed offsets.
The consumer's group metadata goes with the offsets (KIP-447), so a zombie from an older
generation is fenced and cannot commit after a rebalance.

The transform is a plain function of one record; it may be swapped between batches
(``set_transform``), which is how a new model version is loaded without dropping messages.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from ingest.bus import Record, dead_letter_headers
from ingest.consumer import polled_batches
from ingest.errors import PoisonMessageError
from schemas.topics import DLQ

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: dict[str, bytes] = field(default_factory=dict)


Transform = Callable[[Record], Sequence[Output]]
BatchObserver = Callable[[int, float], None]


class TransactionalLoop:
    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        transform: Transform,
        *,
        stage: str,
        dlq_topic: str = DLQ,
        max_poll_records: int = 200,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        transactional_id: str | None = None,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.stage = stage
        self.dlq_topic = dlq_topic
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.on_batch = on_batch
        self._transform = transform
        self._transform_lock = threading.Lock()
        self.transactional_id = transactional_id or f"{group_id}-{uuid.uuid4().hex[:12]}"
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=self.transactional_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_poll_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            bootstrap_timeout_ms=10_000,
        )
        self._producer = self._new_producer()
        self._stopping = threading.Event()
        self._attempts: dict[tuple[str, int, int], int] = {}
        self.processed = 0
        self.dead_lettered = 0

    def _new_producer(self) -> KafkaProducer:
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.transactional_id,
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_request_size=2 * 1024 * 1024,
            bootstrap_timeout_ms=10_000,
            # A batch from a process killed mid-flight stays open (and holds back
            # read_committed readers) until this passes, or until a process with the same
            # transactional id starts again and aborts it at once.
            transaction_timeout_ms=15_000,
        )
        producer.init_transactions()
        return producer

    # --- control ----------------------------------------------------------------------

    def set_transform(self, transform: Transform) -> None:
        """Use ``transform`` from the next batch on (the current batch finishes first)."""
        with self._transform_lock:
            self._transform = transform

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        self._stopping.set()

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment())

    def lag(self) -> dict[TopicPartition, int]:
        """Records not yet consumed per assigned partition (for the consumer-lag gauge)."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        ends = self._consumer.end_offsets(assigned)
        return {tp: max(ends[tp] - self._consumer.position(tp), 0) for tp in assigned}

    # --- the loop ---------------------------------------------------------------------

    def run(self, *, max_records: int | None = None, idle_timeout_s: float | None = None) -> int:
        self._consumer.subscribe(self.topics)
        try:
            for batch in polled_batches(self._consumer, self._stopping, idle_timeout_s):
                self._process(batch)
                if max_records is not None and self.processed + self.dead_lettered >= max_records:
                    break
        finally:
            self._consumer.close(autocommit=False)
            self._producer.close(timeout=5)
        return self.processed

    def _process(self, batch: dict[TopicPartition, list[Record]]) -> None:
        started = time.perf_counter()
        with self._transform_lock:
            transform = self._transform
        processed = dead = 0
        try:
            self._producer.begin_transaction()
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            for tp, records in batch.items():
                for record in records:
                    outputs, was_dead = self._apply(transform, record)
                    for out in outputs:
                        self._producer.send(out.topic, value=out.value, key=out.key,
                                            headers=list(out.headers.items()))
                    dead += was_dead
                    processed += not was_dead
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            self._producer.send_offsets_to_transaction(offsets, self._consumer.group_metadata())
            self._producer.commit_transaction()
        except _RetryBatchError as exc:
            self._abort_and_rewind(batch, str(exc))
            return
        except KafkaError as exc:
            self._abort_and_rewind(batch, f"{exc.__class__.__name__}: {exc}")
            return
        self.processed += processed
        self.dead_lettered += dead
        for records in batch.values():
            for record in records:
                self._attempts.pop((record.topic, record.partition, record.offset), None)
        if self.on_batch is not None:
            self.on_batch(processed + dead, time.perf_counter() - started)

    def _apply(self, transform: Transform, record: Record) -> tuple[Sequence[Output], bool]:
        try:
            return transform(record), False
        except PoisonMessageError as exc:
            return [self._dead_letter(record, exc.reason, exc.detail, exc)], True
        except Exception as exc:
            key = (record.topic, record.partition, record.offset)
            attempts = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempts
            if attempts >= self.max_attempts:
                detail = f"{exc} (after {attempts} attempts)"
                return [self._dead_letter(record, "handler_error", detail, exc)], True
            raise _RetryBatchError(f"transform failed on {key} (attempt {attempts}): {exc}") from exc

    def _dead_letter(self, record: Record, reason: str, detail: str, exc: BaseException) -> Output:
        log.error("%s: dead-lettering %s[%d]@%d: %s: %s", self.stage, record.topic,
                  record.partition, record.offset, reason, detail)
        headers = dead_letter_headers(record, reason, detail, exc.__class__.__name__, self.stage)
        return Output(self.dlq_topic, record.value or b"", record.key, headers)

    def _abort_and_rewind(self, batch: dict[TopicPartition, list[Record]], why: str) -> None:
        log.warning("%s: batch aborted (%s); it will be redone", self.stage, why)
        try:
            self._producer.abort_transaction()
        except KafkaError:
            # A fatal producer error (fenced, or the broker lost our transaction): start over.
            self._producer.close(timeout=5)
            self._producer = self._new_producer()
        for tp, records in batch.items():
            if tp in self._consumer.assignment():
                self._consumer.seek(tp, records[0].offset)
        time.sleep(self.backoff_s)


class _RetryBatchError(Exception):
    pass
