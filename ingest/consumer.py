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

The broker going away is never fatal to a loop: kafka-python raises a refused connection or a
lost coordinator out of ``poll`` and ``commit`` (``KafkaConnectionError: 111 ECONNREFUSED``), and
a loop that let it through ended its process while the broker restarted. A poll that fails is
retried (the client rediscovers the coordinator and rejoins on the next one); a commit that fails
is kept and retried with the next batch, and until then a restart redoes at most those records.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import (
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from ingest.bus import DeadLetterWriter, KafkaProducerClient, Record, to_record
from ingest.errors import PoisonMessageError, PublishError

log = logging.getLogger(__name__)

Handler = Callable[[Record], None]

# Group errors a poll can surface (a heartbeat that found the member gone): the next poll rejoins.
_REJOIN = (UnknownMemberIdError, IllegalGenerationError, RebalanceInProgressError)
_POLL_RETRY_S = 0.5


def polled_batches(consumer: KafkaConsumer, stopping: threading.Event,
                   idle_timeout_s: float | None) -> Iterator[dict[TopicPartition, list[Record]]]:
    """Each non-empty poll's records by partition, until ``stopping`` is set or nothing came
    for ``idle_timeout_s`` (idle counts only once the group has given us partitions)."""
    idle_since = time.monotonic()
    failing_since: float | None = None
    while not stopping.is_set():
        try:
            batch = consumer.poll(timeout_ms=200)
        except KafkaError as exc:
            if not (exc.retriable or isinstance(exc, _REJOIN)):
                raise
            if failing_since is None:
                failing_since = time.monotonic()
                log.warning("consumer %s: broker unavailable (%s: %s); polling again until it is back",
                            consumer.config.get("client_id"), exc.__class__.__name__, exc)
            idle_since = time.monotonic()  # an outage is not idleness
            stopping.wait(_POLL_RETRY_S)
            continue
        if failing_since is not None:
            log.info("consumer %s: broker back after %.0f s", consumer.config.get("client_id"),
                     time.monotonic() - failing_since)
            failing_since = None
        if not batch:
            if not consumer.assignment():
                idle_since = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
            continue
        idle_since = time.monotonic()
        yield {tp: [to_record(r) for r in rows] for tp, rows in batch.items()}


def await_topic_metadata(consumer: KafkaConsumer, topics: Sequence[str], stopping: threading.Event,
                         log_as: str, timeout_s: float = 60.0) -> None:
    """Return once the consumer's own metadata lists partitions for every topic it will
    subscribe to (or after ``timeout_s``, or when stopping).

    kafka-python joins the group before the metadata its subscription asked for has arrived;
    a leader that assigns from metadata without our topics gives every member nothing, and the
    rejoin that follows when the metadata lands can leave the member with no partitions and no
    heartbeat for good (a fresh worker on a busy machine sat idle until killed). Joining only
    once the topics are known makes the first assignment the right one."""
    deadline = time.monotonic() + timeout_s
    missing = list(topics)
    while missing and not stopping.is_set():
        try:
            missing = [t for t in missing if not consumer.partitions_for_topic(t)]
        except KafkaError as exc:  # the broker is away: the loop's poll retries from here on
            log.warning("%s: cannot read topic metadata (%s); subscribing anyway", log_as, exc)
            return
        if not missing:
            return
        if time.monotonic() > deadline:
            log.warning("%s: no partitions known for %s after %.0fs; subscribing anyway", log_as,
                        missing, timeout_s)
            return
        stopping.wait(0.5)


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
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}  # a commit the broker missed
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
        await_topic_metadata(self._consumer, self.topics, self._stopping, self.stage)
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
                    self._commit(commits)
                if max_records is not None and self.processed + self.dead_lettered >= max_records:
                    break
        finally:
            self._consumer.close(autocommit=False)
        return self.processed

    def _commit(self, commits: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit synchronously: once this returns, a restart resumes after these offsets. A
        commit the broker does not take (it is restarting, or the group rebalanced meanwhile) is
        not fatal: the work is durable and idempotent, so at worst its records come again. The
        offsets are offered again with the next commit, for partitions still ours."""
        assigned = self._consumer.assignment()
        offsets = {tp: o for tp, o in self._uncommitted.items() if tp in assigned}
        offsets.update(commits)
        try:
            self._consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("%s: offsets not committed (%s: %s); kept for the next commit", self.stage,
                        exc.__class__.__name__, exc)
            self._uncommitted = offsets
            return
        self._uncommitted = {}

    def _handle_partition(self, tp: TopicPartition, records: list[Record]) -> int | None:
        """Handle records in order; return the last offset whose work is durable."""
        done: int | None = None
        for record in records:
            if self._stopping.is_set():
                break
            outcome = self._handle_one(record)
            if outcome == "retry":
                if tp in self._consumer.assignment():  # not if a rebalance took it meanwhile
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
