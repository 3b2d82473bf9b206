"""Contact-centre notes: an agent's note of a call or a visit, from the JSON API or a
telephony system's CSV export, → :class:`InboundMessage`.

CSV columns (header row required, names case-insensitive, order free, others ignored):

=================  ========  ===========================================================
column             required  meaning
=================  ========  ===========================================================
call_id            no        the telephony system's id of the call: the dedupe key
                             (without it, a hash of the row is)
started_at         no        when the call started, ISO 8601 (``2026-11-25T14:03:00Z``)
agent              no        who took the call
caller_name        one of    the resident's name
caller_phone       these     the resident's number (UK, or international with +)
caller_email       three     the resident's email address
caller_address     no        the address the enquiry is about
caller_postcode    no        UK postcode
summary            yes       one line: what the call was about
notes              yes       the agent's full note
channel            no        ``phone`` (default) or ``face_to_face``
reference          no        an existing Frontdoor reference this call is about
=================  ========  ===========================================================
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.webform import ResidentContact, blank_to_none, describe_error
from schemas.inbound import Channel, InboundMessage, Party, Source, Threading, content_dedupe_key
from schemas.reference import normalise_reference
from schemas.text import normalise_space

CSV_COLUMNS = ("call_id", "started_at", "agent", "caller_name", "caller_phone", "caller_email",
               "caller_address", "caller_postcode", "summary", "notes", "channel", "reference")
REQUIRED_COLUMNS = ("summary", "notes")


class Resident(ResidentContact):
    """The resident an agent's note is about."""


class ContactNote(BaseModel):
    """What an agent records about one contact with a resident."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    resident: Resident
    summary: str = Field(min_length=1, max_length=300, description="one line: what the contact was about")
    note: str = Field(min_length=1, max_length=50_000, description="the agent's full note")
    channel: Literal["phone", "face_to_face"] = "phone"
    reference: str | None = Field(default=None, description="an existing reference this contact is about")
    note_id: str | None = Field(default=None, max_length=200,
                                description="the note's id in the agent's system (dedupe key)")
    agent: str | None = Field(default=None, max_length=200)
    occurred_at: datetime | None = Field(default=None, description="when the contact happened")

    _blank = field_validator("reference", "note_id", "agent", mode="before")(blank_to_none)

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        if aware > datetime.now(UTC) + timedelta(hours=1):
            raise ValueError("the contact cannot have happened in the future: check the date")
        return aware

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        canonical = normalise_reference(value)
        if canonical is None:
            raise ValueError("Enter a reference like FD-1234-ABCD (the last symbol is a check symbol)")
        return canonical


class NoteInvalidError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def note_errors(exc: ValidationError) -> dict[str, str]:
    """A message per field; nested resident fields are named ``resident.<field>``."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error.get("loc") or ()]
        if loc[:1] == ["resident"] and len(loc) > 1:
            name, leaf = f"resident.{loc[1]}", loc[1]
        else:
            name = leaf = loc[0] if loc else "body"
        errors.setdefault(name, describe_error(error, leaf))
    return errors


def parse_note(data: Mapping[str, Any]) -> ContactNote:
    if not isinstance(data, Mapping):
        raise NoteInvalidError({"body": "Send the note as a JSON object"})
    try:
        note = ContactNote.model_validate(dict(data))
    except ValidationError as exc:
        raise NoteInvalidError(note_errors(exc)) from None
    who = note.resident
    if not (who.name or who.email or who.phone):
        raise NoteInvalidError({"resident": "Give the resident's name, telephone number or email address"})
    return note


def note_dedupe_key(note: ContactNote, idempotency_key: str | None = None) -> str:
    """The note's id, else the request's Idempotency-Key, else a hash of what it says."""
    channel = Channel(note.channel)
    if note.note_id:
        return f"{channel.value}:note:{note.note_id}"
    if idempotency_key:
        return f"{channel.value}:note-key:{idempotency_key}"
    return content_dedupe_key(channel, note.model_dump_json(exclude={"agent"}).encode())


def to_inbound(note: ContactNote, reference: str, dedupe_key: str, *, agent: str | None = None,
               extra: dict[str, str] | None = None) -> InboundMessage:
    who = note.resident
    fields: dict[str, Any] = {}
    if note.occurred_at is not None:
        occurred = note.occurred_at
        fields["received_at"] = occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC)
    return InboundMessage(
        channel=Channel(note.channel),
        sender=Party(name=who.name, email=who.email, phone=who.phone, address=who.address,
                     postcode=who.postcode),
        subject=note.summary,
        body_text=note.note,
        body_trimmed=normalise_space(note.note),
        threading=Threading(reference=note.reference),
        source=Source(agent=agent or note.agent, note_id=note.note_id, extra=extra or {}),
        reference=reference,
        dedupe_key=dedupe_key,
        **fields,
    )


# -- the telephony CSV export ------------------------------------------------------------------

_CSV_FIELD = {"resident.name": "caller_name", "resident.email": "caller_email",
              "resident.phone": "caller_phone", "resident.address": "caller_address",
              "resident.postcode": "caller_postcode", "note": "notes", "occurred_at": "started_at",
              "note_id": "call_id", "resident": "caller_name/caller_phone/caller_email"}


class CsvFormatError(ValueError):
    """The file is not a telephony export this importer understands (say which columns)."""


@dataclass(frozen=True, slots=True)
class CallRow:
    line: int
    note: ContactNote
    dedupe_key: str
    call_id: str | None


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


def read_calls(text: str) -> Iterator[CallRow | BadRow]:
    """Each data row of a telephony export, checked; bad rows say their line and why."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFormatError("the file is empty: expected a header row naming the columns") from None
    except csv.Error as exc:
        raise CsvFormatError(f"line 1: not CSV ({exc})") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing or not {"caller_name", "caller_phone", "caller_email"} & set(columns):
        need = missing or ["one of caller_name, caller_phone, caller_email"]
        raise CsvFormatError(f"the header lacks {', '.join(need)} (columns: {', '.join(CSV_COLUMNS)})")
    line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRow(line, f"not valid CSV ({exc})")
            return
        start, line = line, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(columns):
            yield BadRow(start, f"has {len(values)} fields, the header has {len(columns)}")
            continue
        yield _call_row(start, dict(zip(columns, values, strict=True)))


def _call_row(line: int, row: dict[str, str]) -> CallRow | BadRow:
    get = row.get
    data = {
        "resident": {"name": get("caller_name"), "email": get("caller_email"), "phone": get("caller_phone"),
                     "address": get("caller_address"), "postcode": get("caller_postcode")},
        "summary": get("summary") or "",
        "note": get("notes") or "",
        "channel": (get("channel") or "phone").strip().lower().replace("-", "_").replace(" ", "_"),
        "reference": get("reference"),
        "note_id": get("call_id"),
        "agent": get("agent"),
        "occurred_at": (get("started_at") or "").strip() or None,
    }
    try:
        note = parse_note(data)
    except NoteInvalidError as exc:
        reasons = "; ".join(f"{_CSV_FIELD.get(k, k)}: {v}" for k, v in exc.errors.items())
        return BadRow(line, reasons)
    call_id = (get("call_id") or "").strip() or None
    channel = Channel(note.channel)
    if call_id:
        key = f"{channel.value}:call:{call_id}"
    else:
        canonical = "\x1f".join(f"{k}={(row.get(k) or '').strip()}" for k in sorted(row))
        key = content_dedupe_key(channel, canonical.encode("utf-8"))
    return CallRow(line, note, key, call_id)
