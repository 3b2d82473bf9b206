"""A consumer loop whose offsets live with the data, not in Kafka.

For a sink that is a database (the ticket stage): each polled batch goes to the handler, which
writes the work and the consumed offsets in one database transaction. On partition assignment
the loop asks the handler's store for the last offset applied and seeks to the one after it
(to the beginning when the store has none), so the database alone says where a consumer
resumes; Kafka's own commit, made after the database committed, only speeds up tools that read
consumer-group lag. The pattern of aiokafka's "Storing Offsets Outside Kafka" and of the
eventsourcing library's tracking records.

Delivery contract for the handler:

* it receives a :class:`Batch` and must apply every record not in ``batch.skip`` and store the
  offsets of every record (skipped ones included) in the same transaction;
* a record it cannot read goes to ``batch.dead_letter`` (``frontdoor.dlq``, synchronously)
  before its transaction commits; the partition flows on;
* raising anything rolls the batch back; the loop runs it again after a backoff. A batch that
  keeps failing is split into single records, and a record that still fails ``max_attempts``
  times is dead-lettered with reason ``handler_error`` and skipped.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from ingest.bus import DeadLetterWriter, KafkaProducerClient, Record
from ingest.consumer import await_topic_metadata, polled_batches
from ingest.errors import PoisonMessageError, PublishError

log = logging.getLogger(__name__)

RecordKey = tuple[str, int, int]


@dataclass(frozen=True)
class Batch:
    records: Sequence[Record]
    dead_letter: Callable[[Record, PoisonMessageError], None]
    skip: frozenset[RecordKey] = field(default_factory=frozenset)  # dead-lettered: offsets only


class StoredOffsetHandler(Protocol):
    def load_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The last offset applied for each partition the store knows."""
        ...

    def __call__(self, batch: Batch) -> None:
        """Apply the batch and store its offsets in one transaction; raise to have it redone."""
        ...


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, loop: StoredOffsetLoop) -> None:
        self.loop = loop

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        names = sorted(f"{t.topic}[{t.partition}]" for t in revoked)
        log.info("%s: partitions revoked: %s", self.loop.stage, names)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.loop.seek_to_stored(assigned)


class StoredOffsetLoop:
    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        handler: StoredOffsetHandler,
        *,
        stage: str,
        dead_letters: DeadLetterWriter | None = None,
        max_poll_records: int = 500,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        client_id: str | None = None,
    ) -> None:
        self.topics = list(topics)
        self.handler = handler
        self.stage = stage
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.dead_letters = dead_letters or DeadLetterWriter(
            KafkaProducerClient(bootstrap, client_id=f"{group_id}-dlq"))
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=client_id or group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_poll_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            bootstrap_timeout_ms=10_000,
        )
        self._stopping = threading.Event()
        self.processed = 0
        self.dead_lettered = 0
        self.batches = 0

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT finish the batch in hand (it commits or rolls back) and leave."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        self._stopping.set()

    def seek_to_stored(self, assigned: set[TopicPartition]) -> None:
        """Resume each assigned partition after the last offset the database holds."""
        if not assigned:
            return
        ordered = sorted(assigned, key=lambda tp: (tp.topic, tp.partition))
        while True:
            try:
                stored = self.handler.load_offsets([(tp.topic, tp.partition) for tp in ordered])
                break
            except Exception as exc:  # the database is away: we cannot know where to resume
                log.warning("%s: cannot read stored offsets (%s); retrying", self.stage, exc)
                if self._stopping.wait(self.backoff_s * 4):
                    return
        for tp in ordered:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset + 1)
        log.info("%s: assigned %d partitions; resuming after the stored offsets", self.stage, len(ordered))

    def run(self, *, max_records: int | None = None, idle_timeout_s: float | None = None) -> int:
        await_topic_metadata(self._consumer, self.topics, self._stopping, self.stage)
        self._consumer.subscribe(self.topics, listener=_Rebalance(self))
        try:
            for polled in polled_batches(self._consumer, self._stopping, idle_timeout_s):
                records = [r for rows in polled.values() for r in rows]
                if not self._apply(records):
                    break
                self.batches += 1
                commits = {tp: OffsetAndMetadata(rows[-1].offset + 1, "", -1) for tp, rows in polled.items()}
                try:  # only an optimisation (lag tools read it): the database holds the truth
                    self._consumer.commit_async(commits)
                except Exception as exc:  # noqa: BLE001 - never fatal
                    log.debug("%s: Kafka offset commit failed: %s", self.stage, exc)
                if max_records is not None and self.processed + self.dead_lettered >= max_records:
                    break
        finally:
            self._consumer.close(autocommit=False)
            self.dead_letters.client.close()
        return self.processed

    def _apply(self, records: list[Record]) -> bool:
        """Apply a batch, retrying; False when stopped before it could be applied."""
        dead: list[RecordKey] = []

        def dead_letter(record: Record, exc: PoisonMessageError) -> None:
            self._send_dead_letter(record, exc.reason, exc.detail, exc.__class__.__name__)
            dead.append((record.topic, record.partition, record.offset))

        for attempt in range(1, self.max_attempts + 1):
            dead.clear()
            try:
                self.handler(Batch(records, dead_letter))
            except PublishError as exc:  # the dead-letter topic is away: wait for it
                log.warning("%s: dead-letter topic unavailable (%s); will retry", self.stage, exc)
            except Exception as exc:
                log.warning("%s: batch of %d failed (attempt %d/%d): %s: %s", self.stage, len(records),
                            attempt, self.max_attempts, exc.__class__.__name__, exc)
            else:
                self.dead_lettered += len(dead)
                self.processed += len(records) - len(dead)
                return True
            if self._stopping.wait(self.backoff_s * 2 ** (attempt - 1)):
                return False
        if len(records) == 1:
            return self._give_up(records[0])
        return all(self._apply([record]) for record in records)  # find the record that fails

    def _give_up(self, record: Record) -> bool:
        detail = f"the handler failed {self.max_attempts} times on this record"
        while not self._stopping.is_set():
            try:
                self._send_dead_letter(record, "handler_error", detail, "HandlerError")
                self.handler(Batch([record], lambda *_: None, frozenset({(record.topic, record.partition,
                                                                          record.offset)})))
            except Exception as exc:
                log.warning("%s: cannot skip %s[%d]@%d yet: %s", self.stage, record.topic, record.partition,
                            record.offset, exc)
                self._stopping.wait(self.backoff_s * 4)
                continue
            self.dead_lettered += 1
            return True
        return False

    def _send_dead_letter(self, record: Record, reason: str, detail: str, error_type: str) -> None:
        log.error("%s: dead-lettering %s[%d]@%d: %s: %s", self.stage, record.topic, record.partition,
                  record.offset, reason, detail)
        self.dead_letters.send(record, reason, detail, error_type, self.stage)
