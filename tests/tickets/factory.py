"""Routed records as the router writes them, for the tickets tests and the bench."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from ingest.bus import Record
from schemas.inbound import Channel, InboundMessage, Party, Source, Threading
from schemas.routed import RoutedMessage, Routing

_offsets = itertools.count()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def routed(message: InboundMessage, department: str = "waste", *, departments: list[str] | None = None,
           triage: bool = False, enquiry_type: str = "general", confidence: float = 0.9) -> RoutedMessage:
    return RoutedMessage(message=message, routing=Routing(
        department=department, departments=departments if departments is not None else [department],
        triage=triage, confidence=confidence, model_version="test-1", enquiry_type=enquiry_type,
        routed_at=message.received_at))


def email(sender: str, subject: str, body: str, *, message_id: str, in_reply_to: str | None = None,
          references: list[str] | None = None, cc: list[str] | None = None, at: datetime | None = None,
          name: str | None = None, mailboxes: list[str] | None = None) -> InboundMessage:
    return InboundMessage(
        channel=Channel.EMAIL, sender=Party(email=sender, name=name), subject=subject, body_text=body,
        cc=[Party(email=c) for c in cc or []], received_at=at or T0,
        threading=Threading(message_id=message_id, in_reply_to=in_reply_to, references=references or []),
        source=Source(mailboxes=mailboxes or []), dedupe_key=f"email:{message_id}")


def sms(phone: str, body: str, *, sid: str, at: datetime | None = None,
        reference: str | None = None) -> InboundMessage:
    return InboundMessage(channel=Channel.SMS, sender=Party(phone=phone), body_text=body,
                          received_at=at or T0, source=Source(twilio_sid=sid), reference=reference,
                          dedupe_key=f"sms:{sid}")


def form(email_address: str | None, phone: str | None, body: str, *, key: str, reference: str | None,
         name: str = "Ann Example", postcode: str | None = "SW1A 1AA", at: datetime | None = None,
         subject: str = "Missed bin collection") -> InboundMessage:
    return InboundMessage(channel=Channel.WEBFORM, received_at=at or T0,
                          sender=Party(name=name, email=email_address, phone=phone, postcode=postcode),
                          subject=subject, body_text=body, reference=reference, dedupe_key=f"webform:{key}")


def record(value: RoutedMessage | bytes, topic: str = "frontdoor.dept.waste", partition: int = 0,
           offset: int | None = None) -> Record:
    data = value if isinstance(value, bytes) else value.model_dump_json().encode()
    return Record(topic=topic, partition=partition, offset=next(_offsets) if offset is None else offset,
                  key=None, value=data)


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
