"""Twilio SMS/MMS: a webhook's form fields → :class:`InboundMessage`, keywords, TwiML.

The HTTP side (signature check, the store, answering only after Kafka's ack) lives in
``web/``; this module only knows Twilio's field names and rules:

- a long text arrives as one ``Body`` however many segments it was sent in
  (``NumSegments`` says how many);
- MMS media are ``NumMedia`` pairs ``MediaUrl<N>`` / ``MediaContentType<N>``: they travel
  by reference (the URLs), and are fetched into the blob store in the background;
- a body that is exactly an opt-out / opt-in / help keyword (case-insensitive, surrounding
  space and punctuation ignored) is a control message, as Twilio's own Advanced Opt-Out
  treats it, not an enquiry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers
from twilio.twiml.messaging_response import MessagingResponse

from schemas.inbound import Channel, InboundMessage, Party, Source, Threading, dedupe_key_for
from schemas.reference import find_references
from schemas.text import normalise_space

# Twilio's default keywords (Messaging Services "Advanced Opt-Out" and the long-code defaults).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
_KEYWORD_TRIM = re.compile(r"^[\s\W_]+|[\s\W_]+$")
MAX_MEDIA = 10  # Twilio delivers at most ten media per MMS


class Keyword(StrEnum):
    NONE = "none"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


class SmsPayloadError(ValueError):
    """The webhook lacks what every Twilio message carries (MessageSid, From)."""


@dataclass(frozen=True, slots=True)
class MediaItem:
    url: str
    content_type: str | None


@dataclass(frozen=True, slots=True)
class SmsInbound:
    message_sid: str
    from_number: str
    to_number: str
    body: str
    num_segments: int = 1
    media: tuple[MediaItem, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def keyword(self) -> Keyword:
        return classify_keyword(self.body)

    @property
    def dedupe_key(self) -> str:
        return sms_dedupe_key(self.message_sid)


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    message_sid: str
    status: str
    to_number: str | None
    error_code: str | None


def sms_dedupe_key(message_sid: str) -> str:
    return dedupe_key_for(Channel.SMS, message_sid)


def classify_keyword(body: str) -> Keyword:
    word = _KEYWORD_TRIM.sub("", body).upper()
    if word in OPT_OUT_KEYWORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return Keyword.OPT_IN
    if word in HELP_KEYWORDS:
        return Keyword.HELP
    return Keyword.NONE


def normalise_phone(number: str) -> str:
    """E.164 where the number parses (region GB for national numbers), else as given, trimmed."""
    raw = number.strip()
    try:
        parsed = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_webhook(form: Mapping[str, str]) -> SmsInbound:
    """The fields of Twilio's incoming-message webhook, checked and normalised."""
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sid:
        raise SmsPayloadError("MessageSid is missing")
    if not sender:
        raise SmsPayloadError("From is missing")
    try:
        num_media = max(0, min(int(form.get("NumMedia") or 0), MAX_MEDIA))
    except ValueError:
        raise SmsPayloadError("NumMedia is not a number") from None
    media = tuple(
        MediaItem(url, form.get(f"MediaContentType{i}") or None)
        for i in range(num_media)
        if (url := (form.get(f"MediaUrl{i}") or "").strip())
    )
    try:
        segments = max(1, int(form.get("NumSegments") or 1))
    except ValueError:
        segments = 1
    extra = {k: str(form[k]) for k in ("AccountSid", "MessagingServiceSid", "FromCity", "FromCountry",
                                        "FromZip", "ToCountry", "OptOutType") if form.get(k)}
    return SmsInbound(
        message_sid=sid,
        from_number=normalise_phone(sender),
        to_number=normalise_phone(form.get("To") or ""),
        body=(form.get("Body") or "").replace("\r\n", "\n"),
        num_segments=segments,
        media=media,
        extra=extra,
    )


def to_inbound(sms: SmsInbound, reference: str, *, opted_out: bool = False) -> InboundMessage:
    """The canonical message for one SMS/MMS. Media are listed by URL in ``source.extra``
    (``media_<n>_url`` / ``media_<n>_type``) until fetched into the blob store."""
    extra = dict(sms.extra)
    extra["num_segments"] = str(sms.num_segments)
    extra["num_media"] = str(len(sms.media))
    for i, item in enumerate(sms.media):
        extra[f"media_{i}_url"] = item.url
        if item.content_type:
            extra[f"media_{i}_type"] = item.content_type
    if opted_out:
        extra["sms_opted_out"] = "true"  # whoever replies must not text this number
    quoted = find_references(sms.body)
    return InboundMessage(
        channel=Channel.SMS,
        sender=Party(phone=sms.from_number),
        to=[Party(phone=sms.to_number)] if sms.to_number else [],
        body_text=sms.body,
        body_trimmed=normalise_space(sms.body),
        threading=Threading(reference=quoted[0] if quoted else None),
        source=Source(twilio_sid=sms.message_sid, extra=extra),
        reference=reference,
        dedupe_key=sms.dedupe_key,
    )


def parse_status(form: Mapping[str, str]) -> DeliveryStatus:
    """Twilio's status callback for an outbound message (queued, sent, delivered, failed …)."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid or not status:
        raise SmsPayloadError("MessageSid and MessageStatus are required")
    return DeliveryStatus(sid, status[:32], normalise_phone(form["To"]) if form.get("To") else None,
                          (form.get("ErrorCode") or None))


HELP_TEXT = ("This is the council's enquiries number. Text us your enquiry and we will reply "
             "with a reference. Reply STOP to stop texts, START to receive them again.")
OPT_IN_TEXT = "You will receive texts from the council again. Reply STOP to stop."


def twiml(text: str | None) -> str:
    """TwiML answering a webhook: one reply message, or none at all (empty ``<Response/>``)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response.to_xml(xml_declaration=True))
