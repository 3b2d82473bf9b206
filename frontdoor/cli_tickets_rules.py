"""``frontdoor tickets export-resident | retention | sweep-clocks | corrections``: the ticket
rules' operator commands (data protection, statutory clocks, routing corrections)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from frontdoor.settings import load_settings
from schemas.errors import OperatorError, file_in_the_way


def register(tickets_app: typer.Typer) -> None:
    @tickets_app.command("export-resident")
    def export_resident(
        out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the export.")],
        email: str | None = typer.Option(None, "--email", help="An email address the resident uses."),
        phone: str | None = typer.Option(None, "--phone", help="A phone number the resident uses."),
        reference: str | None = typer.Option(None, "--reference",
                                             help="Any reference of one of their enquiries."),
        resident_id: int | None = typer.Option(None, "--resident-id", help="The resident's id."),
    ) -> None:
        """Write everything held about one resident (a subject access request) as JSON plus the
        original messages and attachments; prints a JSON summary."""
        from sqlalchemy.orm import Session

        from frontdoor import wiring
        from tickets.db import make_engine, require_current
        from tickets.privacy import ResidentNotFoundError, find_resident
        from tickets.privacy import export_resident as export

        if sum(x is not None for x in (email, phone, reference, resident_id)) != 1:
            raise OperatorError("name the resident by one of --email, --phone, --reference or --resident-id")
        blocker = file_in_the_way(out)
        if blocker is not None:
            raise OperatorError(f"--out {out}: {blocker} is not a directory")
        if out.is_dir() and any(out.iterdir()):
            raise OperatorError(f"--out {out} is not empty: name a new folder for the export")
        settings = load_settings()
        engine = make_engine(settings.effective_database_url)
        try:
            require_current(engine)
            with Session(engine) as session:
                try:
                    rid = find_resident(session, resident_id=resident_id, email=email, phone=phone,
                                        reference=reference)
                except ResidentNotFoundError as exc:
                    raise OperatorError(str(exc)) from None
                result = export(session, rid, wiring.blob_store(settings), out, now=datetime.now(UTC))
        finally:
            engine.dispose()
        typer.echo(json.dumps({"resident_id": rid, "path": str(result.path), "tickets": result.tickets,
                               "messages": result.messages, "files": len(result.files),
                               "missing_files": result.missing}))

    @tickets_app.command("retention")
    def retention(
        dry_run: bool = typer.Option(False, "--dry-run", help="Count what is due; erase nothing."),
        batch: int = typer.Option(500, min=1, max=10_000, help="Tickets erased per transaction."),
    ) -> None:
        """Erase the personal data of tickets closed longer than FRONTDOOR_RETENTION_DAYS (keeping
        the anonymous figures and an audit line); prints a JSON summary. Run it daily."""
        from sqlalchemy.orm import Session

        from frontdoor import wiring
        from tickets.db import make_engine, require_current
        from tickets.privacy import due_for_erasure, erase_expired

        settings = load_settings()
        period = timedelta(days=settings.retention_days)
        now = datetime.now(UTC)
        engine = make_engine(settings.effective_database_url, immediate=True)
        totals = {"retention_days": settings.retention_days, "tickets": 0, "messages": 0, "residents": 0,
                  "blobs_deleted": 0, "dry_run": dry_run}
        try:
            require_current(engine)
            if dry_run:
                with Session(engine) as session:
                    totals["tickets"] = len(due_for_erasure(session, now=now, retention=period, limit=10**9))
            else:
                blobs = wiring.blob_store(settings)
                while True:
                    with Session(engine) as session, session.begin():
                        report = erase_expired(session, now=now, retention=period, blobs=blobs, limit=batch)
                    for key in ("tickets", "messages", "residents", "blobs_deleted"):
                        totals[key] += getattr(report, key)
                    if report.tickets < batch:
                        break
        finally:
            engine.dispose()
        typer.echo(json.dumps(totals))

    @tickets_app.command("sweep-clocks")
    def sweep_clocks(
        every: int = typer.Option(0, "--every", min=0,
                                  help="Sweep again every this many seconds until stopped (0: once)."),
    ) -> None:
        """Mark statutory and service clocks due soon or breached, writing an audit event (published
        on frontdoor.events) for each change; prints how many changed. Run it hourly, or leave it
        running with --every (what 'frontdoor up' does)."""
        import signal
        import threading

        from frontdoor import wiring
        from tickets.clocks import sweep_clocks as sweep
        from tickets.db import make_engine, require_current

        settings = load_settings()
        periods = wiring.clock_periods(settings)
        engine = make_engine(settings.effective_database_url, immediate=True)
        stopping = threading.Event()
        if every:
            signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            signal.signal(signal.SIGINT, lambda *_: stopping.set())
        try:
            require_current(engine)
            while True:
                with engine.begin() as conn:
                    changes = sweep(conn, periods, now=datetime.now(UTC))
                counts: dict[str, int] = {}
                for _, change in changes:
                    counts[change.after.value] = counts.get(change.after.value, 0) + 1
                typer.echo(json.dumps({"changed": len(changes), **counts}))
                if not every or stopping.wait(every):
                    break
        finally:
            engine.dispose()

    @tickets_app.command("corrections")
    def corrections(
        out: Annotated[Path, typer.Option("--out", help="CSV to write: text,from_department,to_department.")],
    ) -> None:
        """Agents' moves between departments as training rows, for
        'frontdoor train --data CSV --text-col text --label-col to_department'."""
        from sqlalchemy.orm import Session

        from tickets.db import make_engine, require_current
        from tickets.status import corrections_from_database, write_corrections_csv

        blocker = file_in_the_way(out.parent)
        if blocker is not None:
            raise OperatorError(f"--out {out}: {blocker} is not a directory")
        settings = load_settings()
        engine = make_engine(settings.effective_database_url)
        try:
            require_current(engine)
            with Session(engine) as session:
                found = corrections_from_database(session)
        finally:
            engine.dispose()
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="") as handle:
            rows = write_corrections_csv(found, handle)
        typer.echo(json.dumps({"corrections": len(found), "rows": rows, "path": str(out)}))
