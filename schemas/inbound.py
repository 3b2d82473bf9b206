"""The canonical inbound message: what every channel fills and the stream carries.

The wire model is versioned. A reader that meets a ``schema_version`` newer than
``SCHEMA_VERSION`` must not guess at it: ``ingest.serde`` sends such a record to the
dead-letter topic instead.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBFORM = "webform"
    PHONE = "phone"
    FACE_TO_FACE = "face_to_face"


class Automation(StrEnum):
    """Why a message must never open a ticket or trigger an acknowledgement."""

    NONE = "none"
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, Auto-Submitted
    BOUNCE = "bounce"  # delivery status notification (multipart/report)
    BULK = "bulk"  # Precedence: bulk / list mail


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Wire):
    """A person in the conversation: the resident, or someone copied in."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    postcode: str | None = None

    @field_validator("email")
    @classmethod
    def _normalise_email(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


class BlobRef(_Wire):
    """A payload kept in the content-addressed blob store, not in Kafka."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    media_type: str = "application/octet-stream"


class Attachment(_Wire):
    blob: BlobRef
    filename: str | None = None
    inline: bool = False
    content_id: str | None = None


class Threading(_Wire):
    """Hints a ticket consumer uses to join this message to an existing conversation."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    reference: str | None = None  # a Frontdoor reference number quoted by the resident


class Source(_Wire):
    """Where the message came from, in the channel's own terms."""

    mailboxes: list[str] = Field(default_factory=list)  # every department inbox it reached
    department_hint: str | None = None
    topic_hint: str | None = None
    twilio_sid: str | None = None
    form_id: str | None = None
    agent: str | None = None
    note_id: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class InboundMessage(_Wire):
    """One enquiry, or one message in an enquiry, as every channel delivers it."""

    schema_version: int = SCHEMA_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    channel: Channel
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    sender: Party
    to: list[Party] = Field(default_factory=list)
    cc: list[Party] = Field(default_factory=list)
    subject: str | None = None
    body_text: str = ""
    body_trimmed: str | None = None  # body without quoted replies or signature
    body_html: str | None = None  # raw HTML as received, sanitised only for display
    body_ref: BlobRef | None = None  # the whole body when it was too large for the stream
    attachments: list[Attachment] = Field(default_factory=list)
    raw: BlobRef | None = None  # the native payload (MIME, webhook form) as received
    threading: Threading = Field(default_factory=Threading)
    source: Source = Field(default_factory=Source)
    reference: str | None = None  # allocated at ingest so acknowledgements can quote it
    automation: Automation = Automation.NONE
    dedupe_key: str
    # What the channel had to repair or could not read, for the console to show beside the
    # message (e.g. "undecodable_part", "missing_boundary", "control_characters"). None when
    # clean, and then left out of the JSON, so readers that predate the field see no change.
    defects: list[str] | None = None

    @field_validator("received_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @property
    def text_for_routing(self) -> str:
        """Subject plus the resident's own words (quotes and signature removed)."""
        body = self.body_trimmed if self.body_trimmed is not None else self.body_text
        return f"{self.subject}\n\n{body}" if self.subject else body


def dedupe_key_for(channel: Channel | str, native_id: str) -> str:
    """A dedupe key from a source's own id (Message-ID, MessageSid, idempotency key)."""
    return f"{Channel(channel).value}:{native_id.strip()}"


def content_dedupe_key(channel: Channel | str, payload: bytes) -> str:
    """A dedupe key for a source without ids: a hash of its normalised content."""
    return f"{Channel(channel).value}:sha256:{hashlib.sha256(payload).hexdigest()}"
