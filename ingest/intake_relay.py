"""The intake outbox's relay: committed rows → ``frontdoor.inbound``, each once, in order.

The HTTP channels answer as soon as their message is committed in the intake store
(:mod:`ingest.intake`); this relay publishes what Kafka has not acknowledged yet:

- in commit order, one batch at a time, by one relay at a time (a lease row in the store),
  so messages of one sender keep their order on the stream (one sender, one partition);
- a row is marked published only after Kafka's ack (acks=all) of that very record: a crash
  between the ack and the mark publishes it again on restart, which the dedupe key makes
  harmless downstream; nothing is ever marked without an ack;
- while the broker is away it waits and tries again (the producer is rebuilt after a failed
  batch, so an expired idempotent sequence never wedges it); a record Kafka refuses for good
  (too large, invalid) is counted per row and, after ``max_attempts``, left aside with its
  error (:meth:`IntakeStore.failures`) so it cannot stall the rows behind it.

It runs as a thread inside ``frontdoor web`` (woken by every commit) and as ``frontdoor relay``;
both may run at once, the lease lets one publish. Its backlog is exported as Prometheus gauges.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram

from ingest.bus import KafkaPublisher, message_key
from ingest.errors import PublishError
from ingest.intake_store import IntakeRow, IntakeStore
from schemas.inbound import InboundMessage

log = logging.getLogger(__name__)

LEASE = "inbound"

BACKLOG = Gauge("frontdoor_intake_backlog", "Intake rows committed but not yet acknowledged by Kafka")
OLDEST = Gauge("frontdoor_intake_backlog_oldest_seconds",
               "Age of the oldest intake row Kafka has not acknowledged (0: none)")
PUBLISHED = Counter("frontdoor_intake_published", "Intake rows published by the relay (Kafka acknowledged)")
REFUSED = Counter("frontdoor_intake_refused", "Intake rows Kafka refused (counted per attempt)")
DELAY = Histogram("frontdoor_intake_relay_delay_seconds", "From the intake commit to Kafka's ack",
                  buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))


@dataclass(frozen=True, slots=True)
class RelayResult:
    published: int
    refused: int
    transient: str | None = None  # why the batch stopped early (broker away), if it did


class IntakeRelay:
    """Publishes the intake outbox; see the module docstring for the guarantees."""

    def __init__(self, store: IntakeStore, publisher: KafkaPublisher, *, batch: int = 500,
                 poll_s: float = 0.5, lease_s: float = 60.0, max_attempts: int = 10,
                 retry_s: float = 2.0, linger_s: float = 0.005) -> None:
        self.store = store
        self.publisher = publisher
        self.batch = batch
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.retry_s = retry_s
        self.linger_s = linger_s  # after a wake-up, let a few more commits join the batch
        self._lease_until = 0.0  # monotonic: renew the lease when half of it has run
        self._exported = 0.0
        self.holder = f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"
        self.delays: deque[float] = deque(maxlen=100_000)  # commit → ack, seconds (benchmarks read it)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def wake(self) -> None:
        """A row was just committed: publish now rather than at the next poll."""
        self._wake.set()

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="intake-relay", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def run(self) -> None:
        """Until :meth:`stop`: publish whatever is committed, waking on commits or every poll."""
        try:
            while not self._stop.is_set():
                try:
                    result = self.drain_once()
                except Exception:  # the database away for a moment: log, wait, try again
                    log.exception("intake relay: a round failed; trying again")
                    result = RelayResult(0, 0, "error")
                if result.transient:
                    self._stop.wait(self.retry_s)
                elif result.published == 0 and result.refused == 0:
                    if self._wake.wait(self.poll_s) and self.linger_s:
                        self._stop.wait(self.linger_s)
                self._wake.clear()
        finally:
            self._release()

    def drain(self, timeout_s: float) -> bool:
        """Publish until nothing is left (True) or ``timeout_s`` passed (False): for one-shot
        commands such as ``import-calls``."""
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                result = self.drain_once()
                if result.published == 0 and result.refused == 0 and not result.transient:
                    if self.store.backlog()[0] == 0:
                        return True
                    time.sleep(self.poll_s)  # another relay holds the lease, or rows are left aside
                elif result.transient:
                    time.sleep(min(self.retry_s, max(0.0, deadline - time.monotonic())))
            return self.store.backlog()[0] == 0
        finally:
            self._release()

    def _release(self) -> None:
        self._lease_until = 0.0
        self.store.drop_lease(LEASE, self.holder)

    def _hold_lease(self) -> bool:
        """Take or renew the lease, but only when half of it has run (one write, not one a round)."""
        now = time.monotonic()
        if now < self._lease_until - self.lease_s / 2:
            return True
        if not self.store.take_lease(LEASE, self.holder, self.lease_s):
            self._lease_until = 0.0
            return False
        self._lease_until = now + self.lease_s
        return True

    # -- one round ---------------------------------------------------------------------------

    def drain_once(self) -> RelayResult:
        """Publish one batch of the oldest unpublished rows, if this relay holds the lease."""
        self._export_backlog()
        if not self._hold_lease():
            return RelayResult(0, 0)
        rows = self.store.unpublished(self.batch, self.max_attempts)
        if not rows:
            return RelayResult(0, 0)
        return self._publish(rows)

    def _publish(self, rows: list[IntakeRow]) -> RelayResult:
        try:
            producer = self.publisher.client.producer()
        except PublishError as exc:
            log.info("intake relay: %s; %d rows wait", exc, len(rows))
            return RelayResult(0, 0, str(exc))
        sent: list[tuple[IntakeRow, Any]] = []
        refused = 0
        transient: str | None = None
        for row in rows:
            message = InboundMessage.model_validate_json(row.message_json)
            try:
                value = self.publisher.encode(message)
            except PublishError as exc:  # too large even without its body: never publishable as is
                refused += self._refused(row, str(exc))
                continue
            except OSError as exc:  # the blob store (a spilled body) is full or unwritable: retry later
                transient = f"blob store: {exc}"
                break
            try:
                future = producer.send(self.publisher.topic, value=value, key=message_key(message),
                                       headers=[("schema-version", str(message.schema_version).encode())])
            except KafkaError as exc:
                transient = f"{exc.__class__.__name__}: {exc}"
                break
            sent.append((row, future))
        acked: list[IntakeRow] = []
        deadline = time.monotonic() + self.publisher.client.delivery_timeout_s + 5
        for row, future in sent:
            try:
                future.get(timeout=max(0.1, deadline - time.monotonic()))
            except KafkaError as exc:
                if getattr(exc, "retriable", False) or exc.__class__.__name__ == "KafkaTimeoutError":
                    transient = transient or f"{exc.__class__.__name__}: {exc}"
                else:
                    refused += self._refused(row, f"{exc.__class__.__name__}: {exc}")
                continue
            acked.append(row)
        if acked:
            self.store.mark_published([row.dedupe_key for row in acked])
            now = datetime.now(UTC)
            for row in acked:
                delay = (now - row.created_at).total_seconds()
                self.delays.append(delay)
                DELAY.observe(max(0.0, delay))
            PUBLISHED.inc(len(acked))
        if transient:
            log.warning("intake relay: Kafka did not take %d of %d rows (%s); trying again",
                        len(rows) - len(acked), len(rows), transient)
            self.publisher.client.close()  # a fresh producer next round: no stale idempotent state
        return RelayResult(len(acked), refused, transient)

    def _refused(self, row: IntakeRow, error: str) -> int:
        attempts = self.store.record_failure(row.dedupe_key, error)
        REFUSED.inc()
        level = logging.ERROR if attempts >= self.max_attempts else logging.WARNING
        aside = "; left aside for an operator" if attempts >= self.max_attempts else ""
        log.log(level, "intake relay: Kafka refused %s (attempt %d of %d): %s%s", row.dedupe_key, attempts,
                self.max_attempts, error, aside)
        return 1

    def _export_backlog(self) -> None:
        now = time.monotonic()
        if now - self._exported >= 1.0:  # a gauge, not a ledger: once a second is plenty
            self._exported = now
            export_backlog(self.store)


def export_backlog(store: IntakeStore) -> None:
    """Set the backlog gauges from the store (each relay round, and the web app's /metrics on
    every scrape, so they are current even while a batch waits for an absent broker)."""
    count, oldest = store.backlog()
    BACKLOG.set(count)
    OLDEST.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0)
