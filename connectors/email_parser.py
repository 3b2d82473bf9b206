"""MIME as received (SMTP DATA, IMAP BODY[]) → the canonical :class:`InboundMessage`.

Built on the stdlib ``email`` package. Header values are read with ``policy.default``'s
header parsers; where a header is defective the compat32 way (``email.header.decode_header``
plus our own charset rules) takes over, so an 8-bit subject or an unknown RFC 2047 charset
still reads correctly. The MIME tree itself is walked with the compat32 message API (the
same feed parser, but plain-string headers): the modern policy re-parses Content-Type and
Content-Disposition on every access, which made parsing three times slower for nothing. Attachments, inline
images, forwarded messages and the raw MIME go to the content-addressed blob store; the
stream carries their :class:`BlobRef`. Large base64 parts are decoded chunk by chunk from
the raw bytes (see :mod:`connectors.email_spill`), never held whole as text.

Mail that cannot become a message (empty, not mail at all, nobody to answer) raises
:class:`EmailParseError` with a short ``reason``. The one other thing that escapes is an
:class:`OSError` from the blob store (disk full, unwritable): that is our fault, not the
mail's, so the channel must answer "try again later" and acknowledge nothing.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from connectors.email_spill import Span, cut_large_runs, iter_base64, span_text, unspill
from connectors.email_text import decode_bytes, decode_header_text, html_charset, html_to_text
from schemas.blobs import BlobStore
from schemas.inbound import (
    Attachment,
    Automation,
    BlobRef,
    Channel,
    InboundMessage,
    Party,
    Source,
    Threading,
    content_dedupe_key,
    dedupe_key_for,
)
from schemas.reference import find_references
from schemas.text import trim_reply

log = logging.getLogger(__name__)

MAX_DEPTH = 16  # MIME nesting beyond this is hostile, not mail
MAX_REFERENCES = 50
RAW_MEDIA_TYPE = "message/rfc822"
FORWARD_RULE = "---------- Forwarded message ----------"


class EmailParseError(ValueError):
    """Mail that cannot become a canonical message. ``reason`` is one short word:
    ``empty``, ``not_email``, ``no_sender`` or ``unparseable``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class _Body:
    """What a walk over the MIME tree collects."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    report_types: set[str] = field(default_factory=set)
    delivery_status: bool = False
    defects: set[str] = field(default_factory=set)  # see InboundMessage.defects


def parse_email(
    raw: bytes,
    *,
    blobs: BlobStore,
    mailbox: str | None = None,
    department_hint: str | None = None,
    mailboxes: Sequence[str] = (),
    envelope_from: str | None = None,
    received_at: datetime | None = None,
    store_raw: bool = True,
) -> InboundMessage:
    """The canonical message for one raw email.

    ``mailbox``/``mailboxes`` name every department mailbox the mail reached (IMAP mailbox
    names or SMTP recipients); ``envelope_from`` (SMTP ``MAIL FROM``) is the sender of last
    resort; ``received_at`` defaults to now.
    """
    if not raw or raw.isspace():
        raise EmailParseError("empty", "the message has no bytes")
    try:
        return _parse(raw, blobs, mailbox, department_hint, mailboxes, envelope_from, received_at,
                      store_raw)
    except (EmailParseError, OSError):
        raise  # OSError: the blob store failed (disk full, unwritable): ours to retry, not a bad mail
    except (RecursionError, MemoryError) as exc:
        raise EmailParseError("unparseable", exc.__class__.__name__) from None
    except Exception as exc:  # a stdlib parser bug on hostile input must not become a traceback
        log.warning("unexpected error parsing mail: %r", exc, exc_info=True)
        raise EmailParseError("unparseable", f"{exc.__class__.__name__}: {exc}") from None


def _parse(raw: bytes, blobs: BlobStore, mailbox: str | None, department_hint: str | None,
           mailboxes: Sequence[str], envelope_from: str | None, received_at: datetime | None,
           store_raw: bool) -> InboundMessage:
    if envelope_from is not None:
        envelope_from = _CONTROL.sub("", envelope_from) or None
    mailboxes = [_CONTROL.sub("", m) for m in mailboxes]
    small, spans = cut_large_runs(raw)
    msg = _parse_bytes(small)
    if not msg.keys() or not _looks_like_mail(msg):
        raise EmailParseError("not_email", "no mail headers found")

    headers = _Headers(msg)
    sender = headers.first_party("From") or headers.first_party("Sender") \
        or headers.first_party("Return-Path") or _party(None, envelope_from)
    if sender is None or not sender.email:
        raise EmailParseError("no_sender", "no From, Sender, Return-Path or envelope sender address")

    body = _Body()
    _walk(msg, body, raw, spans, blobs, 0)

    text = _normalise_newlines("\n\n".join(t for t in body.texts if t.strip()))
    subject = headers.text("Subject") or None
    raw_ref = put_blob(blobs, raw, RAW_MEDIA_TYPE) if store_raw else None

    message_id = _first_msg_id(headers.raw("Message-ID"))
    in_reply_to = _first_msg_id(headers.raw("In-Reply-To"))
    references = _msg_ids(headers.raw("References"))[-MAX_REFERENCES:]
    quoted = find_references(f"{subject or ''}\n{text}")
    if message_id:
        # A Message-ID alone is not proof of the same mail: broken mailers and forged or
        # re-sent mail reuse ids, and a different mail keyed by id alone was dropped as a
        # duplicate. The hash of the normalised content keeps copies of one mail (several
        # inboxes, a redelivery with other trace headers) one message.
        dedupe_key = dedupe_key_for(Channel.EMAIL, f"{message_id}#{_body_digest(text, body)}")
    else:
        dedupe_key = content_dedupe_key(Channel.EMAIL, _content_fingerprint(headers, text, body))

    boxes = list(dict.fromkeys([*([mailbox] if mailbox else []), *mailboxes]))
    extra: dict[str, str] = {}
    date = headers.raw("Date")
    if date:
        extra["date"] = _iso_date(date)
    if envelope_from:
        extra["envelope_from"] = envelope_from
    thread_index = headers.raw("Thread-Index")
    if thread_index:
        # Outlook's conversation id: the ticket stage threads on it where a gateway rewrote
        # In-Reply-To / References. Base64, so anything longer than a real one is not one.
        # Base64 only: a damaged header (undecodable bytes, control characters) keeps what is
        # Base64 of it, never a character the JSON on the stream cannot carry.
        kept = re.sub(r"[^A-Za-z0-9+/=]", "", thread_index)[:256]
        if kept:
            extra["thread_index"] = kept

    return InboundMessage(
        channel=Channel.EMAIL,
        received_at=received_at or datetime.now(UTC),
        sender=sender,
        to=headers.parties("To"),
        cc=headers.parties("Cc"),
        subject=subject,
        body_text=text,
        body_trimmed=trim_reply(text) if text else None,
        body_html="\n".join(body.htmls) if body.htmls else None,
        attachments=body.attachments,
        raw=raw_ref,
        threading=Threading(message_id=message_id, in_reply_to=in_reply_to, references=references,
                            reference=quoted[0] if quoted else None),
        source=Source(mailboxes=boxes, department_hint=department_hint, extra=extra),
        automation=_automation(headers, sender, subject, body),
        dedupe_key=dedupe_key,
        defects=sorted(body.defects | ({"control_characters"} if headers.stripped else set())) or None,
    )


def _parse_bytes(data: bytes) -> Message:
    return BytesParser(policy=policy.compat32).parsebytes(_repair_header_block(data))


_FIELD = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_OBSOLETE_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:")
_HEAD_LIMIT = 256 * 1024


def _repair_header_block(data: bytes) -> bytes:
    """Header sections as real mailers write them, made parseable: obsolete ``Name :``
    fields (RFC 5322 §4.5) lose the space, and a stray non-header line followed by more
    headers is dropped instead of ending the headers there (which would lose From and To)."""
    end = data.find(b"\n\n", 0, _HEAD_LIMIT)
    crlf_end = data.find(b"\r\n\r\n", 0, _HEAD_LIMIT)
    if crlf_end != -1 and (end == -1 or crlf_end < end):
        end = crlf_end
    if end == -1:
        return data
    lines = data[:end].splitlines(keepends=True)
    kept: list[bytes] = []
    changed = False
    for index, line in enumerate(lines):
        folded = line[:1] in (b" ", b"\t") and bool(kept)
        unixfrom = index == 0 and line.startswith(b"From ") and not _OBSOLETE_FIELD.match(line)
        if _FIELD.match(line) or folded or unixfrom:
            kept.append(line)
            continue
        obsolete = _OBSOLETE_FIELD.match(line)
        if obsolete:
            kept.append(obsolete.group(1) + b":" + line[obsolete.end():])
            changed = True
            continue
        following = next((nxt for nxt in lines[index + 1:] if nxt[:1] not in (b" ", b"\t")), None)
        if following is not None and (_FIELD.match(following) or _OBSOLETE_FIELD.match(following)):
            changed = True  # a stray line inside the headers: drop it
            continue
        return data if not changed else b"".join(kept) + b"".join(lines[index:]) + data[end:]
    return b"".join(kept) + data[end:] if changed else data


def _looks_like_mail(msg: Message) -> bool:
    """At least one of the headers every real message carries."""
    names = {k.lower() for k in msg.keys()}
    return bool(names & {"from", "sender", "return-path", "to", "subject", "message-id", "date",
                         "received", "mime-version", "delivered-to"})


# ---------------------------------------------------------------------------------- headers


class _Headers:
    """Header values as text, preferring policy.default and falling back to compat32 rules
    where the parsed header carries defects (8-bit bytes, unknown charsets, bad syntax)."""

    def __init__(self, msg: Message) -> None:
        self.msg = msg
        self._raw: dict[str, list[str]] = {}
        self.stripped = False  # control characters were removed from some field
        items = msg.raw_items() if hasattr(msg, "raw_items") else msg.items()
        for name, value in items:
            text = str(value)
            clean = _CONTROL.sub("", text)
            self.stripped = self.stripped or clean != text
            self._raw.setdefault(name.lower(), []).append(clean)

    def raw(self, name: str) -> str | None:
        values = self._raw.get(name.lower())
        return values[0] if values else None

    def all_raw(self, name: str) -> list[str]:
        return self._raw.get(name.lower(), [])

    def text(self, name: str) -> str:
        return self._clean(self._text(name))

    def _clean(self, value: str) -> str:
        """Control characters an encoded word smuggled in (``=?utf-8?q?a=00b?=``) go too."""
        clean = _CONTROL.sub("", value)
        self.stripped = self.stripped or clean != value
        return clean

    def _text(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            return ""
        try:
            parsed = policy.default.header_fetch_parse(name, value)
            modern = str(parsed)
            clean = not getattr(parsed, "defects", ()) and "\ufffd" not in modern \
                and not re.search(r"[\udc80-\udcff]", modern)
        except Exception:  # noqa: S110 - a header the modern policy cannot parse
            clean, modern = False, ""
        return " ".join((modern if clean else decode_header_text(value)).split())

    def parties(self, name: str) -> list[Party]:
        values = self.all_raw(name)
        if not values:
            return []
        parties: list[Party] = []
        seen: set[str] = set()
        for display, address in _addresses(values):
            party = _party(self._clean(display), self._clean(address))
            if party is not None and party.email and party.email not in seen:
                seen.add(party.email)
                parties.append(party)
        return parties

    def first_party(self, name: str) -> Party | None:
        found = self.parties(name)
        return found[0] if found else None


# C0 controls but tab, CR and LF (folding), DEL and the C1 controls: never part of a header
# a person wrote, and a NUL in a sender address breaks whatever reads the stream.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ADDR_SPEC = re.compile(r"[^\s<>()\[\],;:\"'@]+@[^\s<>()\[\],;:\"'@]*[^\s<>()\[\],;:\"'@.]")
_COMMENT = re.compile(r"\([^()]*\)")


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs; names decoded after splitting so an encoded comma
    in a name cannot split an address."""
    values = [v.replace("\r", " ").replace("\n", " ") for v in values]
    pairs: list[tuple[str, str]] = []
    try:
        parsed = getaddresses(values)
    except Exception:  # noqa: BLE001 - stdlib address parser on garbage
        parsed = []
    for display, address in parsed:
        if _ADDR_SPEC.fullmatch(address.strip()):
            pairs.append((decode_header_text(display), decode_header_text(address)))
    if pairs:
        return pairs
    # Unparseable syntax ("Jo <jo@x.org" or two @): take what looks like an address.
    for value in values:
        text = decode_header_text(value)
        text = re.sub(r"\s*([.@])\s*", r"\1", _COMMENT.sub("", text))  # obsolete "a . b @ c" forms
        for found in _ADDR_SPEC.finditer(text):
            name = text[: found.start()].strip(" \t<\"',;") if not pairs else ""
            pairs.append((name, found.group(0)))
    return pairs


def _party(display: str | None, address: str | None) -> Party | None:
    if not address:
        return None
    address = address.strip().strip("<>").strip()
    if "@" not in address or address.count("@") > 1 and not address.startswith('"'):
        found = _ADDR_SPEC.search(address)
        if not found:
            return None
        address = found.group(0)
    name = (display or "").strip().strip('"').strip() or None
    if name and name.lower().strip("<>") == address.lower():
        name = None
    return Party(name=name, email=address)


_MSG_ID = re.compile(r"<([^<>\s]+)>")


def _msg_ids(value: str | None) -> list[str]:
    if not value:
        return []
    text = decode_header_text(value)
    ids = [f"<{m}>" for m in _MSG_ID.findall(text)]
    if not ids:  # ids without angle brackets (seen from broken mailers)
        ids = [f"<{t.strip(',;')}>" for t in text.split() if "@" in t and "<" not in t and ">" not in t]
    return list(dict.fromkeys(ids))


def _first_msg_id(value: str | None) -> str | None:
    ids = _msg_ids(value)
    return ids[0] if ids else None


def _iso_date(value: str) -> str:
    try:
        parsed = parsedate_to_datetime(decode_header_text(value))
    except (TypeError, ValueError, IndexError):
        return decode_header_text(value)[:100]
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


# ------------------------------------------------------------------------------------ body


def _walk(part: Message, out: _Body, raw: bytes, spans: dict[str, Span], blobs: BlobStore,
          depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EmailParseError("unparseable", f"MIME nesting deeper than {MAX_DEPTH}")
    ctype = _content_type(part)
    sub = ctype.partition("/")[2]
    if ctype in ("message/rfc822", "message/global"):
        if not isinstance(part.get_payload(), list):
            _store(part, out, raw, spans, blobs)
        else:
            _forwarded(part, out, raw, spans, blobs, depth)
        return
    if sub and ctype.startswith("multipart/") and not part.is_multipart():
        _boundaryless(part, ctype, out, raw, spans, blobs, depth)
        return
    if part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        if sub == "alternative":
            _walk_alternative(children, out, raw, spans, blobs, depth)
        elif sub == "report":
            out.report_types.add(str(part.get_param("report-type") or "").lower())
            for index, child in enumerate(children):
                if index == 0:
                    _walk(child, out, raw, spans, blobs, depth + 1)
                else:
                    if _content_type(child) == "message/delivery-status":
                        out.delivery_status = True
                    _store(child, out, raw, spans, blobs)
        elif sub in ("signed", "encrypted"):
            for index, child in enumerate(children):
                if index == 0 and sub == "signed":
                    _walk(child, out, raw, spans, blobs, depth + 1)
                else:
                    _store(child, out, raw, spans, blobs)
        else:  # mixed, related, digest, parallel and unknown multiparts
            for child in children:
                _walk(child, out, raw, spans, blobs, depth + 1)
        return
    if ctype == "message/delivery-status":
        out.delivery_status = True
    attachment = _is_attachment(part, ctype)
    if not attachment and ctype == "text/html":
        html = _body_text(part, out, raw, spans, blobs, html=True)
        out.htmls.append(html)
        out.texts.append(html_to_text(html))
    elif not attachment and ctype in _TEXT_BODIES:
        out.texts.append(_body_text(part, out, raw, spans, blobs))
    else:
        _store(part, out, raw, spans, blobs)


_TEXT_BODIES = ("text/plain", "text/enriched", "text/richtext", "text/markdown", "text/x-markdown")


def _walk_alternative(children: list[Message], out: _Body, raw: bytes, spans: dict[str, Span],
                      blobs: BlobStore, depth: int) -> None:
    """Plain text for ``body_text`` when the sender wrote one, the HTML kept beside it;
    HTML converted to text when it is the only readable alternative."""
    plain = next((c for c in children if _content_type(c) == "text/plain"
                  and not _is_attachment(c, "text/plain")), None)
    plain_text = _body_text(plain, out, raw, spans, blobs) if plain is not None else ""
    if not plain_text.strip():
        # Prefer the richest alternative (the last one) that yields any text; keep what the
        # others carry (an image-only "alternative" is still an attachment).
        probes: list[_Body] = []
        for child in reversed(children):
            if child is not plain:
                probes.append(_Body())
                _walk(child, probes[-1], raw, spans, blobs, depth + 1)
        chosen = next((p for p in probes if any(t.strip() for t in p.texts)), None)
        if chosen is not None:
            _merge(out, chosen)
        elif plain is not None:
            out.texts.append(plain_text)
        for probe in probes:
            if probe is not chosen:
                out.attachments.extend(probe.attachments)
                out.report_types |= probe.report_types
                out.defects |= probe.defects
        return
    out.texts.append(plain_text)
    for child in children:
        if child is plain:
            continue
        probe = _Body()
        _walk(child, probe, raw, spans, blobs, depth + 1)
        out.htmls.extend(probe.htmls)
        out.attachments.extend(probe.attachments)  # inline images of an HTML alternative
        out.defects |= probe.defects


_BOUNDARY_LINE = re.compile(rb"^--([0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-])[ \t]*\r?$",
                            re.MULTILINE)


def _boundaryless(part: Message, ctype: str, out: _Body, raw: bytes, spans: dict[str, Span],
                  blobs: BlobStore, depth: int) -> None:
    """A multipart without a boundary parameter: the stdlib leaves its body as one opaque
    payload, which became an unnamed attachment and left the router an empty message. When
    the body holds delimiter lines (``--xyz`` at least twice), read it with that boundary;
    otherwise it is the sender's text."""
    out.defects.add("missing_boundary")
    data = _payload_bytes(part, raw, spans)
    boundary = _guess_boundary(data)
    if boundary is not None:
        head = f'Content-Type: {ctype}; boundary="'.encode("ascii") + boundary + b'"\r\n\r\n'
        inner = _parse_bytes(head + data)
        if inner.is_multipart():
            _walk(inner, out, raw, spans, blobs, depth + 1)
            return
    out.texts.append(_normalise_newlines(decode_bytes(data, _charset(part))))


def _guess_boundary(data: bytes) -> bytes | None:
    for found in _BOUNDARY_LINE.finditer(data):
        candidate = found.group(1).rstrip()
        if candidate.endswith(b"--"):
            continue
        if len(re.findall(rb"^--" + re.escape(candidate), data, re.MULTILINE)) >= 2:
            return candidate
    return None


def _body_text(part: Message, out: _Body, raw: bytes, spans: dict[str, Span], blobs: BlobStore,
               html: bool = False) -> str:
    """The text of a body part. A part that claims base64 but is not (truncated, corrupted,
    mislabelled) used to come out as garbage text: now the text that decodes cleanly is the
    body, the part as received is kept as an attachment so nothing is lost, and the message
    carries the ``undecodable_part`` defect for the console to show."""
    encoded = _undecodable_base64(part, spans)
    if encoded is None:
        return _text_of(part, raw, spans, html=html)
    out.defects.add("undecodable_part")
    ctype = _content_type(part)
    ref = put_blob(blobs, encoded, ctype)
    out.attachments.append(Attachment(blob=_media(ref, ctype), filename=_filename(part) or None))
    prefix = re.match(rb"[A-Za-z0-9+/]*", re.sub(rb"\s+", b"", encoded))
    usable = prefix.group(0) if prefix else b""
    usable = usable[:len(usable) - len(usable) % 4]
    try:
        data = binascii.a2b_base64(usable) if usable else b""
    except binascii.Error:
        data = b""
    charset = _charset(part) or (html_charset(data) if html else None)
    text = _normalise_newlines(decode_bytes(data, charset))
    return "" if _garbled(text) else text


def _undecodable_base64(part: Message, spans: dict[str, Span]) -> bytes | None:
    """The encoded bytes of a part whose base64 is invalid, or None when it decodes."""
    if _cte(part) != "base64" or _spilled(part, spans) is not None:
        return None
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    encoded = payload.encode("ascii", "surrogateescape") if payload.isascii() else \
        payload.encode("utf-8", "surrogateescape")
    compact = re.sub(rb"\s+", b"", encoded)
    compact += b"=" * (-len(compact) % 4) if len(compact) % 4 != 1 else b""
    try:
        binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error:
        return encoded
    return None


def _garbled(text: str) -> bool:
    """More than a tenth of the characters are neither printable nor whitespace."""
    bad = sum(1 for c in text if not c.isprintable() and not c.isspace())
    return bad * 10 > len(text)


def _merge(out: _Body, other: _Body) -> None:
    out.texts.extend(other.texts)
    out.htmls.extend(other.htmls)
    out.attachments.extend(other.attachments)
    out.report_types |= other.report_types
    out.delivery_status = out.delivery_status or other.delivery_status
    out.defects |= other.defects


def _forwarded(part: Message, out: _Body, raw: bytes, spans: dict[str, Span], blobs: BlobStore,
               depth: int) -> None:
    """A forwarded message: kept whole as an attachment, its words added to the body after a
    forwarding rule (so ``trim_reply`` leaves them out of the resident's own words)."""
    _store(part, out, raw, spans, blobs)
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return
    headers = _Headers(inner)
    inner_body = _Body()
    _walk(inner, inner_body, raw, spans, blobs, depth + 1)
    lines = [FORWARD_RULE]
    for name in ("From", "Date", "Subject", "To"):
        value = headers.text(name)
        if value:
            lines.append(f"{name}: {value}")
    text = "\n\n".join(t for t in inner_body.texts if t.strip())
    out.texts.append("\n".join(lines) + "\n\n" + text)
    out.attachments.extend(inner_body.attachments)
    out.report_types |= inner_body.report_types
    out.defects |= inner_body.defects


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001 - a Content-Type the policy cannot parse reads as text
        return "text/plain"


def _is_attachment(part: Message, ctype: str) -> bool:
    disposition = _disposition(part)
    if disposition == "attachment":
        return True
    if _filename(part) and disposition != "inline":
        return True
    return not ctype.startswith("text/") and not ctype.startswith("multipart/")


def _disposition(part: Message) -> str | None:
    try:
        value = part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None
    return value.lower() if value else None


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:  # noqa: BLE001 - broken RFC 2231 parameters
        name = None
    if isinstance(name, tuple):  # an RFC 2231 triple the policy left undecoded
        name = decode_bytes(name[2].encode("latin-1", "replace"), name[0])
    if not name:
        return None
    text = decode_header_text(str(name)).replace("/", "_").replace("\\", "_").strip()
    return text[:255] or None


def _charset(part: Message) -> str | None:
    try:
        value = part.get_content_charset()
    except Exception:  # noqa: BLE001
        return None
    return str(value) if value else None


def _spilled(part: Message, spans: dict[str, Span]) -> tuple[Span, bytes] | None:
    if not spans:
        return None
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    text = payload.strip()
    for token, span in spans.items():
        if text.startswith(token):
            return span, text[len(token):].strip().encode("ascii", "replace")
    return None


def _payload_bytes(part: Message, raw: bytes, spans: dict[str, Span]) -> bytes:
    """Decoded bytes of a leaf part, restoring a spilled run when the part is not base64."""
    spilled = _spilled(part, spans)
    if spilled is not None:
        span, tail = spilled
        if _cte(part) == "base64":
            return b"".join(iter_base64(raw, span, tail))
        part.set_payload(span_text(raw, span) + tail.decode("ascii"))
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a transfer encoding that cannot be undone: keep the bytes
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data if isinstance(data, bytes) else b""


def _cte(part: Message) -> str:
    return str(part.get("Content-Transfer-Encoding", "")).strip().lower()


def _text_of(part: Message | None, raw: bytes, spans: dict[str, Span], html: bool = False) -> str:
    if part is None:
        return ""
    data = _payload_bytes(part, raw, spans)
    charset = _charset(part) or (html_charset(data) if html else None)
    return _normalise_newlines(decode_bytes(data, charset))


def _store(part: Message, out: _Body, raw: bytes, spans: dict[str, Span], blobs: BlobStore) -> None:
    ctype = _content_type(part)
    spilled = _spilled(part, spans)
    if spilled is not None and _cte(part) == "base64":
        ref = blobs.put_stream(iter_base64(raw, spilled[0], spilled[1]), ctype)
    elif part.is_multipart() or ctype in ("message/rfc822", "message/global"):
        serialised = _serialise(part)
        if spans and b"FRONTDOOR-SPILLED-" in serialised:
            ref = blobs.put_stream(unspill(serialised, raw, spans), ctype)
        else:
            ref = put_blob(blobs, serialised, ctype)
    else:
        ref = put_blob(blobs, _payload_bytes(part, raw, spans), ctype)
    filename = _filename(part)
    if filename is None and ctype in ("message/rfc822", "message/global"):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            subject = _Headers(inner[0]).text("Subject")
            filename = f"{subject[:100] or 'forwarded'}.eml"
    content_id = _content_id(part)
    inline = _disposition(part) == "inline" or (content_id is not None and _disposition(part) is None)
    out.attachments.append(Attachment(blob=_media(ref, ctype), filename=filename, inline=inline,
                                      content_id=content_id))


def put_blob(blobs: BlobStore, data: bytes, media_type: str) -> BlobRef:
    """Store ``data`` unless the store already holds it (content-addressed: a redelivered
    mail or one copied to several mailboxes costs a hash, not another synced write)."""
    ref = BlobRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), media_type=media_type)
    return ref if blobs.exists(ref) else blobs.put(data, media_type)


def _media(ref: BlobRef, ctype: str) -> BlobRef:
    return ref if ref.media_type == ctype else ref.model_copy(update={"media_type": ctype})


def _serialise(part: Message) -> bytes:
    payload = part.get_payload()
    message_part = _content_type(part).startswith("message/")
    target = payload[0] if message_part and isinstance(payload, list) and payload else part
    try:
        return target.as_bytes(policy=policy.compat32)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a part that cannot be re-serialised: keep its text
        return str(part.get_payload()).encode("utf-8", "surrogateescape")


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if not value:
        return None
    text = str(value).strip().strip("<>").strip()
    return text[:500] or None


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


# ---------------------------------------------------------------------------- classification

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)|out of (?:the )?office(?: reply| "
    r"autoreply)?:|out of office$|abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status notification|failure|has failed)|mail delivery (?:failed|system)"
    r"|returned mail|failure notice|delivery notification|non[- ]?delivery",
    re.IGNORECASE,
)
_DAEMONS = ("mailer-daemon", "mail-daemon", "mailerdaemon")


def _automation(headers: _Headers, sender: Party, subject: str | None, body: _Body) -> Automation:
    """Why this mail must not open a ticket or be acknowledged (RFC 3834, RFC 3464, RFC 2369)."""
    local = (sender.email or "").partition("@")[0].lower()
    if body.delivery_status or "delivery-status" in body.report_types or local in _DAEMONS \
            or (local == "postmaster" and _BOUNCE_SUBJECT.search(subject or "")):
        return Automation.BOUNCE
    auto_submitted = (headers.raw("Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return Automation.AUTO_REPLY
    if headers.raw("X-Autoreply") or headers.raw("X-Autorespond") or headers.raw("X-Autoresponder"):
        return Automation.AUTO_REPLY
    if (headers.raw("X-Autogenerated") or "").strip().lower() == "reply":
        return Automation.AUTO_REPLY
    if "disposition-notification" in body.report_types:
        return Automation.AUTO_REPLY  # a read receipt
    precedence = (headers.raw("Precedence") or "").strip().lower()
    if precedence in ("auto_reply", "auto-reply"):
        return Automation.AUTO_REPLY
    if subject and _AUTO_SUBJECT.search(subject):
        return Automation.AUTO_REPLY
    return_path = headers.raw("Return-Path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        # A null return path is reserved for bounces and auto-responses (RFC 5321 §4.5.5).
        return Automation.BOUNCE if _BOUNCE_SUBJECT.search(subject or "") else Automation.AUTO_REPLY
    if precedence in ("bulk", "junk", "list"):
        return Automation.BULK
    if headers.raw("List-Id") or headers.raw("List-Unsubscribe"):
        return Automation.BULK
    return Automation.NONE


def _body_digest(text: str, body: _Body) -> str:
    """16 hex digits over what the sender wrote: the body text with whitespace collapsed
    and the attachments' hashes (headers left out: trace headers differ between copies)."""
    parts = [re.sub(r"\s+", " ", text).strip(), *sorted(a.blob.sha256 for a in body.attachments)]
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _content_fingerprint(headers: _Headers, text: str, body: _Body) -> bytes:
    """What two copies of one message without a Message-ID share (trace headers differ)."""
    parts = [
        ",".join(p.email or "" for p in headers.parties("From")),
        ",".join(p.email or "" for p in headers.parties("To")),
        ",".join(p.email or "" for p in headers.parties("Cc")),
        decode_header_text(headers.raw("Date")),
        headers.text("Subject"),
        re.sub(r"\s+", " ", text).strip(),
        *sorted(a.blob.sha256 for a in body.attachments),
    ]
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).digest()
