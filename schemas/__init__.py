"""Wire models, topics and the blob store: what every stage agrees on."""

from schemas.blobs import BlobStore, FilesystemBlobStore
from schemas.inbound import (
    SCHEMA_VERSION,
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

__all__ = [
    "SCHEMA_VERSION",
    "Attachment",
    "Automation",
    "BlobRef",
    "BlobStore",
    "Channel",
    "FilesystemBlobStore",
    "InboundMessage",
    "Party",
    "Source",
    "Threading",
    "content_dedupe_key",
    "dedupe_key_for",
]
