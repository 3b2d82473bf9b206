"""A blob store that cannot write (disk full, unwritable) is our fault, never the mail's:
SMTP answers 451 so the sender retries, IMAP leaves the message where it is, nothing is
acknowledged; and a blob is durable (file and directories synced) before its reference
can be published."""

from __future__ import annotations

import errno
import os
import smtplib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import pytest

from connectors.email_parser import parse_email
from connectors.email_state import ImapStateStore
from connectors.imap_poller import ImapPoller
from connectors.smtp_server import SmtpHandler, SmtpServer
from ingest.bus import KafkaPublisher
from schemas.blobs import BlobStoreError, FilesystemBlobStore
from schemas.inbound import BlobRef
from tests.conftest import KafkaHandle
from tests.connectors import test_imap_poller as imap_tests
from tests.connectors.test_smtp_server import DOMAIN, email, free_port, messages
from tests.dovecot import DovecotServer, dovecot_available


class FullDiskStore(FilesystemBlobStore):
    """A real filesystem store whose writes fail as a full disk's do, while ``full``."""

    full = True

    def put_stream(self, chunks: Iterable[bytes] | BinaryIO,
                   media_type: str = "application/octet-stream") -> BlobRef:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().put_stream(chunks, media_type)


def test_the_parser_lets_a_store_failure_through_instead_of_calling_the_mail_unparseable(
        tmp_path: Path) -> None:
    raw = (b"From: a@example.org\r\nSubject: bins\r\nMessage-ID: <x@example.org>\r\n\r\n"
           b"My bin was not emptied.\r\n")
    with pytest.raises(OSError) as caught:
        parse_email(raw, blobs=FullDiskStore(tmp_path / "blobs"))
    assert caught.value.errno == errno.ENOSPC


def test_an_unwritable_store_raises_blob_store_error(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    for a in "0123456789abcdef":
        for b in "0123456789abcdef":
            (tmp_path / "blobs" / f"{a}{b}").write_bytes(b"")  # a file where each fan-out directory goes
    with pytest.raises(BlobStoreError):
        store.put(b"some attachment")
    assert [p.name for p in (tmp_path / "blobs").iterdir() if p.name.startswith(".incoming-")] == []


def test_blob_file_and_new_directories_are_synced_before_put_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    ref = store.put(b"the resident's photo")
    final = store.path_for(ref.sha256)
    assert final.read_bytes() == b"the resident's photo"
    root = str(tmp_path / "blobs")
    assert {str(final.parent), str(final.parent.parent), root} <= set(synced)
    assert synced[0].startswith(root + "/.incoming-")  # the file's own data first


@pytest.mark.kafka
def test_smtp_answers_451_while_the_store_is_full_and_accepts_the_retry(
        kafka: KafkaHandle, fresh_topic: str, tmp_path: Path) -> None:
    blobs = FullDiskStore(tmp_path / "blobs")
    publisher = KafkaPublisher(kafka.bootstrap, blobs, topic=fresh_topic, delivery_timeout_s=4)
    server = SmtpServer(SmtpHandler(publisher, blobs, [DOMAIN], 200_000), "127.0.0.1", free_port())
    server.start()
    try:
        msg = email("Fly-tipping on Mill Lane")
        with smtplib.SMTP(*server.address, timeout=30) as client:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.send_message(msg, "resident@example.org", [f"waste@{DOMAIN}"])
            assert refused.value.smtp_code == 451
            blobs.full = False  # the operator freed space; the sending MTA retries
            assert client.send_message(msg, "resident@example.org", [f"waste@{DOMAIN}"]) == {}
        (message,) = messages(kafka, fresh_topic, expect=1)
        assert message.subject == "Fly-tipping on Mill Lane"
        assert message.raw is not None and blobs.exists(message.raw)
    finally:
        server.stop()
        publisher.close()


@pytest.mark.kafka
@pytest.mark.imap
@pytest.mark.skipif(dovecot_available() is not None, reason=str(dovecot_available()))
def test_imap_leaves_the_message_in_place_while_the_store_is_full(
        kafka: KafkaHandle, fresh_topic: str, tmp_path: Path) -> None:
    with DovecotServer(users=["waste"]) as dovecot:
        dovecot.append("waste", imap_tests.email("Overflowing bin on the corner"))
        harness = imap_tests.Harness(imap_tests.config(dovecot, ["waste"]), kafka, fresh_topic, tmp_path)
        blobs = FullDiskStore(tmp_path / "full-blobs")
        poller = ImapPoller(harness.cfg, harness.publisher, blobs,
                                 ImapStateStore(harness.state_path))
        harness.pollers.append(poller)
        try:
            with pytest.raises(BlobStoreError):
                poller.poll_once()
            assert dovecot.count("waste") == 1  # not moved, not flagged
            assert imap_tests.messages(kafka, fresh_topic) == []
            blobs.full = False
            assert poller.poll_once() == 1
            assert dovecot.count("waste") == 0
            (message,) = imap_tests.messages(kafka, fresh_topic, expect=1)
            assert message.subject == "Overflowing bin on the corner"
        finally:
            harness.close()

