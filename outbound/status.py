"""Delivery status back onto the outbox row: Twilio's status callbacks, GOV.UK Notify's
delivery receipts and email bounces.

A status only moves a row forward (``sent`` → ``delivered`` or ``failed``): a late ``sent``
callback after ``delivered`` changes nothing. A permanent failure (a mailbox that does not
exist, a landline, a number that sent STOP to Twilio) also marks the address or number
undeliverable, which the console shows on the ticket and which stops further messages to it.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from outbound.senders import TWILIO_PERMANENT
from schemas.inbound import Automation, InboundMessage
from tickets import outbox
from tickets.outbox import OutboxRow, OutboxStatus

log = logging.getLogger(__name__)

TWILIO_DELIVERED = frozenset({"delivered", "read"})
TWILIO_FAILED = frozenset({"failed", "undelivered", "canceled"})
# Notify's final statuses (its receipts carry only these): a permanent failure is a wrong address or
# number; a temporary one a full inbox or a phone off for days; a technical one Notify's own trouble.
NOTIFY_DELIVERED = frozenset({"delivered"})
NOTIFY_FAILED = frozenset({"permanent-failure", "temporary-failure", "technical-failure"})
NOTIFY_PERMANENT = frozenset({"permanent-failure"})
_MESSAGE_ID = re.compile(rb"<[^<>\s@]+@[^<>\s]+>")
_MESSAGE_ID_HEADER = re.compile(rb"^Message-ID:\s*(<[^<>\s@]+@[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_FINAL_RECIPIENT = re.compile(rb"^(?:Final|Original)-Recipient:\s*rfc822;\s*<?([^\s<>]+@[^\s<>]+)>?",
                              re.IGNORECASE | re.MULTILINE)
_DSN_STATUS = re.compile(rb"^Status:\s*([245])\.(\d{1,3})\.(\d{1,3})", re.IGNORECASE | re.MULTILINE)
_DSN_DIAGNOSTIC = re.compile(rb"^Diagnostic-Code:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def record_twilio_status(engine: Engine, message_sid: str, status: str,
                         error_code: str | None = None) -> OutboxRow | None:
    """Apply one Twilio status callback to the outbox row it names; None when the SID is not
    one of ours (the intake's own TwiML replies, or a database without the outbox yet)."""
    try:
        with engine.begin() as conn:
            row = outbox.by_provider_id(conn, message_sid)
            if row is None:
                return None
            status = status.lower()
            code = int(error_code) if error_code and error_code.isdigit() else None
            if status in TWILIO_DELIVERED:
                outbox.advance(conn, row.id, OutboxStatus.DELIVERED)
            elif status in TWILIO_FAILED:
                reason = f"Twilio {status}" + (f" (error {code})" if code else "")
                outbox.advance(conn, row.id, OutboxStatus.FAILED, reason=reason)
                if code in TWILIO_PERMANENT:
                    outbox.mark_undeliverable(conn, row.recipient, row.channel, reason, row.id)
            return outbox.get(conn, row.id)
    except (OperationalError, ProgrammingError) as exc:
        log.debug("no outbox to record Twilio status in: %s", exc)
        return None


def record_notify_receipt(engine: Engine, notification_id: str, reference: str | None,
                          status: str) -> OutboxRow | None:
    """Apply one Notify delivery receipt to the outbox row it is about; None when it names none
    of ours. The row is found by Notify's notification id (recorded at send time) or else by
    the reference we gave Notify (the row's idempotency key): a sender that crashed after Notify
    accepted the message has not recorded the id, and the receipt still lands on its row."""
    status = status.strip().lower()
    with engine.begin() as conn:
        row = outbox.by_provider_id(conn, notification_id) if notification_id else None
        if row is None and reference:
            row = outbox.by_idempotency_key(conn, reference)
            if row is not None and row.provider_id not in (None, notification_id):
                return None  # the reference of a row another notification is recorded for
        if row is None:
            return None
        if status in NOTIFY_DELIVERED:
            outbox.advance(conn, row.id, OutboxStatus.DELIVERED, provider_id=notification_id,
                           provider="notify")
        elif status in NOTIFY_FAILED:
            reason = f"Notify {status}"
            moved = outbox.advance(conn, row.id, OutboxStatus.FAILED, reason=reason,
                                   provider_id=notification_id, provider="notify")
            if moved and status in NOTIFY_PERMANENT:
                outbox.mark_undeliverable(conn, row.recipient, row.channel, reason, row.id)
        else:
            log.info("outbox %d (%s): Notify status %r is not final; nothing recorded", row.id,
                     row.reference, status)
        return outbox.get(conn, row.id)


def bounced_message_ids(message: InboundMessage, raw: bytes | None) -> list[str]:
    """The Message-IDs a bounce may be about, most telling first: the returned mail's own
    ``Message-ID:`` header (in the DSN's message/rfc822 or text/rfc822-headers part), the
    bounce's In-Reply-To, then any other Message-ID it quotes (a References chain names our
    earlier mails too, so those come last)."""
    thread = message.threading
    blobs = (raw or b"", message.body_text.encode("utf-8", "replace"))
    headers = [m.group(1) for blob in blobs for m in _MESSAGE_ID_HEADER.finditer(blob)]
    quoted = [m.group(0) for blob in blobs for m in _MESSAGE_ID.finditer(blob)]
    found: list[str] = []
    for mid in (*(h.decode("ascii", "replace") for h in headers), thread.in_reply_to,
                *(q.decode("ascii", "replace") for q in quoted), *thread.references):
        if mid and mid not in found and mid != thread.message_id:
            found.append(mid)
    return found


def bounced_recipient(raw: bytes | None, body_text: str) -> str | None:
    """The address the DSN says failed (``Final-Recipient: rfc822; …``), lower-cased."""
    for blob in (raw or b"", body_text.encode("utf-8", "replace")):
        match = _FINAL_RECIPIENT.search(blob)
        if match:
            return match.group(1).decode("utf-8", "replace").lower()
    return None


def dsn_is_permanent(raw: bytes | None, body_text: str) -> tuple[bool, str]:
    """Whether the bounce says the failure is permanent (DSN status 5.x.x), and why.
    A delay notice (4.x.x) is not a failure; a bounce with no status at all is taken as one."""
    for blob in (raw or b"", body_text.encode("utf-8", "replace")):
        match = _DSN_STATUS.search(blob)
        if match:
            status = b".".join(match.groups()).decode()
            diagnostic = _DSN_DIAGNOSTIC.search(blob)
            why = diagnostic.group(1).decode("utf-8", "replace").strip()[:300] if diagnostic else ""
            return status.startswith("5"), f"bounced {status}" + (f": {why}" if why else "")
    return True, "bounced (no delivery status given)"


def record_bounce(engine: Engine, message: InboundMessage, raw: bytes | None = None) -> OutboxRow | None:
    """Match a bounce (flagged by the email parser) to the outbound mail it returns, by that
    mail's Message-ID, and fail the row; a permanent bounce marks the address undeliverable."""
    if message.automation is not Automation.BOUNCE:
        return None
    permanent, reason = dsn_is_permanent(raw, message.body_text)
    with engine.begin() as conn:
        for mid in bounced_message_ids(message, raw):
            row = outbox.by_message_id(conn, mid)
            if row is None:
                continue
            if not permanent:
                log.info("outbox %d (%s): delivery delayed: %s", row.id, row.reference, reason)
                return row
            failed = bounced_recipient(raw, message.body_text)
            if failed is not None and failed != row.recipient and failed in row.cc:
                # only someone copied in bounced: the resident got it; stop copying that address
                outbox.mark_undeliverable(conn, failed, row.channel, reason, row.id)
                log.info("outbox %d (%s): copy to a participant bounced: %s", row.id, row.reference, reason)
                return outbox.get(conn, row.id)
            outbox.advance(conn, row.id, OutboxStatus.FAILED, reason=reason)
            outbox.mark_undeliverable(conn, row.recipient, row.channel, reason, row.id)
            log.info("outbox %d (%s) bounced: %s", row.id, row.reference, reason)
            return outbox.get(conn, row.id)
    return None
