"""Large base64 parts streamed straight from the raw bytes to the blob store.

The stdlib parser keeps every part's encoded text as a ``str`` and decodes it into one more
``bytes`` object: a 25 MB attachment would be in memory three or four times over. Before
parsing a large message, :func:`cut_large_runs` replaces each long run of base64 lines with
a one-line token and remembers where it was; the parser then sees a small message, and the
part that holds a token is decoded chunk by chunk from the original bytes
(:func:`iter_base64`). A run inside a part that is not base64-encoded is put back as text.
"""

from __future__ import annotations

import binascii
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

# One or more whole lines of base64 alphabet; possessive, so a long run is never re-scanned.
_BASE64_RUN = re.compile(rb"(?:^[A-Za-z0-9+/=]{1,998}\r?\n)++", re.MULTILINE)
SPILL_MESSAGE_BYTES = 1 << 20  # only messages above this are pre-scanned
SPILL_RUN_BYTES = 256 << 10  # runs above this are streamed instead of parsed
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


def cut_large_runs(raw: bytes, *, message_bytes: int = SPILL_MESSAGE_BYTES,
                   run_bytes: int = SPILL_RUN_BYTES) -> tuple[bytes, dict[str, Span]]:
    """The message with its long base64 runs replaced by tokens, and where each run was."""
    if len(raw) < message_bytes:
        return raw, {}
    nonce = uuid.uuid4().hex
    pieces: list[bytes] = []
    spans: dict[str, Span] = {}
    pos = 0
    for found in _BASE64_RUN.finditer(raw):
        if found.end() - found.start() < run_bytes:
            continue
        token = f"FRONTDOOR-SPILLED-{nonce}-{len(spans)}"
        newline = b"\r\n" if raw[found.end() - 2:found.end()] == b"\r\n" else b"\n"
        pieces.append(raw[pos:found.start()])
        pieces.append(token.encode("ascii") + newline)
        spans[token] = Span(found.start(), found.end())
        pos = found.end()
    if not spans:
        return raw, {}
    pieces.append(raw[pos:])
    return b"".join(pieces), spans


def iter_base64(raw: bytes, span: Span, tail: bytes = b"", chunk: int = _CHUNK) -> Iterator[bytes]:
    """Decoded bytes of a base64 run (plus any short ``tail`` the parser saw after it), one
    chunk at a time, as leniently as the stdlib decodes."""
    view = memoryview(raw)
    rest = b""
    pos = span.start
    while pos < span.end or tail:
        if pos < span.end:
            stop = min(pos + chunk, span.end)
            piece = bytes(view[pos:stop])
        else:
            stop, piece, tail = pos, tail, b""
        data = rest + piece.translate(None, b"\r\n\t ")
        usable = len(data) - len(data) % 4
        if usable:
            yield _decode(data[:usable])
        rest = data[usable:]
        pos = stop
    if len(rest) > 1:
        yield _decode(rest + b"=" * (4 - len(rest)))


def _decode(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return b""


def span_text(raw: bytes, span: Span) -> str:
    return raw[span.start:span.end].decode("ascii")


def unspill(data: bytes, raw: bytes, spans: dict[str, Span], chunk: int = _CHUNK) -> Iterator[bytes]:
    """``data`` (a re-serialised part of the cut message) with every token line replaced by
    the run it stands for, streamed from the raw bytes."""
    found = sorted((data.find(token.encode("ascii")), token) for token in spans)
    pos = 0
    for start, token in found:
        if start < pos:
            continue
        yield data[pos:start]
        span = spans[token]
        for offset in range(span.start, span.end, chunk):
            yield raw[offset:min(offset + chunk, span.end)]
        end = start + len(token)
        pos = data.find(b"\n", end)
        pos = len(data) if pos == -1 else pos + 1
    yield data[pos:]
