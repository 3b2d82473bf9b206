"""Content-addressed storage for raw payloads and attachments.

Kafka carries a :class:`~schemas.inbound.BlobRef`, never the bytes: a 25 MB email would
exceed the broker's record limit. The store is keyed by SHA-256, so writing the same
content twice is harmless (every sink is idempotent) and readers can verify what they get.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from schemas.inbound import BlobRef

CHUNK = 1 << 16


class BlobNotFoundError(KeyError):
    pass


class BlobStore(Protocol):
    """What an S3-compatible store must offer to replace the filesystem one."""

    def put(self, data: bytes, media_type: str = "application/octet-stream") -> BlobRef: ...

    def put_stream(
        self, chunks: Iterable[bytes] | BinaryIO, media_type: str = "application/octet-stream"
    ) -> BlobRef: ...

    def open(self, ref: BlobRef) -> BinaryIO: ...

    def exists(self, ref: BlobRef) -> bool: ...


class FilesystemBlobStore:
    """Blobs as files under ``root/ab/cd/<sha256>``, written atomically."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, media_type: str = "application/octet-stream") -> BlobRef:
        sha = hashlib.sha256(data).hexdigest()
        if self.path_for(sha).exists():  # content-addressed: already durable, skip the write and fsync
            return BlobRef(sha256=sha, size=len(data), media_type=media_type)
        return self.put_stream([data], media_type)

    def put_stream(
        self, chunks: Iterable[bytes] | BinaryIO, media_type: str = "application/octet-stream"
    ) -> BlobRef:
        """Hash while writing to a temporary file, then move it into place.

        The content is held in memory one chunk at a time, whatever its size.
        """
        digest = hashlib.sha256()
        size = 0
        iterator: Iterable[bytes]
        if hasattr(chunks, "read"):
            stream = chunks
            iterator = iter(lambda: stream.read(CHUNK), b"")
        else:
            iterator = chunks
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in iterator:
                    digest.update(chunk)
                    size += len(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            sha = digest.hexdigest()
            final = self.path_for(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                os.unlink(tmp_name)
            else:
                os.replace(tmp_name, final)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return BlobRef(sha256=sha, size=size, media_type=media_type)

    def open(self, ref: BlobRef) -> BinaryIO:
        try:
            return self.path_for(ref.sha256).open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(ref.sha256) from exc

    def read(self, ref: BlobRef) -> bytes:
        with self.open(ref) as handle:
            return handle.read()

    def exists(self, ref: BlobRef) -> bool:
        return self.path_for(ref.sha256).exists()
