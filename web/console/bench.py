"""``frontdoor bench console``: server time of the console's pages on a large database.

Seeds N tickets and M messages with bulk inserts (SQLite ``executemany`` with the search
index rebuilt once, PostgreSQL ``COPY``), then times, in-process through the whole app (routing,
session check, queries, template rendering), the triage queue, a department queue filtered and
sorted, a ticket page with 50 messages, and a search; p50 and p95 in milliseconds.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from ingest.intake_store import IntakeStore
from schemas.blobs import FilesystemBlobStore
from tickets.accounts import AccountStore
from tickets.db import make_engine, upgrade

DEPARTMENTS = ("waste", "highways", "parking", "environmental_health", "housing", "council_tax", "benefits",
               "planning", "parks", "licensing")
STATUSES = ("new", "open", "open", "awaiting_resident", "resolved", "closed", "closed", "closed")
CHANNELS = ("email", "email", "webform", "sms", "phone")
WORDS = ("bin collection missed green recycling pothole road street light broken noise neighbour music "
         "parking permit fine council tax bill housing repair damp mould boiler heating planning "
         "application tree park playground fly tipping rubbish graffiti licence benefit claim school "
         "admission library leisure centre pest rats food hygiene complaint payment refund").split()
PASSWORD = "bench-password-0123"  # noqa: S105  (a throw-away account in a throw-away database)
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def seed(url: str, tickets: int, messages: int, seed: int = 5) -> str:
    """Bulk-load; returns the reference of the ticket that holds 50 messages."""
    rng = random.Random(seed)  # noqa: S311  (reproducible data, not secrets)
    today = datetime.now(UTC).date()
    residents = max(1, tickets // 2)
    resident_rows = [(r, f"Resident {r}", f"resident {r}", f"LS{r % 30}{r % 9}AB", T0, T0)
                     for r in range(1, residents + 1)]
    identity_rows = [(r, r, "email", f"resident{r}@example.com", False, T0) for r in range(1, residents + 1)]
    ticket_rows, department_rows = [], []
    for t in range(1, tickets + 1):
        department = rng.choice(DEPARTMENTS)
        status = rng.choice(STATUSES)
        due = today + timedelta(days=rng.randint(-10, 30)) if rng.random() < 0.3 else None
        created = T0 + timedelta(minutes=t)
        assignee = None if rng.random() < 0.7 else "agent@council.example.gov.uk"
        ticket_rows.append((t, f"FD-C{t:09d}", status, 1 + (t % residents), department, rng.random() < 0.08,
                            assignee, rng.random() < 0.02,
                            "[]", rng.choice(("general", "service_request", "complaint", "foi")),
                            rng.choice(CHANNELS), " ".join(rng.choice(WORDS) for _ in range(4)), due, created,
                            created))
        department_rows.append((t, department, "primary", created))
    big = 1  # ticket 1 holds 50 messages: the ticket page's case
    message_rows = []
    for k in range(messages):
        ticket = big if k < 50 else 1 + rng.randrange(tickets)
        message_rows.append((k + 1, ticket, f"bench:{k}", uuid.UUID(int=k).hex, "in", "email",
                             T0 + timedelta(seconds=k), " ".join(rng.choice(WORDS) for _ in range(4)),
                             " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40))),
                             f"resident{1 + ticket % residents}@example.com", "[]", "[]", "{}",
                             '{"department": "waste", "confidence": 0.9}', "new", "none", T0))
    columns = {
        "residents": "id, name, name_key, postcode, created_at, updated_at",
        "resident_identities": "id, resident_id, kind, value, verified, created_at",
        "tickets": ("id, reference, status, resident_id, primary_department, triage, assignee, priority, "
                    "flags, enquiry_type, channel, subject, due_on, created_at, updated_at"),
        "ticket_departments": "ticket_id, department, role, added_at",
        "ticket_messages": ("id, ticket_id, dedupe_key, message_uuid, direction, channel, received_at, "
                            "subject, body_text, sender_email, email_references, attachments, recipients, "
                            "routing, thread_rule, automation, created_at"),
    }
    data: dict[str, list[tuple[Any, ...]]] = {
        "residents": resident_rows, "resident_identities": identity_rows, "tickets": ticket_rows,
        "ticket_departments": department_rows, "ticket_messages": message_rows}
    engine = make_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            _load_sqlite(engine, columns, data)
        else:
            _load_postgres(engine, columns, data)
    finally:
        engine.dispose()
    return "FD-C000000001"


def _load_sqlite(engine: Engine, columns: dict[str, str], data: dict[str, list[tuple[Any, ...]]]) -> None:
    def plain(value: Any) -> Any:
        return value.isoformat() if hasattr(value, "isoformat") else value

    with engine.begin() as conn:
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for name in ("ai", "ad", "au"):
            cursor.execute(f"DROP TRIGGER ticket_messages_fts_{name}")
        for table, rows in data.items():
            marks = ",".join("?" * len(columns[table].split(",")))
            cursor.executemany(f"INSERT INTO {table} ({columns[table]}) VALUES ({marks})",  # noqa: S608
                               [tuple(plain(v) for v in row) for row in rows])
        cursor.execute("INSERT INTO ticket_messages_fts(ticket_messages_fts) VALUES ('rebuild')")
    statements = import_module("tickets.migrations.versions.0001_tickets")._SQLITE_SEARCH
    with engine.begin() as conn:
        for statement in statements[1:]:  # the triggers, exactly as the migration made them
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("ANALYZE")


def _load_postgres(engine: Engine, columns: dict[str, str], data: dict[str, list[tuple[Any, ...]]]) -> None:
    with engine.begin() as conn:
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("DROP INDEX ix_ticket_messages_search")
        for table, rows in data.items():
            with cursor.copy(f"COPY {table} ({columns[table]}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.execute("CREATE INDEX ix_ticket_messages_search ON ticket_messages USING GIN (search_vector)")
        for table in ("residents", "resident_identities", "tickets", "ticket_messages"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                           f"(SELECT max(id) FROM {table}))")
        cursor.execute("ANALYZE")


def _percentiles(timings: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(timings, n=20)
    return round(statistics.median(timings), 1), round(cuts[18], 1)


def measure(url: str, big_reference: str, requests: int = 40, seed: int = 9) -> dict[str, float]:
    """p50/p95 of each page through the app in-process (no network between)."""
    with warnings.catch_warnings():  # starlette suggests httpx2; httpx is what this project has
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient

    from web.app import create_app
    from web.config import WebConfig
    from web.console import ConsoleContext
    from web.security import CsrfGuard

    rng = random.Random(seed)  # noqa: S311
    engine = make_engine(url)
    accounts = AccountStore(engine)
    accounts.add_user("bench@council.example.gov.uk", PASSWORD, "supervisor")
    with tempfile.TemporaryDirectory(prefix="fd-bench-console-") as tmp:
        blobs = FilesystemBlobStore(Path(tmp) / "blobs")
        store = IntakeStore.from_url(f"sqlite:///{Path(tmp) / 'intake.db'}")
        console = ConsoleContext(accounts=accounts, engine=engine, blobs=blobs, csrf=CsrfGuard("bench"),
                                 departments={d: d.replace("_", " ").capitalize() for d in DEPARTMENTS})
        config = WebConfig(web_secret="bench")  # noqa: S106  (a throw-away secret)
        app = create_app(config, store=store, blobs=blobs, console=console)
        pages: dict[str, Callable[[], str]] = {
            "queue": lambda: "/console/queues/triage",
            "filtered_queue": lambda: (f"/console/queues/department:{rng.choice(DEPARTMENTS)}?status=open"
                                       f"&channel=email&sort=due&order=asc&page={rng.randint(1, 5)}"),
            "ticket": lambda: f"/console/tickets/{big_reference}",
            "search": lambda: f"/console/search?q={'+'.join(rng.sample(WORDS, rng.choice((1, 2, 2, 3))))}",
        }
        result: dict[str, float] = {}
        try:
            with TestClient(app) as client:
                page = client.get("/console/sign-in")
                token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
                signed = client.post("/console/sign-in", data={"email": "bench@council.example.gov.uk",
                                                               "password": PASSWORD, "csrf_token": token},
                                     follow_redirects=False)
                assert signed.status_code == 303, signed.text  # noqa: S101  (a bench that cannot sign in)
                for name, path in pages.items():
                    client.get(path())  # warm
                    timings = []
                    for _ in range(requests):
                        started = time.perf_counter()
                        answer = client.get(path())
                        timings.append((time.perf_counter() - started) * 1000)
                        if answer.status_code != 200:
                            raise RuntimeError(f"{name}: {answer.status_code}")
                    p50, p95 = _percentiles(timings)
                    result[f"{name}_p50_ms"], result[f"{name}_p95_ms"] = p50, p95
        finally:
            store.dispose()
            engine.dispose()
    return result


def run_console_bench(tickets: int, messages: int, *, postgres_url: str | None = None,
                      requests: int = 40, postgres: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {"tickets": tickets, "messages": messages}
    with tempfile.TemporaryDirectory(prefix="fd-bench-console-sqlite-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'console.db'}"
        upgrade(url)
        result["sqlite"] = measure(url, seed(url, tickets, messages), requests)
    if not postgres:
        return result
    from tickets.bench import temporary_postgres

    with (_given(postgres_url) if postgres_url else temporary_postgres()) as server:
        database = f"fd_bench_console_{uuid.uuid4().hex[:6]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        try:
            url = server.rsplit("/", 1)[0] + f"/{database}"
            upgrade(url)
            result["postgresql"] = measure(url, seed(url, tickets, messages), requests)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()
    return result


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url
