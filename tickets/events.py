"""The events relay: audit rows of ``ticket_events`` → ``frontdoor.events``, keyed by reference.

The audit history is the outbox: a ticket change writes its event row in the change's own
transaction, and this relay publishes rows not yet published, then marks them. Delivery is at
least once (a relay killed between Kafka's ack and its own commit publishes those rows again),
so every event carries its ``event_id`` for readers to drop repeats. Several relays may run:
on PostgreSQL each claims rows with ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, select, update

from tickets.models import TicketEvent, aware, table_of, utcnow

log = logging.getLogger(__name__)

events_t = table_of(TicketEvent)
TICKET_EVENT_SCHEMA_VERSION = 1

# topic, key, value, headers: ingest's KafkaProducerClient.send (waits for the broker's ack)
Send = Callable[[str, bytes, bytes, dict[str, bytes]], None]


class TicketEventWire(BaseModel):
    """One ticket event on ``frontdoor.events`` (beside the router's ``RoutingEvent``s, told
    apart by ``source``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = TICKET_EVENT_SCHEMA_VERSION
    source: str = "tickets"
    event_id: int
    kind: str
    reference: str
    ticket_id: int
    actor: str
    at: datetime
    detail: dict[str, Any]


class EventsRelay:
    def __init__(self, engine: Engine, send: Send, topic: str, *, batch: int = 500) -> None:
        self.engine = engine
        self.send = send
        self.topic = topic
        self.batch = batch
        self.published = 0

    def publish_pending(self) -> int:
        """Publish up to one batch of unpublished events, oldest first; return how many."""
        with self.engine.begin() as conn:
            query = (select(events_t).where(events_t.c.published_at.is_(None))
                     .order_by(events_t.c.id).limit(self.batch))
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            if not rows:
                return 0
            for row in rows:
                self.send(self.topic, row.reference.encode(), encode_event(row),
                          {"event-kind": row.kind.encode(), "schema-version": b"1"})
            conn.execute(update(events_t).where(events_t.c.id.in_([r.id for r in rows]))
                         .values(published_at=utcnow()))
        self.published += len(rows)
        return len(rows)

    def drain(self) -> int:
        total = 0
        while count := self.publish_pending():
            total += count
        return total

    def run_in_thread(self, stopping: threading.Event, interval_s: float = 1.0) -> threading.Thread:
        def loop() -> None:
            while not stopping.is_set():
                try:
                    if self.publish_pending() == self.batch:
                        continue
                except Exception as exc:  # the broker or the database is away: later
                    log.warning("events relay: %s: %s; will retry", exc.__class__.__name__, exc)
                stopping.wait(interval_s)

        thread = threading.Thread(target=loop, name="events-relay", daemon=True)
        thread.start()
        return thread


def encode_event(row: Any) -> bytes:
    return TicketEventWire(event_id=row.id, kind=row.kind, reference=row.reference, ticket_id=row.ticket_id,
                           actor=row.actor, at=aware(row.at) or utcnow(), detail=row.detail or {}
                           ).model_dump_json().encode()


def decode_events(values: Sequence[bytes]) -> list[TicketEventWire]:
    return [TicketEventWire.model_validate_json(v) for v in values]
