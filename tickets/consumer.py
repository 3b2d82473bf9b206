"""The ticket stage's process: a stored-offset consumer loop feeding :class:`TicketWriter`.

One member of the consumer group ``frontdoor-tickets`` on every department topic and
``frontdoor.triage``; several may run. Each polled batch is one database transaction holding
the messages, the ticket changes, the outbox rows they cause and the consumed offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from ingest.stored_offsets import Batch
from tickets.service import BatchOutcome, TicketWriter

log = logging.getLogger(__name__)


@dataclass
class TicketStats:
    batches: int = 0
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead: int = 0
    opened: int = 0

    def add(self, outcome: BatchOutcome) -> None:
        self.batches += 1
        self.applied += outcome.applied
        self.duplicates += outcome.duplicates
        self.ignored += outcome.ignored
        self.dead += outcome.dead
        self.opened += outcome.opened


class TicketConsumer:
    """The handler :class:`ingest.stored_offsets.StoredOffsetLoop` calls for each batch."""

    def __init__(self, engine: Engine, writer: TicketWriter) -> None:
        self.engine = engine
        self.writer = writer
        self.stats = TicketStats()

    def load_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        with self.engine.connect() as conn:
            return self.writer.stored_offsets(conn, partitions)

    def __call__(self, batch: Batch) -> None:
        # engine.begin(): commit on success, roll back on any error (the loop redoes the batch;
        # a unique constraint lost to another consumer is found as already done next time).
        with self.engine.begin() as conn:
            outcome = self.writer.write_batch(conn, batch.records, batch.dead_letter, skip=batch.skip)
        self.stats.add(outcome)
        log.debug("tickets: batch of %d: %s", len(batch.records), outcome)


@dataclass(frozen=True)
class StageTopics:
    """What the stage reads and where it writes; a prefix keeps tests and benchmarks apart."""

    departments: tuple[str, ...]
    prefix: str = ""

    @property
    def inputs(self) -> list[str]:
        from schemas.topics import TRIAGE, department_topic

        return [self.prefix + department_topic(d) for d in self.departments] + [self.prefix + TRIAGE]

    @property
    def dlq(self) -> str:
        from schemas.topics import DLQ

        return self.prefix + DLQ

    @property
    def events(self) -> str:
        from schemas.topics import EVENTS

        return self.prefix + EVENTS


def run_stage(engine: Engine, bootstrap: str, topics: StageTopics, writer: TicketWriter, *,
              group_id: str, max_poll_records: int = 500, idle_timeout_s: float | None = None,
              relay: bool = True, install_signals: bool = True) -> TicketStats:
    """Run one member of the ticket consumer group until stopped (or idle), with the events
    relay in a thread beside it. The caller has checked the schema (``require_current``)."""
    import threading

    from ingest.admin import ensure_topics
    from ingest.bus import DeadLetterWriter, KafkaProducerClient
    from ingest.stored_offsets import StoredOffsetLoop
    from schemas.topics import CORE_TOPICS, TopicSpec, department_topics
    from tickets.events import EventsRelay

    specs = [TopicSpec(topics.prefix + s.name, s.partitions, s.key, s.retention_ms, s.purpose)
             for s in (*CORE_TOPICS, *department_topics(topics.departments))]
    ensure_topics(bootstrap, specs)
    consumer = TicketConsumer(engine, writer)
    client = KafkaProducerClient(bootstrap, client_id=f"{group_id}-out")
    loop = StoredOffsetLoop(bootstrap, topics.inputs, group_id, consumer, stage="tickets",
                            dead_letters=DeadLetterWriter(client, topics.dlq),
                            max_poll_records=max_poll_records)
    if install_signals:
        loop.install_signal_handlers()
    stopping = threading.Event()
    events = EventsRelay(engine, lambda t, k, v, h: client.send(t, v, k, h), topics.events)
    thread = events.run_in_thread(stopping) if relay else None
    try:
        loop.run(idle_timeout_s=idle_timeout_s)
    finally:
        stopping.set()
        if thread is not None:
            thread.join(timeout=10)
            try:
                events.drain()
            except Exception as exc:  # noqa: BLE001 - the next run publishes them
                log.warning("events relay: could not drain at exit: %s", exc)
        client.close()
    return consumer.stats
