"""Durable IMAP poller state: where each mailbox is, and which emails are already on the stream.

One SQLite file under ``var/``. ``mailbox_state`` holds UIDVALIDITY and the last UID below
which every message was published *and* moved or flagged; ``seen`` holds every dedupe key
published, with the mailboxes it listed, so a message read again (after a crash between
Kafka's ack and the IMAP move, or a UIDVALIDITY rescan) is not published twice, and the
same email arriving later in another department mailbox can be republished with the
extended mailbox list under the same id and dedupe key.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SeenMessage:
    dedupe_key: str
    message_id: str  # the canonical message's id, reused when republishing
    mailboxes: tuple[str, ...]


class ImapStateStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS mailbox_state (mailbox TEXT PRIMARY KEY, "
            "uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (dedupe_key TEXT PRIMARY KEY, message_id TEXT NOT NULL, "
            "mailboxes TEXT NOT NULL, published_at REAL NOT NULL)"
        )

    def position(self, mailbox: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last UID) of a mailbox, or None before its first poll."""
        row = self._db.execute(
            "SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?", (mailbox,)
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def set_position(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        self._db.execute(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid) VALUES (?, ?, ?) "
            "ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
            "last_uid = excluded.last_uid",
            (mailbox, uidvalidity, last_uid),
        )

    def seen(self, dedupe_key: str) -> SeenMessage | None:
        row = self._db.execute(
            "SELECT message_id, mailboxes FROM seen WHERE dedupe_key = ?", (dedupe_key,)
        ).fetchone()
        return SeenMessage(dedupe_key, row[0], tuple(json.loads(row[1]))) if row else None

    def remember(self, dedupe_key: str, message_id: str, mailboxes: list[str]) -> None:
        self._db.execute(
            "INSERT INTO seen (dedupe_key, message_id, mailboxes, published_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(dedupe_key) DO UPDATE SET mailboxes = excluded.mailboxes, "
            "published_at = excluded.published_at",
            (dedupe_key, message_id, json.dumps(mailboxes), time.time()),
        )

    def forget_older_than(self, seconds: float) -> int:
        """Prune the seen table; an email older than this is no longer merged across mailboxes."""
        cursor = self._db.execute("DELETE FROM seen WHERE published_at < ?", (time.time() - seconds,))
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()
