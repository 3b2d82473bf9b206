"""Data protection (UK GDPR): a resident's subject access export, and erasure after retention.

:func:`export_resident` writes everything held about one resident (and any resident merged into
them) as one JSON document plus their attachments and original messages copied out of the blob
store, for the information governance team to review and send. Internal notes are included,
marked as such: whether an exemption withholds any is a person's decision, not the code's.

:func:`erase_expired` erases the personal data of tickets closed longer than the retention
period. What stays is what the dashboard counts and nobody can be identified from: the ticket
row with its reference, status, departments, enquiry type, channel, priority, dates and clocks;
each message's channel, direction, date and the router's department decision (without the
entities and explanation, which quote the text); ratings without comments; the corrections;
and an ``erased`` audit line. A resident all of whose tickets are erased is erased too (name,
address, postcode and every email and number). Blobs no longer referenced by any remaining
message are deleted when the store can delete (the filesystem one can).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import DeclarativeBase, Session

from schemas.blobs import BlobNotFoundError, BlobStore
from schemas.inbound import BlobRef
from tickets.merging import surviving_resident
from tickets.models import (
    Feedback,
    Merge,
    Resident,
    ResidentIdentity,
    StatutoryClockRow,
    SuggestedMerge,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketNote,
    TicketParticipant,
    TicketReference,
    aware,
)

EXPORT_FORMAT = 1
# Routing fields that say where an enquiry went, never what it said.
ANONYMOUS_ROUTING = ("department", "departments", "triage", "priority", "confidence", "enquiry_type", "flags",
                     "model_version", "routed_at", "replayed", "statutory_clock")
# Audit detail keys kept after erasure: figures and decisions, no words or identities.
ANONYMOUS_DETAIL = frozenset({"department", "departments", "triage", "priority", "enquiry_type",
                              "model_version",
                              "confidence", "clocks", "clock", "from", "to", "state", "due_on", "started_on",
                              "rating", "previous_rating", "channel", "action", "rule", "status_after",
                              "merge_id", "messages"})


class ResidentNotFoundError(LookupError):
    """No resident matches what the export was asked for."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return aware(value).isoformat()  # type: ignore[union-attr]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(row: DeclarativeBase, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    left_out = set(skip)
    return {c.key: _plain(getattr(row, c.key)) for c in row.__table__.columns if c.key not in left_out}


# -- subject access ----------------------------------------------------------------------------

@dataclass
class ResidentExport:
    path: Path  # the JSON document
    tickets: int
    messages: int
    files: list[Path] = field(default_factory=list)  # attachments and original messages copied
    missing: list[str] = field(default_factory=list)  # blobs the store no longer has


def find_resident(session: Session, *, resident_id: int | None = None, email: str | None = None,
                  phone: str | None = None, reference: str | None = None) -> int:
    """The resident an export is for, by id, email, phone or any reference of one of their tickets
    (normalised like the consumer does), following merges to the resident that holds them now."""
    from schemas.reference import normalise_reference
    from tickets.identity import normalise_email, normalise_phone

    found: int | None = resident_id
    if found is None and email:
        value = normalise_email(email)
        found = session.scalar(select(ResidentIdentity.resident_id).where(
            ResidentIdentity.kind == "email", ResidentIdentity.value == value)) if value else None
    if found is None and phone:
        value = normalise_phone(phone)
        found = session.scalar(select(ResidentIdentity.resident_id).where(
            ResidentIdentity.kind == "phone", ResidentIdentity.value == value)) if value else None
    if found is None and reference:
        ref = normalise_reference(reference)
        ticket_id = session.scalar(select(TicketReference.ticket_id)
                                   .where(TicketReference.reference == ref)) if ref else None
        if ticket_id is not None:
            found = session.scalar(select(Ticket.resident_id).where(Ticket.id == ticket_id))
    resident = surviving_resident(session, found)
    if resident is None:
        raise ResidentNotFoundError("no resident holds that id, address, number or reference")
    return resident.id


def export_resident(session: Session, resident_id: int, blobs: BlobStore, out_dir: Path,
                    *, now: datetime) -> ResidentExport:
    """Write ``resident.json`` and ``files/`` under ``out_dir`` (created; must be empty or absent)."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise ResidentNotFoundError(f"no resident {resident_id}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: choose a new folder for the export")
    files_dir = out_dir / "files"
    merged = list(session.scalars(select(Resident).where(Resident.merged_into_id == resident.id)
                                  .order_by(Resident.id)))
    people = [resident, *merged]
    ids = [p.id for p in people]
    export: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": now.isoformat(),
        "resident": _row(resident, skip=("name_key",)),
        "merged_residents": [_row(p, skip=("name_key",)) for p in merged],
        "identities": [_row(i, skip=("id",)) for i in session.scalars(
            select(ResidentIdentity).where(ResidentIdentity.resident_id.in_(ids)).order_by(ResidentIdentity.id))],
        "suggested_merges": [_row(s) for s in session.scalars(select(SuggestedMerge).where(or_(
            SuggestedMerge.resident_a_id.in_(ids), SuggestedMerge.resident_b_id.in_(ids))))],
        "tickets": [],
    }
    result = ResidentExport(out_dir / "resident.json", 0, 0)
    copied: dict[str, str] = {}
    tickets = session.scalars(select(Ticket).where(Ticket.resident_id.in_(ids)).order_by(Ticket.id)).all()
    for ticket in tickets:
        messages = session.scalars(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id)
                                   .order_by(TicketMessage.received_at, TicketMessage.id)).all()
        message_rows = []
        for message in messages:
            row = _row(message)
            row["files"] = [
                _copy_blob(blobs, files_dir, sha, name, copied, result)
                for sha, name in _blobs_of(message)]
            message_rows.append(row)
        feedback = session.get(Feedback, ticket.id)
        export["tickets"].append({
            "ticket": _row(ticket, skip=("tracking_secret_hash",)),
            "references": [r.reference for r in session.scalars(
                select(TicketReference).where(TicketReference.ticket_id == ticket.id)
                .order_by(TicketReference.issued_at))],
            "departments": [_row(d) for d in session.scalars(
                select(TicketDepartment).where(TicketDepartment.ticket_id == ticket.id))],
            "participants": [_row(p) for p in session.scalars(
                select(TicketParticipant).where(TicketParticipant.ticket_id == ticket.id))],
            "messages": message_rows,
            "internal_notes": [_row(n) for n in session.scalars(
                select(TicketNote).where(TicketNote.ticket_id == ticket.id).order_by(TicketNote.id))],
            "history": [_row(e, skip=("published_at",)) for e in session.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))],
            "clocks": [_row(c) for c in session.scalars(
                select(StatutoryClockRow).where(StatutoryClockRow.ticket_id == ticket.id))],
            "links": [_row(link) for link in session.scalars(select(TicketLink).where(or_(
                TicketLink.from_ticket_id == ticket.id, TicketLink.to_ticket_id == ticket.id)))],
            "feedback": _row(feedback) if feedback else None,
            "sent": _outbound_of(session, ticket.id),
        })
        result.tickets += 1
        result.messages += len(messages)
    export["files_missing"] = result.missing
    tmp = result.path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(export, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(result.path)
    return result


def _outbound_of(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    """Acknowledgements and replies sent (or queued) to the resident on this ticket."""
    from tickets.outbox import outbox

    columns = [outbox.c[name] for name in ("kind", "channel", "recipient", "cc", "author", "body", "status",
                                           "created_at", "sent_at")]
    rows = session.execute(select(*columns).where(outbox.c.ticket_id == ticket_id).order_by(outbox.c.id))
    return [{key: _plain(value) for key, value in row._mapping.items()} for row in rows]


def _blobs_of(message: TicketMessage) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if message.raw_sha256:
        found.append((message.raw_sha256, f"message-{message.id}.eml" if message.channel == "email"
                      else f"message-{message.id}.raw"))
    if message.body_ref_sha256:
        found.append((message.body_ref_sha256, f"message-{message.id}-body.txt"))
    for attachment in message.attachments or []:
        blob = attachment.get("blob") or {}
        if blob.get("sha256"):
            found.append((blob["sha256"], attachment.get("filename") or "attachment"))
    return found


def _copy_blob(blobs: BlobStore, files_dir: Path, sha: str, name: str, copied: dict[str, str],
               result: ResidentExport) -> str:
    """Copy one blob into ``files/`` (once per content) and return its path inside the export."""
    if sha in copied:
        return copied[sha]
    safe = "".join(c if c.isalnum() or c in "._- " else "_" for c in Path(name).name).strip() or "file"
    target = files_dir / f"{sha[:12]}-{safe[:100]}"
    try:
        with blobs.open(BlobRef(sha256=sha, size=0)) as source:
            files_dir.mkdir(exist_ok=True)
            with target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
    except (BlobNotFoundError, FileNotFoundError):
        result.missing.append(sha)
        copied[sha] = ""
        return ""
    result.files.append(target)
    copied[sha] = f"files/{target.name}"
    return copied[sha]


# -- retention ---------------------------------------------------------------------------------

@dataclass
class ErasureReport:
    tickets: int = 0
    messages: int = 0
    residents: int = 0
    blobs_deleted: int = 0
    ticket_ids: list[int] = field(default_factory=list)


def due_for_erasure(session: Session, *, now: datetime, retention: timedelta, limit: int = 500) -> list[int]:
    """Closed tickets whose closing is older than the retention period, not yet erased (oldest first).
    A merged ticket goes with the ticket it was merged into (its messages live there)."""
    cutoff = now - retention
    return list(session.scalars(select(Ticket.id).where(
        Ticket.status == "closed", Ticket.closed_at < cutoff, Ticket.erased_at.is_(None))
        .order_by(Ticket.closed_at, Ticket.id).limit(limit)))


def erase_expired(session: Session, *, now: datetime, retention: timedelta, blobs: BlobStore | None = None,
                  limit: int = 500) -> ErasureReport:
    """Erase the personal data of tickets closed before ``now - retention``, in the caller's
    transaction (call again until it erases nothing: ``limit`` tickets a run)."""
    report = ErasureReport()
    ids = due_for_erasure(session, now=now, retention=retention, limit=limit)
    if not ids:
        return report
    merged = list(session.scalars(select(Ticket.id).where(Ticket.merged_into_id.in_(ids),
                                                          Ticket.erased_at.is_(None))))
    every = ids + [m for m in merged if m not in ids]
    blob_candidates: set[str] = set()
    for message in session.scalars(select(TicketMessage).where(TicketMessage.ticket_id.in_(every))):
        blob_candidates.update(sha for sha, _ in _blobs_of(message))
        message.sender_name = message.sender_email = message.sender_phone = None
        message.subject = message.body_trimmed = message.body_html = None
        message.body_text = ""
        message.email_message_id = message.in_reply_to = message.thread_index = None
        message.email_references, message.attachments, message.recipients = [], [], {}
        message.raw_sha256 = message.body_ref_sha256 = None
        message.routing = {k: message.routing[k] for k in ANONYMOUS_ROUTING if k in (message.routing or {})}
        message.thread_detail = None
        report.messages += 1
    session.execute(delete(TicketParticipant).where(TicketParticipant.ticket_id.in_(every)))
    session.execute(update(TicketNote).where(TicketNote.ticket_id.in_(every)).values(body=""))
    from tickets.outbox import outbox

    session.execute(update(outbox).where(outbox.c.ticket_id.in_(every)).values(
        recipient="", cc="[]", sender=None, body=None, context="{}", status_reason=None))
    session.execute(update(Feedback).where(Feedback.ticket_id.in_(every)).values(comment=None))
    session.execute(update(TicketLink).where(or_(TicketLink.from_ticket_id.in_(every),
                                                 TicketLink.to_ticket_id.in_(every))).values(reason=None))
    session.execute(update(TicketReference).where(TicketReference.ticket_id.in_(every)).values(dedupe_key=None))
    for event in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(every))):
        event.detail = {k: v for k, v in (event.detail or {}).items() if k in ANONYMOUS_DETAIL}
    for merge in session.scalars(select(Merge).where(Merge.kind == "ticket", or_(
            Merge.source_id.in_(every), Merge.target_id.in_(every)))):
        merge.snapshot = {}  # the snapshot holds subjects; such a merge can no longer be undone
    residents: set[int] = set()
    for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(every))):
        ticket.subject = None
        ticket.tracking_secret_hash = None
        ticket.erased_at = now
        if ticket.resident_id is not None:
            residents.add(ticket.resident_id)
        session.add(TicketEvent(ticket_id=ticket.id, reference=ticket.reference, kind="erased",
                                actor="retention", detail={"retention_days": retention.days}, at=now))
        report.tickets += 1
        report.ticket_ids.append(ticket.id)
    session.flush()
    report.residents = _erase_residents(session, residents, now)
    if blobs is not None and blob_candidates:
        report.blobs_deleted = _delete_unreferenced(session, blobs, blob_candidates)
    return report


def _erase_residents(session: Session, candidates: set[int], now: datetime) -> int:
    """Erase each candidate resident none of whose tickets still holds personal data."""
    erased = 0
    for resident in session.scalars(select(Resident).where(Resident.id.in_(candidates),
                                                           Resident.erased_at.is_(None))):
        live = session.scalar(select(Ticket.id).where(Ticket.resident_id == resident.id,
                                                      Ticket.erased_at.is_(None)).limit(1))
        if live is not None:
            continue
        resident.name = resident.name_key = resident.postcode = resident.address = None
        resident.erased_at = resident.updated_at = now
        session.execute(delete(ResidentIdentity).where(ResidentIdentity.resident_id == resident.id))
        erased += 1
    return erased


def _delete_unreferenced(session: Session, blobs: BlobStore, candidates: set[str]) -> int:
    path_for = getattr(blobs, "path_for", None)
    if path_for is None:
        return 0  # a store without deletion keeps them; its own lifecycle rules must expire them
    still = set(session.scalars(select(TicketMessage.raw_sha256)
                                .where(TicketMessage.raw_sha256.in_(candidates))))
    still |= set(session.scalars(select(TicketMessage.body_ref_sha256)
                                 .where(TicketMessage.body_ref_sha256.in_(candidates))))
    for attachments in session.scalars(select(TicketMessage.attachments).join(Ticket).where(
            Ticket.erased_at.is_(None))):
        still.update(a.get("blob", {}).get("sha256") for a in attachments or [])
    deleted = 0
    for sha in sorted(candidates - still):
        path = Path(path_for(sha))
        if path.exists():
            path.unlink()
            deleted += 1
    return deleted

