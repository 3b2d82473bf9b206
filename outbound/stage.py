"""The sender stage: outbox rows → ``frontdoor.outbound`` → the resident's channel.

Two parts, both in ``frontdoor outbound``:

* :class:`OutboxRelay` publishes rows nobody has published yet (and rows a dead sender left
  ``sending`` past their lease) to ``frontdoor.outbound``, keyed by recipient; a row is marked
  published only after Kafka's ack, so while the broker is away replies wait in the outbox
  and go when it is back (on a fresh producer: see :meth:`OutboxRelay.run`).
* :class:`OutboxSender` handles each record: it claims the row (``created`` → ``sending``, one
  conditional UPDATE), renders it, hands it to the provider and records ``sent`` with the
  provider's id. A redelivered record finds the row no longer ``created`` and does nothing.

A crash between the provider's acceptance and the ``sent`` UPDATE leaves one row ``sending``;
after its lease the relay offers it again and it is sent again with the same Message-ID. That
is the only message a crash can send twice.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import jinja2
from sqlalchemy import Engine

from ingest.bus import KafkaProducerClient, Record
from ingest.errors import PoisonMessageError, PublishError
from outbound.rendering import TemplateSet
from outbound.senders import EmailSender, SendError, SmsSender
from outbound.sms import WARN_ABOVE_SEGMENTS, count_segments
from schemas.topics import OUTBOUND
from tickets import outbox
from tickets.outbox import OutboxChannel, OutboxKind, OutboxRow, OutboxStatus

log = logging.getLogger(__name__)


def encode_record(row: OutboxRow) -> tuple[bytes, bytes]:
    """(key, value) of a row's record: keyed by recipient so one resident's messages keep order."""
    value = json.dumps({"outbox_id": row.id, "idempotency_key": row.idempotency_key,
                        "channel": row.channel.value}, separators=(",", ":")).encode()
    return row.recipient.encode(), value


def decode_record(value: bytes | None) -> tuple[int, str]:
    """(outbox id, idempotency key) of a record."""
    try:
        data = json.loads(value or b"")
        return int(data["outbox_id"]), str(data["idempotency_key"])
    except (ValueError, TypeError, KeyError) as exc:
        raise PoisonMessageError("malformed_outbound", f"not an outbound record: {exc}") from None


class OutboxRelay:
    """Publishes outbox rows to ``frontdoor.outbound``; each row after Kafka's ack."""

    def __init__(self, engine: Engine, client: KafkaProducerClient, *, topic: str = OUTBOUND,
                 batch: int = 500) -> None:
        self.engine = engine
        self.client = client
        self.topic = topic
        self.batch = batch

    def relay_once(self) -> int:
        """Publish one batch; the number published. Each row is marked published only after
        Kafka acknowledged its record; on a :class:`PublishError` the rest wait for next time."""
        with self.engine.connect() as conn:
            rows = outbox.to_publish(conn, limit=self.batch)
        done: list[int] = []
        try:
            for row in rows:
                key, value = encode_record(row)
                self.client.send(self.topic, value, key, wait=True)
                done.append(row.id)
        finally:
            if done:
                with self.engine.begin() as conn:
                    outbox.mark_published(conn, done)
        return len(done)

    def _renew_producer(self) -> None:
        try:
            self.client.close()  # the next send makes a new one
        except Exception as exc:  # noqa: BLE001 - a producer that cannot even close is dropped all the same
            log.debug("outbox relay: closing the failed producer: %s", exc)

    def run(self, stopping: threading.Event, interval_s: float = 0.5) -> None:
        failing = False
        while not stopping.is_set():
            try:
                published = self.relay_once()
            except PublishError as exc:
                if not failing:
                    log.warning("outbox relay: broker unavailable (%s); rows wait in the outbox", exc)
                failing = True
                # A new producer for the next try, as the router renews its own after a failed
                # batch: records that expired unacknowledged leave an idempotent producer's
                # sequence numbers in doubt, and one kept across the outage may never publish
                # again. A record published twice is harmless (the sender claims each row once).
                self._renew_producer()
                stopping.wait(2.0)
                continue
            except Exception:
                log.exception("outbox relay failed; retrying")
                stopping.wait(2.0)
                continue
            if failing:
                log.info("outbox relay: broker back; %d rows published", published)
                failing = False
            if published < self.batch:
                stopping.wait(interval_s)


@dataclass
class SenderCounts:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    retried: int = 0
    skipped: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class OutboxSender:
    """Sends the row a record names, if it is still to be sent (see the module docstring)."""

    def __init__(self, engine: Engine, templates: TemplateSet, *, email: EmailSender | None,
                 sms: SmsSender | None, opted_out: Callable[[str], bool] = lambda _number: False,
                 lease_s: float = 60.0, retry_in_s: float = 30.0) -> None:
        self.engine = engine
        self.templates = templates
        self.email = email
        self.sms = sms
        self.opted_out = opted_out
        self.lease_s = lease_s
        self.retry_in_s = retry_in_s
        self.counts = SenderCounts()

    def handle(self, record: Record) -> None:
        outbox_id, key = decode_record(record.value)
        self.send(outbox_id, expect_key=key)

    def close(self) -> None:
        """Close the providers' connections (the relay's SMTP session)."""
        for provider in {id(p): p for p in (self.email, self.sms) if p is not None}.values():
            closer = getattr(provider, "close", None)
            if closer is not None:
                closer()

    def send(self, outbox_id: int, *, expect_key: str | None = None) -> OutboxStatus | None:
        """Send one row if it can be claimed; the status it ended in, None if not claimed.
        ``expect_key`` guards against a record from another database (a restored backup, a
        second deployment on the same cluster): a row whose key differs is left alone."""
        with self.engine.begin() as conn:
            row = outbox.claim(conn, outbox_id, lease_s=self.lease_s, idempotency_key=expect_key)
            marked = outbox.undeliverable_addresses(conn, [row.recipient]) if row is not None else {}
        if row is None:
            self.counts.skipped += 1  # sent already, another sender's, or not a row of this database
            return None
        reason = self._suppression(row, marked)
        if reason:
            return self._finish(row, OutboxStatus.SUPPRESSED, reason)
        try:
            provider, provider_id = self._deliver(row)
        except jinja2.TemplateError as exc:  # checked at start-up, so only a row this code cannot render
            reason = f"template does not render this message: {exc}"
            log.error("outbox %d (%s): %s", row.id, row.reference, reason)
            with self.engine.begin() as conn:
                outbox.advance(conn, row.id, OutboxStatus.FAILED, reason=reason)
            self.counts.failed += 1
            return OutboxStatus.FAILED
        except SendError as exc:
            if not exc.permanent:
                log.warning("outbox %d (%s): %s; trying again in %.0f s", row.id, row.reference, exc.reason,
                            self.retry_in_s)
                with self.engine.begin() as conn:
                    outbox.release(conn, row.id, exc.reason, retry_in_s=self.retry_in_s)
                self.counts.retried += 1
                return OutboxStatus.SENDING
            log.warning("outbox %d (%s): permanent failure: %s", row.id, row.reference, exc.reason)
            with self.engine.begin() as conn:
                outbox.advance(conn, row.id, OutboxStatus.FAILED, reason=exc.reason)
                outbox.mark_undeliverable(conn, row.recipient, row.channel, exc.reason, row.id)
            self.counts.failed += 1
            return OutboxStatus.FAILED
        with self.engine.begin() as conn:
            outbox.advance(conn, row.id, OutboxStatus.SENT, provider_id=provider_id, provider=provider)
        self.counts.sent += 1
        return OutboxStatus.SENT

    def _suppression(self, row: OutboxRow, marked: dict[str, str]) -> str | None:
        if row.channel is OutboxChannel.SMS and self.opted_out(row.recipient):
            return "the number opted out (STOP)"
        if marked:
            return f"undeliverable: {marked[row.recipient]}"
        return None

    def _finish(self, row: OutboxRow, status: OutboxStatus, reason: str) -> OutboxStatus:
        with self.engine.begin() as conn:
            outbox.advance(conn, row.id, status, reason=reason)
        log.info("outbox %d (%s) %s: %s", row.id, row.reference, status.value, reason)
        self.counts.suppressed += 1
        return status

    def _deliver(self, row: OutboxRow) -> tuple[str, str]:
        kind = row.kind.value
        variables = dict(row.context)
        if row.kind is OutboxKind.REPLY:
            variables.update(body=row.body or "", author=row.author or "")
        if row.channel is OutboxChannel.EMAIL:
            if self.email is None:
                raise SendError("no email sender configured (FRONTDOOR_RELAY_HOST or Notify)",
                                permanent=False)
            return self.email.name, self.email.send_email(row, self.templates.email(kind, variables))
        if self.sms is None:
            raise SendError("no SMS sender configured (FRONTDOOR_TWILIO_* or Notify)", permanent=False)
        text = self.templates.sms(kind, variables)
        segments = count_segments(text)
        if segments.segments > WARN_ABOVE_SEGMENTS:
            log.warning("outbox %d (%s): %d SMS segments", row.id, row.reference, segments.segments)
        return self.sms.name, self.sms.send_sms(row, text)
