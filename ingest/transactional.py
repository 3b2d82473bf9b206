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

A record whose output Kafka refuses for good (over the size limit, an invalid record) would
abort its batch for ever and stall the partition. After such a refusal the loop redoes the
batch one record per transaction, so the refused record is known; after ``max_attempts``
refusals it is dead-lettered (reason ``refused_by_kafka``) and the partition flows on.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    InvalidRecordError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
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
DeadLetterObserver = Callable[[str], None]  # called with the reason of each loop dead letter

# What Kafka will never accept however often it is sent; anything else may pass on a retry.
REFUSED_FOR_GOOD = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError)
REFUSED = "refused_by_kafka"
_Key = tuple[str, int, int]


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
        flush_timeout_s: float = 60.0,
        on_batch: BatchObserver | None = None,
        on_dead_letter: DeadLetterObserver | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.stage = stage
        self.dlq_topic = dlq_topic
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.on_batch = on_batch
        self.on_dead_letter = on_dead_letter
        self.flush_timeout_s = flush_timeout_s
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
        self._attempts: dict[_Key, int] = {}
        self._refused: dict[_Key, BaseException] = {}  # to dead-letter when next seen
        self._isolating = False  # one record per transaction, to find the one Kafka refuses
        self._reasons: list[str] = []  # the loop's own dead letters in the open transaction
        self.processed = 0
        self.dead_lettered = 0
        self.refused = 0  # records dead-lettered because Kafka refused their output

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
        if not self._isolating:
            self._transact(batch, batch)
            return
        pending = [(tp, record) for tp, records in batch.items() for record in records]
        for index, (tp, record) in enumerate(pending):
            rest: dict[TopicPartition, list[Record]] = {}
            for other_tp, other in pending[index:]:
                rest.setdefault(other_tp, []).append(other)
            if not self._transact({tp: [record]}, rest):
                return
        self._isolating = False

    def _transact(self, batch: dict[TopicPartition, list[Record]],
                  rewind: dict[TopicPartition, list[Record]]) -> bool:
        """One transaction for ``batch``; on failure abort and seek back to ``rewind``."""
        started = time.perf_counter()
        with self._transform_lock:
            transform = self._transform
        processed = dead = 0
        sent: list[tuple[Record, Any]] = []
        self._reasons = []
        try:
            self._producer.begin_transaction()
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            for tp, records in batch.items():
                for record in records:
                    outputs, was_dead = self._apply(transform, record)
                    for out in outputs:
                        try:
                            future = self._producer.send(out.topic, value=out.value, key=out.key,
                                                         headers=list(out.headers.items()))
                        except REFUSED_FOR_GOOD as exc:  # refused before it left the process
                            raise _RefusedError([record], exc) from exc
                        sent.append((record, future))
                    dead += was_dead
                    processed += not was_dead
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            # Every output acknowledged or failed before the commit is asked for: kafka-python
            # can wait for ever on a commit whose transaction already holds a refused record.
            self._await_outputs([future for _, future in sent])
            failed = [(record, future.exception) for record, future in sent if future.failed()]
            refused = [(record, error) for record, error in failed if isinstance(error, REFUSED_FOR_GOOD)]
            if refused:
                raise _RefusedError(list({_key(r): r for r, _ in refused}.values()), refused[0][1])
            if failed:
                error = failed[0][1]
                raise error if isinstance(error, KafkaError) else KafkaError(str(error))
            self._producer.send_offsets_to_transaction(offsets, self._consumer.group_metadata())
            self._producer.commit_transaction()
        except _RetryBatchError as exc:
            self._abort_and_rewind(rewind, str(exc))
            return False
        except _RefusedError as exc:
            self._note_refusal(exc.records, exc.error)
            # After a refused record kafka-python's transaction state is not to be trusted (an
            # abort can bump the epoch into out-of-order errors and stop its I/O thread): a new
            # producer with the same transactional id aborts the open transaction cleanly.
            self._abort_and_rewind(rewind, f"Kafka refused an output of {[_key(r) for r in exc.records]}: "
                                   f"{exc.error}", renew=True)
            return False
        except KafkaError as exc:
            self._abort_and_rewind(rewind, f"{exc.__class__.__name__}: {exc}")
            return False
        self.processed += processed
        self.dead_lettered += dead
        self.refused += self._reasons.count(REFUSED)
        if self.on_dead_letter is not None:
            for reason in self._reasons:  # counted once, when committed
                self.on_dead_letter(reason)
        for records in batch.values():
            for record in records:
                self._attempts.pop(_key(record), None)
                self._refused.pop(_key(record), None)
        if self.on_batch is not None:
            self.on_batch(processed + dead, time.perf_counter() - started)
        return True

    def _await_outputs(self, futures: list[Any]) -> None:
        """Wait until each output is acknowledged or failed. (``producer.flush()`` is not
        enough: on a batch it had to split it raises ``UnknownError('Future not done')``.)"""
        deadline = time.monotonic() + self.flush_timeout_s
        for future in futures:
            if not future.is_done:
                try:
                    future.get(timeout=max(deadline - time.monotonic(), 0.1))
                except KafkaError:
                    pass  # failed: the caller reads future.exception; still pending: raised below
            if not future.is_done:
                raise KafkaTimeoutError(f"outputs not acknowledged within {self.flush_timeout_s:.0f}s")

    def _note_refusal(self, records: list[Record], error: BaseException) -> None:
        """Kafka refused the output of one of ``records`` for good. With one suspect, count
        it (dead-lettered at the next try once it reaches ``max_attempts``); with several,
        redo them one per transaction to find which."""
        if len(records) > 1:
            self._isolating = True
            return
        key = _key(records[0])
        attempts = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempts
        if attempts >= self.max_attempts:
            self._refused[key] = error
        else:
            self._isolating = True  # its batch-mates are innocent: let them through alone

    def _apply(self, transform: Transform, record: Record) -> tuple[Sequence[Output], bool]:
        refusal = self._refused.get(_key(record))
        if refusal is not None:
            detail = f"{refusal} (refused {self._attempts.get(_key(record), 0)} times)"
            return [self._dead_letter(record, REFUSED, detail, refusal)], True
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
        if not isinstance(exc, PoisonMessageError):  # poison is the transform's own to count
            self._reasons.append(reason)
        return Output(self.dlq_topic, record.value or b"", record.key, headers)

    def _abort_and_rewind(self, batch: dict[TopicPartition, list[Record]], why: str, *,
                          renew: bool = False) -> None:
        log.warning("%s: batch aborted (%s); it will be redone", self.stage, why)
        try:
            if renew:
                raise KafkaError("producer renewed after a refused record")
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


class _RefusedError(Exception):
    def __init__(self, records: list[Record], error: BaseException) -> None:
        super().__init__(str(error))
        self.records = records
        self.error = error


def _key(record: Record) -> _Key:
    return (record.topic, record.partition, record.offset)
