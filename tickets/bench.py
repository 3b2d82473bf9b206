"""``frontdoor bench tickets``: the ticket writer against raw inserts of the same rows, and search.

For each database (SQLite, PostgreSQL):

* ``merged_per_s``: routed records merged into tickets per second by :class:`TicketWriter` (the
  stage's work without the broker: decode, threading and identity lookups, batched writes, the
  offsets), one transaction per batch as the stage does it;
* ``raw_insert_per_s``: the rows that run produced (residents, identities, references, tickets,
  departments, participants, messages, clocks, audit events) inserted again into an empty
  database with batched SQLAlchemy ``executemany``, per routed record: what the database costs
  without any of the stage's reading and deciding;
* ``search_p95_ms``: 95th percentile of free-text searches over ``search_messages`` messages
  (seeded with bulk inserts), through the repository the console uses.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, select, text

from ingest.bus import Record
from schemas.inbound import Channel, InboundMessage, Party, Threading
from schemas.routed import RoutedMessage, Routing
from tickets.db import make_engine, upgrade
from tickets.models import (
    Resident,
    ResidentIdentity,
    StatutoryClockRow,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketMessage,
    TicketParticipant,
    TicketReference,
    table_of,
)
from tickets.repository import TicketRepository
from tickets.service import TicketWriter

log = logging.getLogger(__name__)

# In dependency order: what the writer produces, inserted again for the raw baseline.
RAW_TABLES = [table_of(m) for m in (Resident, ResidentIdentity, Ticket, TicketReference, TicketDepartment,
                                    TicketParticipant, TicketMessage, StatutoryClockRow, TicketEvent)]

WORDS = ("bin collection missed recycling garden waste fly tipping pothole road pavement street light "
         "drain flooding noise neighbour music dog barking pest rats mice food hygiene restaurant "
         "council tax bill band refund direct debit benefit housing repair damp mould boiler heating "
         "rent tenancy planning application extension tree hedge park playground swing library book "
         "parking permit fine ticket abandoned vehicle licence taxi alcohol school place admission "
         "transport care assessment carer elderly mother father child safeguarding complaint thanks "
         "electoral register vote birth death marriage certificate graffiti litter bench toilet").split()
DEPARTMENTS = ("waste", "highways", "environmental_health", "council_tax", "housing", "parks")
T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)


def routed_traffic(n: int, seed: int = 7) -> list[Record]:
    """n routed records shaped like a council's day: new emails, replies to them (In-Reply-To),
    texts (a few residents texting again within the hour), and web forms with email and phone."""
    rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
    records: list[Record] = []
    emails: list[tuple[str, str, str]] = []  # (address, message id, subject) of earlier emails
    for i in range(n):
        at = T0 + timedelta(seconds=i * 3)
        kind = rng.random()
        department = rng.choice(DEPARTMENTS)
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 60)))
        if kind < 0.45 or (kind < 0.65 and not emails):
            who = f"r{rng.randint(0, n)}@example.org"
            subject = " ".join(rng.choice(WORDS) for _ in range(4)).capitalize()
            mid = f"<b{i}@example.org>"
            emails.append((who, mid, subject))
            message = InboundMessage(channel=Channel.EMAIL, sender=Party(email=who), subject=subject,
                                     body_text=body, received_at=at, threading=Threading(message_id=mid),
                                     dedupe_key=f"email:b{i}")
        elif kind < 0.65:
            who, parent, subject = rng.choice(emails[-200:])
            message = InboundMessage(channel=Channel.EMAIL, sender=Party(email=who), subject=f"Re: {subject}",
                                     body_text=body, received_at=at,
                                     threading=Threading(message_id=f"<b{i}@example.org>", in_reply_to=parent,
                                                         references=[parent]), dedupe_key=f"email:b{i}")
        elif kind < 0.9:
            phone = f"+4477009{rng.randint(0, max(n // 3, 1)):05d}"
            message = InboundMessage(channel=Channel.SMS, sender=Party(phone=phone), body_text=body[:300],
                                     received_at=at, dedupe_key=f"sms:SMb{i}")
        else:
            k = rng.randint(0, n)
            message = InboundMessage(channel=Channel.WEBFORM, received_at=at, subject="Report a problem",
                                     sender=Party(name=f"Resident {k}", email=f"f{k}@example.org",
                                                  phone=f"+4477008{k % 100000:05d}", postcode="LS1 4DY"),
                                     body_text=body, dedupe_key=f"webform:b{i}")
        routed = RoutedMessage(message=message, routing=Routing(
            department=department, departments=[department], triage=False, confidence=0.9,
            model_version="bench", routed_at=at))
        records.append(Record(topic=f"frontdoor.dept.{department}", partition=i % 3, offset=i, key=None,
                              value=routed.model_dump_json().encode()))
    return records


def merge_rate(url: str, records: list[Record], batch: int) -> tuple[float, float]:
    """(merged per second, seconds) for the writer over ``records`` in batches."""
    engine = make_engine(url, immediate=True)
    writer = TicketWriter()
    try:
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            with engine.begin() as conn:
                writer.write_batch(conn, records[i:i + batch], lambda *_: None)
        elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    return len(records) / elapsed, elapsed


def raw_rate(source_url: str, target_url: str, n: int, batch: int) -> float:
    """Routed records per second when only the rows they became are inserted, batched."""
    source = make_engine(source_url)
    rows: dict[str, list[dict[str, Any]]] = {}
    with source.connect() as conn:
        for table in RAW_TABLES:
            query = select(table).order_by(*table.primary_key)
            rows[table.name] = [dict(r._mapping) for r in conn.execute(query)]
    source.dispose()
    chunks = max(1, -(-n // batch))
    target = make_engine(target_url)
    try:
        started = time.perf_counter()
        for table in RAW_TABLES:  # parents first; each table in as many transactions as the merge used
            all_rows = rows[table.name]
            size = max(1, -(-len(all_rows) // chunks))
            for c in range(0, len(all_rows), size):
                with target.begin() as conn:
                    conn.execute(insert(table), all_rows[c:c + size])
        elapsed = time.perf_counter() - started
    finally:
        target.dispose()
    return n / elapsed


def seed_messages(url: str, count: int, seed: int = 11) -> None:
    """``count`` messages on count/10 tickets, bulk-loaded through the driver (SQLite
    ``executemany``, PostgreSQL ``COPY``) with the search index built once at the end, as one
    would load an archive; the search then runs on the index as the console's would."""
    rng = random.Random(seed)  # noqa: S311 - reproducible text, not secrets
    vocabulary = WORDS + [f"{w}{k}" for w in WORDS[:40] for k in range(50)]  # a long tail of rarer words
    per_ticket = 10
    tickets = [(t, f"FD-B{t:09d}", "open", "email", "general", False, False, "[]", T0, T0)
               for t in range(1, -(-count // per_ticket) + 1)]
    messages = [(k + 1, k // per_ticket + 1, f"seed:{k}", f"{k:032x}", "in", "email",
                 T0 + timedelta(seconds=k), " ".join(rng.choice(WORDS) for _ in range(4)),
                 " ".join(rng.choice(vocabulary) for _ in range(rng.randint(10, 40))),
                 "[]", "[]", "{}", "{}", "none", "none", T0) for k in range(count)]
    ticket_columns = ("id, reference, status, channel, enquiry_type, triage, priority, flags, "
                      "created_at, updated_at")
    message_columns = ("id, ticket_id, dedupe_key, message_uuid, direction, channel, received_at, subject, "
                       "body_text, email_references, attachments, recipients, routing, thread_rule, "
                       "automation, created_at")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            raw: Any = conn.connection.dbapi_connection
            cursor = raw.cursor()
            if conn.dialect.name == "sqlite":
                for name in ("ai", "ad", "au"):
                    cursor.execute(f"DROP TRIGGER ticket_messages_fts_{name}")
                iso = [(*row[:8], row[8].isoformat(), row[9].isoformat()) for row in tickets]
                cursor.executemany(f"INSERT INTO tickets ({ticket_columns}) "  # noqa: S608 - our own names
                                   "VALUES (?,?,?,?,?,?,?,?,?,?)", iso)
                cursor.executemany(f"INSERT INTO ticket_messages ({message_columns}) "  # noqa: S608
                                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                   [(*m[:6], m[6].isoformat(), *m[7:15], m[15].isoformat())
                                    for m in messages])
                cursor.execute("INSERT INTO ticket_messages_fts(ticket_messages_fts) VALUES ('rebuild')")
        # the triggers come back exactly as the migration made them
        if engine.dialect.name == "sqlite":
            from importlib import import_module

            statements = import_module("tickets.migrations.versions.0001_tickets")._SQLITE_SEARCH
            with engine.begin() as conn:
                for statement in statements[1:]:
                    conn.exec_driver_sql(statement)
        else:
            _copy_postgres(engine, tickets, messages, ticket_columns, message_columns)
    finally:
        engine.dispose()


def _copy_postgres(engine: Engine, tickets: list[tuple[Any, ...]], messages: list[tuple[Any, ...]],
                   ticket_columns: str, message_columns: str) -> None:
    with engine.begin() as conn:
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("DROP INDEX ix_ticket_messages_search")
        with cursor.copy(f"COPY tickets ({ticket_columns}) FROM STDIN") as copy:
            for row in tickets:
                copy.write_row(row)
        with cursor.copy(f"COPY ticket_messages ({message_columns}) FROM STDIN") as copy:
            for row in messages:
                copy.write_row(row)
        cursor.execute("CREATE INDEX ix_ticket_messages_search ON ticket_messages USING GIN (search_vector)")
        for table in ("tickets", "ticket_messages"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                           f"(SELECT max(id) FROM {table}))")
        cursor.execute("ANALYZE ticket_messages")


def search_p95(url: str, queries: int = 200, seed: int = 13) -> float:
    rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
    engine = make_engine(url)
    repository = TicketRepository(engine)
    timings: list[float] = []
    try:
        repository.search("bin")  # warm the connection and caches
        for _ in range(queries):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.choice((1, 1, 2, 2, 3))))
            started = time.perf_counter()
            repository.search(words, limit=50)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
    return statistics.quantiles(timings, n=20)[18] if len(timings) >= 20 else max(timings)


def bench_database(make_url: Any, records: list[Record], search_messages: int,
                   batch: int) -> dict[str, float]:
    merged_url, raw_url, search_url = make_url("merged"), make_url("raw"), make_url("search")
    for url in (merged_url, raw_url, search_url):
        upgrade(url)
    merged, _ = merge_rate(merged_url, records, batch)
    raw = raw_rate(merged_url, raw_url, len(records), batch)
    seed_messages(search_url, search_messages)
    return {"merged_per_s": round(merged, 1), "raw_insert_per_s": round(raw, 1),
            "ratio_to_raw": round(merged / raw, 3), "search_p95_ms": round(search_p95(search_url), 2)}


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """A throw-away PostgreSQL cluster from Debian's packages (as the test fixture starts one)."""
    import glob
    import socket

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    bindir = debian[-1] if debian else "/usr/lib/postgresql/bin"
    initdb = shutil.which("initdb") or f"{bindir}/initdb"
    pg_ctl = shutil.which("pg_ctl") or f"{bindir}/pg_ctl"
    if not os.path.exists(initdb):
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql), "
                                "or pass --postgres-url")
    root = Path(tempfile.mkdtemp(prefix="fd-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],  # noqa: S603
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root}"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],  # noqa: S603
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],  # noqa: S603
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def run_tickets_bench(messages: int, search_messages: int, *, batch: int = 500,
                      postgres_url: str | None = None) -> dict[str, Any]:
    records = routed_traffic(messages)
    result: dict[str, Any] = {"messages": messages, "search_messages": search_messages, "batch": batch}
    with tempfile.TemporaryDirectory(prefix="fd-bench-sqlite-") as tmp:
        result["sqlite"] = bench_database(lambda name: f"sqlite:///{Path(tmp) / name}.db", records,
                                          search_messages, batch)
    with (_given(postgres_url) if postgres_url else temporary_postgres()) as server:
        created: list[str] = []

        def make_url(name: str) -> str:
            database = f"fd_bench_{name}_{uuid.uuid4().hex[:6]}"
            admin = create_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            admin.dispose()
            created.append(database)
            return server.rsplit("/", 1)[0] + f"/{database}"

        try:
            result["postgresql"] = bench_database(make_url, records, search_messages, batch)
        finally:
            _drop(server, created)
    return result


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def _drop(server: str, databases: list[str]) -> None:
    admin: Engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for database in databases:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()
