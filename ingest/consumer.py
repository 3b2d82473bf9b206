"""The consumer loop: poll, handle, and commit an offset only once the work is durable.

Delivery contract for handlers:

* return normally  → the work is durable; the offset is committed after the batch;
* raise :class:`PoisonMessageError` → the record goes to ``frontdoor.dlq`` with the reason
  in ``x-error-*`` headers, then its offset is committed: the partition keeps flowing;
* raise anything else → nothing is committed; the loop seeks back and the record comes
  again after a backoff. A :class:`PublishError` (the broker is away) is retried for as
  long as it takes; any other error ``max_attempts`` times, then it is dead-lettered with
  reason ``handler_error``.

Handlers must be idempotent: after a crash the records since the last commit come again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ingest.bus import DeadLetterWriter, KafkaProducerClient, Record, to_record
from ingest.errors import PoisonMessageError, PublishError

log = logging.getLogger(__name__)

Handler = Callable[[Record], None]


def polled_batches(consumer: KafkaConsumer, stopping: threading.Event,
                   idle_timeout_s: float | None) -> Iterator[dict[TopicPartition, list[Record]]]:
    """Each non-empty poll's records by partition, until ``stopping`` is set or nothing came
    for ``idle_timeout_s`` (idle counts only once the group has given us partitions)."""
    idle_since = time.monotonic()
    while not stopping.is_set():
        batch = consumer.poll(timeout_ms=200)
        if not batch:
            if not consumer.assignment():
                idle_since = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
            continue
        idle_since = time.monotonic()
        yield {tp: [to_record(r) for r in rows] for tp, rows in batch.items()}


class ConsumerLoop:
    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        *,
        stage: str,
        dead_letters: DeadLetterWriter | None = None,
        max_poll_records: int = 200,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        isolation_level: str = "read_committed",
        auto_offset_reset: str = "earliest",
        client_id: str | None = None,
    ) -> None:
        self.topics = list(topics)
        self.handler = handler
        self.stage = stage
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.dead_letters = dead_letters or DeadLetterWriter(
            KafkaProducerClient(bootstrap, client_id=f"{group_id}-dlq")
        )
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=client_id or group_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            isolation_level=isolation_level,
            max_poll_records=max_poll_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            bootstrap_timeout_ms=10_000,
        )
        self._stopping = threading.Event()
        self._attempts: dict[tuple[str, int, int], int] = {}
        self.processed = 0
        self.dead_lettered = 0

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT finish the record in hand, commit, and leave the group."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        self._stopping.set()

    def run(self, *, max_records: int | None = None, idle_timeout_s: float | None = None) -> int:
        """Consume until stopped (or ``max_records`` handled, or idle for ``idle_timeout_s``)."""
        self._consumer.subscribe(self.topics)
        try:
            for batch in polled_batches(self._consumer, self._stopping, idle_timeout_s):
                commits: dict[TopicPartition, OffsetAndMetadata] = {}
                for tp, records in batch.items():
                    done = self._handle_partition(tp, records)
                    if done is not None:
                        commits[tp] = OffsetAndMetadata(done + 1, "", -1)
                    if self._stopping.is_set():
                        break
                if commits:
                    # Synchronous: once this returns, a restart resumes after these offsets.
                    self._consumer.commit(commits)
                if max_records is not None and self.processed + self.dead_lettered >= max_records:
                    break
        finally:
            self._consumer.close(autocommit=False)
        return self.processed

    def _handle_partition(self, tp: TopicPartition, records: list[Record]) -> int | None:
        """Handle records in order; return the last offset whose work is durable."""
        done: int | None = None
        for record in records:
            if self._stopping.is_set():
                break
            outcome = self._handle_one(record)
            if outcome == "retry":
                self._consumer.seek(tp, record.offset)
                break
            done = record.offset
        return done

    def _handle_one(self, record: Record) -> str:
        try:
            self.handler(record)
        except PoisonMessageError as exc:
            return self._dead_letter(record, exc.reason, exc.detail, exc)
        except PublishError as exc:
            key = (record.topic, record.partition, record.offset)
            log.warning("%s: broker unavailable while handling %s: %s; will retry",
                        self.stage, key, exc)
            time.sleep(self.backoff_s)
            return "retry"
        except Exception as exc:
            key = (record.topic, record.partition, record.offset)
            attempts = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempts
            if attempts >= self.max_attempts:
                self._attempts.pop(key, None)
                detail = f"{exc} (after {attempts} attempts)"
                return self._dead_letter(record, "handler_error", detail, exc)
            log.warning("%s: handler failed on %s (attempt %d/%d): %s", self.stage, key,
                        attempts, self.max_attempts, exc)
            time.sleep(self.backoff_s * 2 ** (attempts - 1))
            return "retry"
        if self._attempts:
            self._attempts.pop((record.topic, record.partition, record.offset), None)
        self.processed += 1
        return "ok"

    def _dead_letter(self, record: Record, reason: str, detail: str, exc: BaseException) -> str:
        log.error("%s: dead-lettering %s[%d]@%d: %s: %s", self.stage, record.topic,
                  record.partition, record.offset, reason, detail)
        try:
            self.dead_letters.send(record, reason, detail, exc.__class__.__name__, self.stage)
        except PublishError as dlq_exc:
            log.warning("%s: dead-letter topic unavailable (%s); will retry", self.stage, dlq_exc)
            time.sleep(self.backoff_s)
            return "retry"
        self.dead_lettered += 1
        return "dead"
