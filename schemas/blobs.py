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


class BlobStoreError(OSError):
    """The store could not durably take the bytes (disk full, unwritable, I/O error).

    A fault of ours, never of the content: a channel answers "try again later" (SMTP 451,
    HTTP 503) and acknowledges nothing. Still an :class:`OSError`, so callers that already
    handle those keep working.
    """


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
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        except OSError as exc:
            raise BlobStoreError(exc.errno, f"blob store {self.root}: {exc.strerror}") from exc
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
            created = self._make_parents(final.parent)
            if final.exists():
                os.unlink(tmp_name)
            else:
                os.replace(tmp_name, final)
                # The rename and any new directories are durable only once their parent
                # directories are synced: without it a crash after the reference went to
                # Kafka could leave the reference pointing at nothing.
                _fsync_dir(final.parent)
            for directory in created:
                _fsync_dir(directory.parent)
        except BaseException as exc:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            if isinstance(exc, OSError) and not isinstance(exc, BlobStoreError):
                raise BlobStoreError(exc.errno, f"blob store {self.root}: {exc.strerror}") from exc
            raise
        return BlobRef(sha256=sha, size=size, media_type=media_type)

    def _make_parents(self, directory: Path) -> list[Path]:
        """Create ``directory`` and any missing parents below the root; return those created."""
        missing: list[Path] = []
        probe = directory
        while probe != self.root and not probe.is_dir():
            missing.append(probe)
            probe = probe.parent
        for path in reversed(missing):
            path.mkdir(exist_ok=True)
        return list(reversed(missing))

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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
