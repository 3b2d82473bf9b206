"""Exactly-once intake: a dedupe key gets one reference and reaches the stream once.

Every HTTP channel (Twilio, the form, the JSON API, agents' notes) and the call import go
through :meth:`IntakeService.submit`, which only commits: the reference (from the injected
:class:`ReferenceAllocator`) and the message are written in one transaction of the intake
store, and the caller answers its sender at once. Publishing is the relay's job
(:mod:`ingest.intake_relay`): it marks a row published only after Kafka's ack, so a broker
outage delays messages but loses none and never turns into a 5xx the sender has to retry.

A key already taken answers with its reference and adds nothing (a Twilio retry, a
double-clicked form, a re-imported CSV row).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ingest.intake_store import IntakeStore, references
from schemas.inbound import InboundMessage
from schemas.reference import new_reference

log = logging.getLogger(__name__)


class IdempotencyConflictError(ValueError):
    """The same idempotency key came back with a different request."""


class ReferenceAllocator(Protocol):
    """Issues the reference of a new message.

    Called inside the intake's own transaction (``conn``), so the reference and the intake row
    commit together or not at all. One allocator serves every channel, so one unique constraint
    covers them all; the tickets database's allocator plugs in here.
    """

    def allocate(self, conn: Connection, dedupe_key: str) -> str: ...


class TableReferenceAllocator:
    """The default allocator: a random reference recorded in ``intake_references``; a clash
    (35 bits: practically never) draws again inside a savepoint, so the transaction survives."""

    def __init__(self, attempts: int = 10) -> None:
        self.attempts = attempts

    def allocate(self, conn: Connection, dedupe_key: str) -> str:
        for _ in range(self.attempts):
            ref = new_reference()
            try:
                with conn.begin_nested():
                    conn.execute(insert(references).values(reference=ref, dedupe_key=dedupe_key,
                                                           issued_at=datetime.now(UTC)))
                return ref
            except IntegrityError:
                continue
        raise RuntimeError("could not draw an unused reference number")


@dataclass(frozen=True, slots=True)
class Receipt:
    reference: str
    duplicate: bool  # True: this key was taken before; nothing new was committed now
    message: InboundMessage | None = None


def fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


class IntakeService:
    """Commits messages to the intake outbox; ``on_commit`` (the in-process relay's wake-up)
    is called after each new commit so publishing starts without waiting for a poll."""

    def __init__(self, store: IntakeStore, allocator: ReferenceAllocator | None = None,
                 on_commit: Callable[[], None] | None = None) -> None:
        self.store = store
        self.allocator = allocator or TableReferenceAllocator()
        self.on_commit = on_commit

    def submit(self, dedupe_key: str, build: Callable[[str], InboundMessage],
               request_fingerprint: str | None = None, origin: str | None = None,
               gate: Callable[[Connection], int | None] | None = None) -> Receipt:
        """Commit the message ``build(reference)`` once for ``dedupe_key``; blocking (call it from
        a thread pool in async code). Returns once the row is durable: answer the sender then.
        Raises IdempotencyConflictError when the key was used for a different request,
        RateLimitedError when ``gate`` (counted in the same transaction) refused, and the
        database's own error when the commit failed (answer 503: nothing was taken)."""
        built: list[InboundMessage] = []

        def encode(reference: str) -> str:
            message = build(reference)
            if message.dedupe_key != dedupe_key or message.reference != reference:
                raise ValueError("the built message must carry the dedupe key and reference it was given")
            built[:] = [message]
            return message.model_dump_json()

        row, created = self.store.add(dedupe_key, encode, request_fingerprint, self.allocator.allocate,
                                      origin, gate)
        if created:
            if self.on_commit is not None:
                self.on_commit()
            log.debug("committed %s as %s", dedupe_key, row.reference)
            return Receipt(row.reference, duplicate=False, message=built[0])
        if request_fingerprint is not None and row.fingerprint not in (None, request_fingerprint):
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used for a different request; use a new key")
        stored = InboundMessage.model_validate_json(row.message_json)
        return Receipt(row.reference, duplicate=True, message=stored)
