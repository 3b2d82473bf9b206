"""Bytes on the wire ⇄ canonical models, refusing what this reader cannot understand.

Decoding never raises anything but :class:`PoisonMessageError`, so a consumer loop can
send any record it cannot read to the dead-letter topic and keep its partition flowing.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from ingest.errors import PoisonMessageError, UnknownSchemaVersionError
from schemas.blobs import BlobStore
from schemas.inbound import SCHEMA_VERSION, InboundMessage

BODY_MEDIA_TYPE = "application/vnd.frontdoor.body+json"
PREVIEW_CHARS = 16_384


def encode_inbound(message: InboundMessage) -> bytes:
    return message.model_dump_json(exclude_none=True).encode("utf-8")


def decode_inbound(value: bytes | None) -> InboundMessage:
    if not value:
        raise PoisonMessageError("empty_record", "the record has no value")
    try:
        message = InboundMessage.model_validate_json(value)
    except ValidationError as exc:
        raise _diagnose(value, exc) from None
    if message.schema_version > SCHEMA_VERSION:
        raise UnknownSchemaVersionError(message.schema_version)
    return message


def _diagnose(value: bytes, exc: ValidationError) -> PoisonMessageError:
    """Say why a record is unreadable: not JSON, a newer schema, or an invalid message."""
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as json_exc:
        return PoisonMessageError("malformed_json", str(json_exc))
    if not isinstance(data, dict):
        return PoisonMessageError("malformed_json", f"expected an object, got {type(data).__name__}")
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return UnknownSchemaVersionError(version)
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "message"
    return PoisonMessageError("invalid_message", f"{where}: {first['msg']}")


def encode_for_stream(message: InboundMessage, blobs: BlobStore, max_bytes: int) -> bytes:
    """The record value: the message itself, or with its body moved to the blob store."""
    value = encode_inbound(message)
    if len(value) <= max_bytes or message.body_ref is not None:
        return value
    return encode_inbound(offload_body(message, blobs))


def offload_body(message: InboundMessage, blobs: BlobStore) -> InboundMessage:
    """Move the body into the blob store; keep a text preview inline.

    The full ``body_text`` and ``body_html`` are kept in one JSON blob that
    :func:`load_body` restores.
    """
    payload = json.dumps({"body_text": message.body_text, "body_html": message.body_html})
    ref = blobs.put(payload.encode("utf-8"), BODY_MEDIA_TYPE)
    trimmed = message.body_trimmed
    if trimmed is not None and len(trimmed) > PREVIEW_CHARS:
        trimmed = trimmed[:PREVIEW_CHARS]
    return message.model_copy(
        update={
            "body_text": message.body_text[:PREVIEW_CHARS],
            "body_html": None,
            "body_trimmed": trimmed,
            "body_ref": ref,
        }
    )


def load_body(message: InboundMessage, blobs: BlobStore) -> InboundMessage:
    """The message with its whole body back from the blob store (a no-op when inline)."""
    if message.body_ref is None:
        return message
    with blobs.open(message.body_ref) as handle:
        data = json.loads(handle.read())
    return message.model_copy(
        update={"body_text": data["body_text"], "body_html": data["body_html"], "body_ref": None}
    )
