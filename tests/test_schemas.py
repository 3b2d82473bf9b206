"""Wire models, the checked-in JSON Schema, the blob store and reference numbers."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.blobs import BlobNotFoundError, FilesystemBlobStore
from schemas.export import schema_files
from schemas.inbound import BlobRef, Channel, InboundMessage, Party, content_dedupe_key, dedupe_key_for
from schemas.reference import find_references, new_reference, normalise_reference
from schemas.topics import CORE_TOPICS, department_topic


def test_checked_in_json_schema_matches_the_models() -> None:
    for path, text in schema_files().items():
        assert path.exists(), f"run 'python -m schemas.export' to write {path.name}"
        assert json.loads(path.read_text()) == json.loads(text), "run 'python -m schemas.export'"


def test_unknown_fields_and_bad_channels_are_refused() -> None:
    with pytest.raises(ValidationError):
        InboundMessage.model_validate({"channel": "fax", "sender": {}, "dedupe_key": "x"})
    with pytest.raises(ValidationError):
        InboundMessage.model_validate({"channel": "sms", "sender": {}, "dedupe_key": "x", "surprise": 1})


def test_text_for_routing_prefers_the_trimmed_body() -> None:
    message = InboundMessage(channel=Channel.EMAIL, sender=Party(), subject="Bins",
                             body_text="new words\n> old quoted words", body_trimmed="new words",
                             dedupe_key="email:x")
    assert message.text_for_routing == "Bins\n\nnew words"


def test_dedupe_keys() -> None:
    assert dedupe_key_for("email", " <a@b> ") == "email:<a@b>"
    assert content_dedupe_key(Channel.SMS, b"x") == content_dedupe_key("sms", b"x")
    assert content_dedupe_key("sms", b"x") != content_dedupe_key("sms", b"y")


def test_topics_are_declared_once() -> None:
    names = [t.name for t in CORE_TOPICS]
    assert len(names) == len(set(names)) and "frontdoor.inbound" in names
    assert department_topic("waste") == "frontdoor.dept.waste"


def test_blob_store_is_content_addressed_and_streams(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    a = store.put(b"hello", "text/plain")
    assert store.put(b"hello", "text/plain") == a and store.read(a) == b"hello"
    assert len(list(tmp_path.rglob(a.sha256))) == 1
    big = 25 * 1024 * 1024
    tracemalloc.start()
    ref = store.put_stream(_Zeros(big), "application/pdf")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert ref.size == big and peak < 2 * 1024 * 1024  # never holds the 25 MB
    with pytest.raises(BlobNotFoundError):
        store.open(BlobRef(sha256="0" * 64, size=0))


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def test_references_are_readable_checked_and_found_in_text() -> None:
    refs = {new_reference() for _ in range(2000)}
    assert len(refs) == 2000
    ref = next(iter(refs))
    assert len(ref) == 12 and not set(ref[3:]) & set("ILOU")
    assert normalise_reference(ref.lower().replace("-", " ")) == ref
    typo = ref[:-1] + ("0" if ref[-1] != "0" else "1")
    assert normalise_reference(typo) is None  # the check symbol catches a mistyped symbol
    assert find_references(f"Re: my enquiry {ref} (and again {ref})") == [ref]
