"""Bounces on ``frontdoor.inbound`` back onto the outbound mail they return.

The email parser flags a delivery status notification as ``automation=bounce`` (the router then
keeps it away from every department). ``frontdoor outbound`` reads the inbound stream as its own
consumer group and, for each bounce, finds the returned mail by its Message-ID in the raw MIME
(kept in the blob store) and fails that outbox row.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from ingest.bus import Record
from ingest.serde import decode_inbound
from outbound.status import record_bounce
from schemas.blobs import BlobNotFoundError, FilesystemBlobStore
from schemas.inbound import Automation

log = logging.getLogger(__name__)


class BounceWatcher:
    def __init__(self, engine: Engine, blobs: FilesystemBlobStore) -> None:
        self.engine = engine
        self.blobs = blobs
        self.matched = 0

    def handle(self, record: Record) -> None:
        message = decode_inbound(record.value)
        if message.automation is not Automation.BOUNCE:
            return
        raw: bytes | None = None
        if message.raw is not None:
            try:
                raw = self.blobs.read(message.raw)
            except (BlobNotFoundError, OSError) as exc:
                log.warning("bounce %s: raw MIME not readable (%s); matching on its text", message.id, exc)
        if record_bounce(self.engine, message, raw) is not None:
            self.matched += 1
