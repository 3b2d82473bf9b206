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
