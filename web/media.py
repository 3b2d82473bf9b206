"""MMS media: fetched from Twilio into the blob store after the webhook has answered.

The webhook records each ``MediaUrl<N>`` durably (``intake_sms_media``) before it answers;
fetching is a background step with retries, so a slow or failing media host never delays
Twilio's answer or loses the reference to the media. Rows still unfetched are retried when
the web process starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx

from ingest.intake_store import IntakeStore, MediaRow
from schemas.blobs import BlobStore

log = logging.getLogger(__name__)


class MediaTooLargeError(ValueError):
    pass


class MediaFetcher:
    def __init__(self, store: IntakeStore, blobs: BlobStore, *, account_sid: str = "", auth_token: str = "",
                 attempts: int = 4, backoff_s: float = 1.0, max_bytes: int = 20 * 1024 * 1024,
                 timeout_s: float = 30.0) -> None:
        self.store = store
        self.blobs = blobs
        self.auth = (account_sid, auth_token) if account_sid and auth_token else None
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def fetch_message(self, message_sid: str) -> None:
        for row in self.store.pending_media(message_sid):
            self.fetch(row)

    def fetch_pending(self) -> None:
        for row in self.store.pending_media():
            self.fetch(row)

    def fetch(self, row: MediaRow) -> bool:
        """Fetch one medium, retrying transient failures with doubling backoff."""
        for attempt in range(self.attempts):
            try:
                sha, size = self._download(row)
            except httpx.HTTPStatusError as exc:
                code = exc.response.status_code
                self.store.media_attempt(row.message_sid, row.idx, error=f"HTTP {code}")
                if code < 500 and code not in (408, 429):
                    log.warning("media %s/%d refused (HTTP %d): not retried", row.message_sid, row.idx, code)
                    return False
            except (httpx.HTTPError, MediaTooLargeError, OSError) as exc:
                self.store.media_attempt(row.message_sid, row.idx, error=f"{exc.__class__.__name__}: {exc}")
                if isinstance(exc, MediaTooLargeError):
                    return False
            else:
                self.store.media_attempt(row.message_sid, row.idx, sha256=sha, size=size)
                return True
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff_s * 2**attempt)
        log.warning("media %s/%d not fetched after %d tries", row.message_sid, row.idx, self.attempts)
        return False

    def _download(self, row: MediaRow) -> tuple[str, int]:
        with httpx.Client(auth=self.auth, timeout=self.timeout_s, follow_redirects=True) as client:
            with client.stream("GET", row.url) as response:
                response.raise_for_status()
                media_type = row.content_type or response.headers.get("content-type",
                                                                      "application/octet-stream")
                seen = 0

                def chunks() -> Iterator[bytes]:
                    nonlocal seen
                    for chunk in response.iter_bytes():
                        seen += len(chunk)
                        if seen > self.max_bytes:
                            raise MediaTooLargeError(f"larger than {self.max_bytes} bytes")
                        yield chunk

                ref = self.blobs.put_stream(chunks(), media_type)
                return ref.sha256, ref.size
