"""The web contact form and its JSON twin: fields → checked enquiry → :class:`InboundMessage`.

One model serves both the browser form and ``POST /api/enquiries``, so both give the same
answer to the same mistake. Messages follow the GOV.UK pattern: they say what to do
("Enter a real postcode, like SW1A 1AA"), one per field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from schemas.inbound import (
    Attachment,
    BlobRef,
    Channel,
    InboundMessage,
    Party,
    Source,
    Threading,
    dedupe_key_for,
)
from schemas.reference import find_references
from schemas.text import normalise_space

MAX_MESSAGE_CHARS = 10_000
MAX_CC = 10
_POSTCODE = re.compile(  # the letters each position may hold, per Royal Mail's rules
    r"^(GIR0AA|(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])[0-9][ABD-HJLNP-UW-Z]{2})$"
)
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,200}$")

FIELD_ORDER = ("name", "email", "phone", "address", "postcode", "message", "cc", "topic", "attachments")


class EnquiryInvalidError(ValueError):
    """What is wrong, one message per field (field name → message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        ordered = {k: errors[k] for k in sorted(errors, key=_field_rank)}
        super().__init__("; ".join(f"{k}: {v}" for k, v in ordered.items()))
        self.errors = ordered


def _field_rank(name: str) -> int:
    return FIELD_ORDER.index(name) if name in FIELD_ORDER else len(FIELD_ORDER)


def blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def check_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValueError("Enter an email address in the correct format, like name@example.com") from None


def check_phone(value: str) -> str:
    """E.164 for a valid UK number (or an international one written with +)."""
    message = "Enter a telephone number, like 01234 567 890, 07911 123 456 or +44 808 157 0192"
    if len(value) > 40:
        raise ValueError(message)
    try:
        parsed = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        raise ValueError(message) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(message)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_postcode(value: str) -> str:
    """A UK postcode in its canonical form (upper case, one space before the inward code)."""
    compact = re.sub(r"\s+", "", value.upper())
    if not _POSTCODE.match(compact):
        raise ValueError("Enter a real postcode, like SW1A 1AA")
    return f"{compact[:-3]} {compact[-3:]}"


class ResidentContact(BaseModel):
    """Who the resident is and how to reach them; the form and agents' notes share it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200, description="the resident's name")
    email: str | None = Field(default=None, description="email address to reply to (email and/or phone)")
    phone: str | None = Field(default=None, description="UK telephone number (email and/or phone)")
    address: str | None = Field(default=None, max_length=500, description="address the enquiry is about")
    postcode: str | None = Field(default=None, description="UK postcode, e.g. SW1A 1AA")

    _blank = field_validator("name", "email", "phone", "address", "postcode", mode="before")(blank_to_none)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return check_email(value) if value else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return check_phone(value) if value else None

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        return check_postcode(value) if value else None


class EnquiryForm(ResidentContact):
    """An enquiry from the contact form or the JSON API."""

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="the enquiry itself")
    cc: list[str] = Field(default_factory=list, max_length=MAX_CC, description="emails to copy in")
    topic: str | None = Field(default=None, description="optional topic hint, e.g. bins")

    _blank_topic = field_validator("topic", mode="before")(blank_to_none)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _TOPIC.match(value.lower()):
            raise ValueError("Topic must be up to 60 letters, numbers, hyphens or underscores")
        return value.lower()

    @field_validator("cc", mode="before")
    @classmethod
    def _split_cc(cls, value: Any) -> Any:
        if isinstance(value, str):  # the browser form: one text box, commas or new lines
            return [part for part in re.split(r"[,;\s]+", value) if part]
        return value

    @field_validator("cc")
    @classmethod
    def _cc(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for item in value:
            item = item.strip()
            if not item:
                continue
            try:
                address = check_email(item)
            except ValueError:
                raise ValueError(
                    f"Enter each email address to copy in correctly, like name@example.com "
                    f"('{item[:60]}' is not one)") from None
            if address not in out:
                out.append(address)
        return out


def field_errors(exc: ValidationError) -> dict[str, str]:
    """First problem per field, in words a resident understands."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        field = str(loc[0]) if loc else "body"
        errors.setdefault(field, describe_error(error, field))
    return errors


_ENTER = {"message": "Enter your message", "note": "Enter the note", "summary": "Enter a summary"}


def describe_error(error: ErrorDetails, field: str) -> str:
    """One pydantic error as a sentence (our validators' own messages as they are)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind in ("missing", "string_too_short") and field in _ENTER:
        return _ENTER[field]
    if kind.startswith(("datetime", "date_")):
        return "Enter the date and time in ISO 8601 form, like 2026-11-25T14:03:00Z"
    if kind == "missing":
        return f"{field.capitalize()} is required"
    if kind == "extra_forbidden":
        return f"'{field}' is not a field of this form"
    if kind == "string_too_long":
        return f"{field.capitalize()} must be {ctx.get('max_length')} characters or fewer"
    if kind == "too_long" and field == "cc":
        return f"Copy in at most {MAX_CC} email addresses"
    return str(error.get("msg", "invalid value"))


def parse_enquiry(data: Mapping[str, Any]) -> EnquiryForm:
    """Check an enquiry; raises :class:`EnquiryInvalidError` with a message per field."""
    if not isinstance(data, Mapping):
        raise EnquiryInvalidError({"body": "Send the enquiry as a JSON object"})
    try:
        form = EnquiryForm.model_validate(dict(data))
    except ValidationError as exc:
        errors = field_errors(exc)
        if not _present(data.get("email")) and not _present(data.get("phone")):
            errors.setdefault("email", CONTACT_MISSING)
        raise EnquiryInvalidError(errors) from None
    if not form.email and not form.phone:
        raise EnquiryInvalidError({"email": CONTACT_MISSING})
    return form


CONTACT_MISSING = "Enter an email address or a telephone number, so we can reply to you"


def _present(value: Any) -> bool:
    return bool(value.strip()) if isinstance(value, str) else value is not None


def check_idempotency_key(value: str) -> str:
    if not _IDEMPOTENCY_KEY.match(value):
        raise ValueError("Idempotency-Key must be 8 to 200 letters, digits or . _ : -")
    return value


def webform_dedupe_key(idempotency_key: str) -> str:
    return dedupe_key_for(Channel.WEBFORM, idempotency_key)


# -- attachments ---------------------------------------------------------------------------

# extension → (media type, leading bytes that content of that type starts with; None: text)
ALLOWED_TYPES: dict[str, tuple[str, tuple[bytes, ...] | None]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    "odt": ("application/vnd.oasis.opendocument.text", (b"PK\x03\x04",)),
    "txt": ("text/plain", None),
}


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    data: bytes


def size_label(n_bytes: int) -> str:
    """A size limit as a resident reads it: "10 MB", "1.5 MB", "500 KB", "900 bytes"."""
    if n_bytes >= 1024 * 1024:
        return f"{round(n_bytes / (1024 * 1024), 1):g} MB"
    if n_bytes >= 1024:
        return f"{n_bytes // 1024} KB"
    return f"{n_bytes} bytes"


def check_upload(upload: Upload, max_bytes: int) -> str:
    """The media type of an acceptable attachment; ValueError saying why it is not."""
    name = upload.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = ", ".join(sorted({e.upper() for e in ALLOWED_TYPES if e != "jpeg"}))
    if extension not in ALLOWED_TYPES:
        raise ValueError(f"{name} must be a {allowed} file")
    if not upload.data:
        raise ValueError(f"{name} is empty")
    if len(upload.data) > max_bytes:
        raise ValueError(f"{name} must be smaller than {size_label(max_bytes)}")
    media_type, magic = ALLOWED_TYPES[extension]
    if magic is None:
        try:
            upload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{name} is not a plain text file") from None
    elif not upload.data.startswith(magic):
        raise ValueError(f"{name} is not really a {extension.upper()} file")
    return media_type


def safe_filename(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return re.sub(r"[^\w.\- ]", "_", name)[:200] or "attachment"


def attachment(blob: BlobRef, filename: str) -> Attachment:
    return Attachment(blob=blob, filename=safe_filename(filename))


def to_inbound(form: EnquiryForm, reference: str, dedupe_key: str, *, form_id: str = "contact",
               attachments: list[Attachment] | None = None) -> InboundMessage:
    quoted = find_references(form.message)
    return InboundMessage(
        channel=Channel.WEBFORM,
        sender=Party(name=form.name, email=form.email, phone=form.phone, address=form.address,
                     postcode=form.postcode),
        cc=[Party(email=address) for address in form.cc],
        body_text=form.message,
        body_trimmed=normalise_space(form.message),
        attachments=attachments or [],
        threading=Threading(reference=quoted[0] if quoted else None),
        source=Source(form_id=form_id, topic_hint=form.topic),
        reference=reference,
        dedupe_key=dedupe_key,
    )
