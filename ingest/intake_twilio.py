"""``frontdoor twilio reconcile``: inbound SMS Twilio holds that never reached the intake.

When the web app itself was down (a deploy, a crash, a network cut), Twilio's webhook failed
and Twilio does not try again. Twilio's REST API still lists those messages: this lists the
inbound messages since a time with twilio's own client (``messages.list``), and commits any
MessageSid the intake store has not seen through the same :class:`IntakeService` as the
webhook (dedupe key ``sms:<MessageSid>``), so running it twice, or over a period the webhook
did serve, adds nothing. The relay then publishes them.

Opt-out, opt-in and help keywords are not replayed: Twilio applied them itself when they came
in, and they are not enquiries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from connectors.twilio_sms import (
    Keyword,
    SmsInbound,
    SmsPayloadError,
    parse_webhook,
    sms_dedupe_key,
    to_inbound,
)
from ingest.intake import IntakeService
from schemas.inbound import InboundMessage

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
INBOUND = "inbound"


@dataclass
class ReconcileReport:
    listed: int = 0  # inbound messages Twilio listed for the period
    ingested: int = 0  # new to the intake: committed now
    already_taken: int = 0  # the webhook (or an earlier reconcile) had them
    keywords: int = 0  # STOP / START / HELP: Twilio handled them
    references: dict[str, str] = field(default_factory=dict)  # MessageSid → reference (new ones)

    def as_dict(self) -> dict[str, int]:
        return {"listed": self.listed, "ingested": self.ingested, "already_taken": self.already_taken,
                "keywords": self.keywords}


def twilio_client(account_sid: str, auth_token: str, api_base: str = TWILIO_API) -> Any:
    """twilio's REST ``Client``; with ``api_base`` other than Twilio's own, its HTTP client sends
    there instead (a Twilio-compatible gateway, or a test's recording server)."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    base = api_base.rstrip("/")

    class _Based(TwilioHttpClient):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base != TWILIO_API and url.startswith(TWILIO_API):
                url = base + url[len(TWILIO_API):]
            return super().request(method, url, *args, **kwargs)

    return Client(account_sid, auth_token, http_client=_Based(timeout=30))


def reconcile(client: Any, intake: IntakeService, *, since: datetime,
              to: str | None = None) -> ReconcileReport:
    """Commit every inbound message since ``since`` (to ``to``, when given) not yet taken."""
    report = ReconcileReport()
    filters: dict[str, Any] = {"date_sent_after": since}
    if to:
        filters["to"] = to
    for message in client.messages.list(**filters):
        if not str(message.direction or "").startswith(INBOUND):
            continue
        report.listed += 1
        try:
            sms = parse_webhook(_fields(client, message))
        except SmsPayloadError as exc:
            log.warning("Twilio listed a message we cannot read (%s): skipped", exc)
            continue
        if sms.keyword is not Keyword.NONE:
            report.keywords += 1
            continue
        if intake.store.get_intake(sms_dedupe_key(sms.message_sid)) is not None:
            report.already_taken += 1
            continue
        opted_out = intake.store.is_opted_out(sms.from_number)
        receipt = intake.submit(sms.dedupe_key, partial(_build, sms, opted_out), origin="twilio reconcile")
        if receipt.duplicate:
            report.already_taken += 1
            continue
        report.ingested += 1
        report.references[sms.message_sid] = receipt.reference
        if sms.media:
            intake.store.add_media(sms.message_sid, [(m.url, m.content_type) for m in sms.media])
    return report


def _build(sms: SmsInbound, opted_out: bool, reference: str) -> InboundMessage:
    return to_inbound(sms, reference, opted_out=opted_out)


def _fields(client: Any, message: Any) -> dict[str, str]:
    """The REST resource in the webhook's field names, so one parser serves both."""
    fields = {
        "MessageSid": str(message.sid or ""),
        "AccountSid": str(message.account_sid or ""),
        "From": str(message.from_ or ""),
        "To": str(message.to or ""),
        "Body": str(message.body or ""),
        "NumSegments": str(message.num_segments or "1"),
        "NumMedia": str(message.num_media or "0"),
    }
    if message.messaging_service_sid:
        fields["MessagingServiceSid"] = str(message.messaging_service_sid)
    if int(message.num_media or 0) > 0:
        for i, medium in enumerate(client.messages(message.sid).media.list()):
            uri = str(medium.uri or "").removesuffix(".json")
            fields[f"MediaUrl{i}"] = f"{TWILIO_API}{uri}"  # what the webhook would have sent
            if medium.content_type:
                fields[f"MediaContentType{i}"] = str(medium.content_type)
        fields["NumMedia"] = str(sum(1 for k in fields if k.startswith("MediaUrl")))
    return fields
