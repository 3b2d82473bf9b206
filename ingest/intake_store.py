"""The intake's durable state, on FRONTDOOR_DATABASE_URL (SQLite by default, PostgreSQL in production).

Every table has the unique constraint that makes its path idempotent: an intake row per
dedupe key (the key → reference a retry gets back, the message, and whether Kafka has
acknowledged it: the outbox :mod:`ingest.intake_relay` drains), one row per issued reference,
one opt-out row per number, one delivery status row per (MessageSid, status), one rate-limit
counter per (address, window).
SQLAlchemy Core only: these are small keyed records, not a domain model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from ingest.database import is_sqlite, open_engine, unreachable

metadata = MetaData()

references = Table(
    "intake_references", metadata,
    Column("reference", String(16), primary_key=True),
    Column("dedupe_key", String(300), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

intake = Table(
    "intake_messages", metadata,
    Column("dedupe_key", String(300), primary_key=True),
    Column("reference", String(16), nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=True),
    Column("message_json", Text, nullable=False),
    Column("published", Boolean, nullable=False, default=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("origin", String(300), nullable=True),  # e.g. the CSV file and line of an imported call
)
Index("ix_intake_messages_outbox", intake.c.published, intake.c.created_at)

opt_outs = Table(
    "intake_sms_opt_outs", metadata,
    Column("phone", String(32), primary_key=True),
    Column("opted_out", Boolean, nullable=False),
    Column("keyword", String(32), nullable=False),
    Column("message_sid", String(64), nullable=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

delivery = Table(
    "intake_sms_delivery", metadata,
    Column("message_sid", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("to_number", String(32), nullable=True),
    Column("error_code", String(16), nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("message_sid", "status"),
)

media = Table(
    "intake_sms_media", metadata,
    Column("message_sid", String(64), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("content_type", String(128), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("size", Integer, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("fetched_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("message_sid", "idx"),
)

relay_failures = Table(
    "intake_relay_failures", metadata,
    Column("dedupe_key", String(300), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)

relay_leases = Table(
    "intake_relay_leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("until", DateTime(timezone=True), nullable=False),
)

rate_limits = Table(
    "intake_rate_limits", metadata,
    Column("bucket", String(200), nullable=False),
    Column("window_start", Integer, nullable=False),
    Column("hits", Integer, nullable=False),
    UniqueConstraint("bucket", "window_start"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every one stored here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class RateLimitedError(Exception):
    """Too many new messages from one client: nothing committed; retry after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"rate limited: retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class IntakeRow:
    dedupe_key: str
    reference: str
    fingerprint: str | None
    message_json: str
    published: bool
    created_at: datetime


def _intake_row(row: Any) -> IntakeRow:
    return IntakeRow(row.dedupe_key, row.reference, row.fingerprint, row.message_json, bool(row.published),
                     _aware(row.created_at) or _now())


@dataclass(frozen=True, slots=True)
class MediaRow:
    message_sid: str
    idx: int
    url: str
    content_type: str | None
    sha256: str | None
    attempts: int
    last_error: str | None


class IntakeStore:
    """The small keyed store behind every web path; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and its busy handler backs off in sleeps of up to
        # 100 ms; queueing this process's writers on a lock instead keeps a commit at about a
        # millisecond under concurrency (other processes still meet the busy timeout).
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext())

    @classmethod
    def from_url(cls, url: str) -> IntakeStore:
        # A SQLite file never drops a connection: a pool as large as the server's thread pool,
        # so no request opens (and sets up) a new one.
        pool: dict[str, Any] = {"pool_size": 40, "max_overflow": 10} if is_sqlite(url) else {}
        engine = open_engine(url, **pool)
        try:
            store = cls(engine)
            store.create()
        except OperationalError as exc:
            raise unreachable(url, exc) from None
        return store

    def create(self) -> None:
        metadata.create_all(self.engine, checkfirst=True)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    # -- the intake outbox --------------------------------------------------------------------

    def reference_issued(self, reference: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(
                select(references.c.reference).where(references.c.reference == reference)
            ).first() is not None

    def get_intake(self, dedupe_key: str) -> IntakeRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(intake).where(intake.c.dedupe_key == dedupe_key)).first()
        return None if row is None else _intake_row(row)

    def known(self, dedupe_keys: list[str]) -> set[str]:
        """Which of these keys the intake has taken already (published or not)."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(dedupe_keys), 500):
                chunk = dedupe_keys[start:start + 500]
                found.update(r.dedupe_key for r in conn.execute(
                    select(intake.c.dedupe_key).where(intake.c.dedupe_key.in_(chunk))))
        return found

    def add(self, dedupe_key: str, build: Callable[[str], str], fingerprint: str | None,
            allocate: Callable[[Connection, str], str], origin: str | None = None,
            gate: Callable[[Connection], int | None] | None = None) -> tuple[IntakeRow, bool]:
        """The durable commit every HTTP channel answers after: a reference from ``allocate``
        and the message ``build(reference)``, in one transaction. ``(row, True)`` for a new key;
        ``(the existing row, False)`` when the key was taken before (a retry, a double click).
        ``gate`` (a rate limit counted in the same transaction) may refuse: RateLimitedError."""
        now = _now()
        try:  # no read first: a retry is rare, and the primary key settles a race either way
            with self._tx() as conn:
                wait = gate(conn) if gate is not None else None
                if wait is not None:
                    raise RateLimitedError(wait)
                ref = allocate(conn, dedupe_key)
                message_json = build(ref)
                conn.execute(insert(intake).values(
                    dedupe_key=dedupe_key, reference=ref, fingerprint=fingerprint, message_json=message_json,
                    published=False, created_at=now, origin=origin))
        except IntegrityError:
            existing = self.get_intake(dedupe_key)
            if existing is None:
                raise
            return existing, False  # a concurrent request with the same key committed first
        return IntakeRow(dedupe_key, ref, fingerprint, message_json, False, now), True

    def unpublished(self, limit: int, max_attempts: int | None = None) -> list[IntakeRow]:
        """The oldest rows Kafka has not acknowledged yet, in commit order (so per sender too);
        rows that failed ``max_attempts`` times are left for an operator (see :meth:`failures`)."""
        query = select(intake).where(intake.c.published.is_(False))
        if max_attempts is not None:
            stuck = select(relay_failures.c.dedupe_key).where(relay_failures.c.attempts >= max_attempts)
            query = query.where(intake.c.dedupe_key.not_in(stuck))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(intake.c.created_at, intake.c.dedupe_key).limit(limit))
            return [_intake_row(r) for r in rows]

    def mark_published(self, dedupe_keys: list[str]) -> None:
        """Only after Kafka acknowledged every one of them."""
        if not dedupe_keys:
            return
        with self._tx() as conn:
            conn.execute(update(intake).where(intake.c.dedupe_key.in_(dedupe_keys))
                         .values(published=True, published_at=_now(), claimed_until=None))
            conn.execute(delete(relay_failures).where(relay_failures.c.dedupe_key.in_(dedupe_keys)))

    def record_failure(self, dedupe_key: str, error: str) -> int:
        """Count one refused publish of a row; returns its attempts so far."""
        with self._tx() as conn:
            row = conn.execute(select(relay_failures.c.attempts)
                               .where(relay_failures.c.dedupe_key == dedupe_key)).first()
            attempts = (row.attempts if row else 0) + 1
            values = {"attempts": attempts, "last_error": error[:2000], "failed_at": _now()}
            if row is None:
                conn.execute(insert(relay_failures).values(dedupe_key=dedupe_key, **values))
            else:
                conn.execute(update(relay_failures).where(relay_failures.c.dedupe_key == dedupe_key)
                             .values(**values))
        return attempts

    def failures(self, min_attempts: int = 1) -> list[tuple[str, int, str]]:
        """(dedupe key, attempts, last error) of unpublished rows Kafka refused."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(relay_failures).where(relay_failures.c.attempts >= min_attempts)
                                .order_by(relay_failures.c.failed_at))
            return [(r.dedupe_key, r.attempts, r.last_error) for r in rows]

    def backlog(self) -> tuple[int, datetime | None]:
        """How many rows wait for Kafka's ack, and when the oldest of them was committed."""
        with self.engine.connect() as conn:
            row = conn.execute(select(func.count(), func.min(intake.c.created_at))
                               .where(intake.c.published.is_(False))).one()
        return int(row[0]), _aware(row[1])

    def take_lease(self, name: str, holder: str, lease_s: float) -> bool:
        """One relay publishes at a time (so the commit order holds on the stream): take or renew
        the lease ``name`` for ``holder``; False while another holder's lease runs."""
        now = _now()
        until = now + timedelta(seconds=lease_s)
        with self._tx() as conn:
            done = conn.execute(update(relay_leases).where(
                relay_leases.c.name == name,
                (relay_leases.c.holder == holder) | (relay_leases.c.until < now),
            ).values(holder=holder, until=until))
            if done.rowcount == 1:
                return True
            if conn.execute(select(relay_leases.c.name).where(relay_leases.c.name == name)).first():
                return False
        try:
            with self._tx() as conn:
                conn.execute(insert(relay_leases).values(name=name, holder=holder, until=until))
            return True
        except IntegrityError:
            return False  # another relay took it first

    def drop_lease(self, name: str, holder: str) -> None:
        with self._tx() as conn:
            conn.execute(delete(relay_leases).where(relay_leases.c.name == name,
                                                    relay_leases.c.holder == holder))

    def count_published(self, prefix: str = "") -> int:
        with self.engine.connect() as conn:
            rows = conn.execute(select(intake.c.dedupe_key).where(
                intake.c.published.is_(True), intake.c.dedupe_key.startswith(prefix, autoescape=True)))
            return len(rows.all())

    # -- SMS ---------------------------------------------------------------------------------

    def set_opt_out(self, phone: str, opted_out: bool, keyword: str, message_sid: str | None) -> None:
        values = {"opted_out": opted_out, "keyword": keyword, "message_sid": message_sid,
                  "changed_at": _now()}
        for _ in range(3):
            with self._tx() as conn:
                if conn.execute(update(opt_outs).where(opt_outs.c.phone == phone).values(**values)).rowcount:
                    return
            try:
                with self._tx() as conn:
                    conn.execute(insert(opt_outs).values(phone=phone, **values))
                return
            except IntegrityError:
                continue  # another request inserted it first: update that row

    def is_opted_out(self, phone: str) -> bool:
        """True when the number sent STOP (or a synonym) and not START since: send it nothing."""
        with self.engine.connect() as conn:
            row = conn.execute(select(opt_outs.c.opted_out).where(opt_outs.c.phone == phone)).first()
        return bool(row and row.opted_out)

    def record_delivery(self, message_sid: str, status: str, to_number: str | None,
                        error_code: str | None) -> bool:
        """One row per (MessageSid, status); a repeated callback changes nothing."""
        try:
            with self._tx() as conn:
                conn.execute(insert(delivery).values(
                    message_sid=message_sid, status=status, to_number=to_number,
                    error_code=error_code, recorded_at=_now()))
            return True
        except IntegrityError:
            return False

    def delivery_statuses(self, message_sid: str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(delivery.c.status).where(delivery.c.message_sid == message_sid)
                                .order_by(delivery.c.recorded_at))
            return [r.status for r in rows]

    def add_media(self, message_sid: str, items: list[tuple[str, str | None]]) -> None:
        for idx, (url, content_type) in enumerate(items):
            try:
                with self._tx() as conn:
                    conn.execute(insert(media).values(message_sid=message_sid, idx=idx, url=url,
                                                      content_type=content_type, attempts=0))
            except IntegrityError:
                continue

    def pending_media(self, message_sid: str | None = None, max_attempts: int = 10) -> list[MediaRow]:
        query = select(media).where(media.c.sha256.is_(None), media.c.attempts < max_attempts)
        if message_sid is not None:
            query = query.where(media.c.message_sid == message_sid)
        with self.engine.connect() as conn:
            return [MediaRow(r.message_sid, r.idx, r.url, r.content_type, r.sha256, r.attempts, r.last_error)
                    for r in conn.execute(query.order_by(media.c.message_sid, media.c.idx))]

    def media_for(self, message_sid: str) -> list[MediaRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(media).where(media.c.message_sid == message_sid).order_by(media.c.idx))
            return [MediaRow(r.message_sid, r.idx, r.url, r.content_type, r.sha256, r.attempts, r.last_error)
                    for r in rows]

    def media_attempt(self, message_sid: str, idx: int, *, sha256: str | None = None,
                      size: int | None = None, error: str | None = None) -> None:
        with self._tx() as conn:
            row = conn.execute(select(media.c.attempts).where(
                media.c.message_sid == message_sid, media.c.idx == idx)).first()
            attempts = (row.attempts if row else 0) + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": error}
            if sha256 is not None:
                values.update(sha256=sha256, size=size, fetched_at=_now())
            conn.execute(update(media).where(media.c.message_sid == message_sid, media.c.idx == idx)
                         .values(**values))

    # -- rate limits -------------------------------------------------------------------------

    def count_hit(self, conn: Connection, bucket: str, limit: int, window_s: int,
                  now: float | None = None) -> int | None:
        """:meth:`hit` inside the caller's transaction (the intake's commit: one write, not two)."""
        now = time.time() if now is None else now
        window = int(now // window_s) * window_s
        counted = (update(rate_limits)
                   .where(rate_limits.c.bucket == bucket, rate_limits.c.window_start == window,
                          rate_limits.c.hits < limit)
                   .values(hits=rate_limits.c.hits + 1))
        if conn.execute(counted).rowcount == 1:
            return None
        if conn.execute(select(rate_limits.c.hits).where(
                rate_limits.c.bucket == bucket, rate_limits.c.window_start == window)).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(rate_limits).values(bucket=bucket, window_start=window, hits=1))
                return None
            except IntegrityError:  # a concurrent first hit created the row: count against it
                if conn.execute(counted).rowcount == 1:
                    return None
        return max(1, int(window + window_s - now))

    def hit(self, bucket: str, limit: int, window_s: int, now: float | None = None) -> int | None:
        """Count one hit; None when allowed, else the seconds until the window ends."""
        now = time.time() if now is None else now
        window = int(now // window_s) * window_s
        for _ in range(3):
            with self._tx() as conn:
                done = conn.execute(update(rate_limits)
                                    .where(rate_limits.c.bucket == bucket,
                                           rate_limits.c.window_start == window, rate_limits.c.hits < limit)
                                    .values(hits=rate_limits.c.hits + 1))
                if done.rowcount == 1:
                    return None
                exists = conn.execute(select(rate_limits.c.hits).where(
                    rate_limits.c.bucket == bucket, rate_limits.c.window_start == window)).first()
            if exists is not None:
                break
            try:
                with self._tx() as conn:
                    conn.execute(insert(rate_limits).values(bucket=bucket, window_start=window, hits=1))
                return None
            except IntegrityError:
                continue  # a concurrent first hit created the row: count against it
        return max(1, int(window + window_s - now))

    def describe(self) -> dict[str, Any]:
        """Counts per table, for operators and tests."""
        with self.engine.connect() as conn:
            return {t.name: len(conn.execute(select(t)).all()) for t in metadata.sorted_tables}


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
