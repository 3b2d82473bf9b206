"""Exactly-once intake: a dedupe key gets one reference and reaches the stream once.

Every web path (Twilio, the form, the JSON API, agents' notes, the call import) goes
through :meth:`IntakeService.submit`:

1. a key already published answers with its reference at once (a Twilio retry, a
   double-clicked form, a re-imported CSV row) and publishes nothing;
2. a new key gets a fresh reference and its message is written to the store first (one
   transaction), so a retry after a broker failure publishes the very same message (same
   id, same reference);
3. a short lease on the row makes sure two concurrent requests with one key cannot both
   publish (the loser answers 503 and its sender retries);
4. only after Kafka acknowledged (acks=all) is the row marked published and the caller may
   answer its sender. A :class:`PublishError` leaves the row unpublished: the sender retries.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from connectors.base import Publisher, PublishError
from schemas.inbound import InboundMessage
from web.store import IntakeStore

log = logging.getLogger(__name__)

LEASE_S = 60.0


class IdempotencyConflictError(ValueError):
    """The same idempotency key came back with a different request."""


class InProgressError(PublishError):
    """Another request with the same key is being published right now; retry shortly."""


@dataclass(frozen=True, slots=True)
class Receipt:
    reference: str
    duplicate: bool  # True: this key was already on the stream; nothing was published now
    message: InboundMessage | None = None


def fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


class IntakeService:
    def __init__(self, store: IntakeStore, publisher: Publisher) -> None:
        self.store = store
        self.publisher = publisher

    def submit(self, dedupe_key: str, build: Callable[[str], InboundMessage],
               request_fingerprint: str | None = None, origin: str | None = None) -> Receipt:
        """Publish the message ``build(reference)`` once for ``dedupe_key``; blocking (call it
        from a thread pool in async code). Raises PublishError when Kafka did not take it,
        IdempotencyConflictError when the key was used for a different request."""
        row = self.store.get_intake(dedupe_key)
        if row is None:
            built: list[InboundMessage] = []

            def encode(reference: str) -> str:
                message = build(reference)
                if message.dedupe_key != dedupe_key or message.reference != reference:
                    raise ValueError("the built message must carry the dedupe key and reference it was given")
                built[:] = [message]
                return message.model_dump_json()

            reference = self.store.add_claimed(dedupe_key, encode, request_fingerprint, LEASE_S, origin)
            if reference is not None:  # new, and claimed by this request
                return self._publish(dedupe_key, reference, built[0])
            row = self.store.get_intake(dedupe_key)
            if row is None:  # pragma: no cover - the insert or a concurrent one just happened
                raise RuntimeError(f"intake row for {dedupe_key} vanished")
        if request_fingerprint is not None and row.fingerprint not in (None, request_fingerprint):
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used for a different request; use a new key")
        stored = InboundMessage.model_validate_json(row.message_json)
        if row.published:
            return Receipt(row.reference, duplicate=True, message=stored)
        if not self.store.claim(dedupe_key, LEASE_S):
            again = self.store.get_intake(dedupe_key)
            if again is not None and again.published:
                return Receipt(again.reference, duplicate=True, message=stored)
            raise InProgressError("the same request is being processed; retry in a few seconds")
        return self._publish(dedupe_key, row.reference, stored)

    def _publish(self, dedupe_key: str, reference: str, message: InboundMessage) -> Receipt:
        """Publish a claimed row; on any failure release the claim so a retry can publish."""
        try:
            self.publisher.publish(message)
        except BaseException:
            self.store.release(dedupe_key)
            raise
        self.store.mark_published(dedupe_key)
        log.debug("published %s as %s", dedupe_key, reference)
        return Receipt(reference, duplicate=False, message=message)
