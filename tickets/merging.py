"""Merging two tickets, or two residents, and undoing it exactly.

A merge is one transaction (the caller's): it moves what belongs to the conversation, marks the
source merged (kept, never deleted: its reference still opens it, and threading forwards later
mail to the target), writes the history on both sides, and stores in a ``merges`` row a
snapshot of everything it touched. Unmerge reads that snapshot and puts every row back as it
was: the two ticket rows column by column, the moved messages and notes back on the source,
the participants, departments and link it added removed. What happened *after* the merge is
kept: a message that arrived in the target since stays there.

Who may merge is the console's question; what a merge does is answered here, once.

Ticket merge (source → target): messages and internal notes move; the source's participants
and departments are added to the target (so the source's resident may keep writing, and every
department keeps its share); the source becomes ``merged`` with ``merged_into_id``; a
``merged`` link joins them; ``merged`` events are written on both tickets.

Resident merge (source → target): the source's addresses, numbers and tickets move to the
target; the source is kept with ``merged_into_id``; an open suggested merge between the two is
resolved as merged; every moved ticket gets a ``resident_merged`` event, and the merges row
(indexed by source and by target) is the audit line on each resident.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import DeclarativeBase, Session

from tickets.models import (
    Merge,
    Resident,
    ResidentIdentity,
    SuggestedMerge,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketLink,
    TicketMessage,
    TicketNote,
    TicketParticipant,
    aware,
)
from tickets.status import TicketStatus, check_transition

MERGED_LINK = "merged"


class MergeError(ValueError):
    """A merge or unmerge the rules refuse; the console shows the message."""


# -- row snapshots -----------------------------------------------------------------------------

def snapshot_row(row: DeclarativeBase) -> dict[str, Any]:
    """Every column of ``row`` as JSON-safe values (dates and times tagged so they come back typed)."""
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, datetime):
            value = {"$dt": aware(value).isoformat()}  # type: ignore[union-attr]
        elif isinstance(value, date):
            value = {"$d": value.isoformat()}
        out[column.key] = value
    return out


def restore_row(row: DeclarativeBase, saved: dict[str, Any], *, only: Iterable[str] | None = None) -> None:
    keys = set(only) if only is not None else set(saved)
    for key, value in saved.items():
        if key not in keys:
            continue
        if isinstance(value, dict) and "$dt" in value and len(value) == 1:
            value = datetime.fromisoformat(value["$dt"])
        elif isinstance(value, dict) and "$d" in value and len(value) == 1:
            value = date.fromisoformat(value["$d"])
        setattr(row, key, value)


def _event(session: Session, ticket: Ticket, kind: str, actor: str, now: datetime, **detail: Any) -> None:
    session.add(TicketEvent(ticket_id=ticket.id, reference=ticket.reference, kind=kind, actor=actor,
                            detail=detail, at=now))


# -- tickets -----------------------------------------------------------------------------------

def merge_tickets(session: Session, source_id: int, target_id: int, *, actor: str, reason: str,
                  now: datetime) -> Merge:
    """Merge ticket ``source_id`` into ``target_id`` in the caller's transaction."""
    if source_id == target_id:
        raise MergeError("a ticket cannot be merged into itself")
    source, target = session.get(Ticket, source_id), session.get(Ticket, target_id)
    if source is None or target is None:
        raise MergeError("no such ticket")
    if target.status == TicketStatus.MERGED:
        raise MergeError(f"{target.reference} is itself merged: merge into the ticket it was merged into")
    check_transition(source.status, TicketStatus.MERGED)  # refuses an already merged source

    before = {"source": snapshot_row(source), "target": snapshot_row(target)}
    message_ids = list(session.scalars(select(TicketMessage.id).where(TicketMessage.ticket_id == source.id)))
    note_ids = list(session.scalars(select(TicketNote.id).where(TicketNote.ticket_id == source.id)))
    if message_ids:
        session.execute(update(TicketMessage).where(TicketMessage.id.in_(message_ids)).values(ticket_id=target.id))
    if note_ids:
        session.execute(update(TicketNote).where(TicketNote.id.in_(note_ids)).values(ticket_id=target.id))

    have = {(p.kind, p.value) for p in session.scalars(
        select(TicketParticipant).where(TicketParticipant.ticket_id == target.id))}
    added_participants = []
    for p in session.scalars(select(TicketParticipant).where(TicketParticipant.ticket_id == source.id)
                             .order_by(TicketParticipant.id)).all():
        if (p.kind, p.value) not in have:
            row = TicketParticipant(ticket_id=target.id, kind=p.kind, value=p.value, role=p.role, name=p.name,
                                    added_at=now)
            session.add(row)
            session.flush()
            added_participants.append(row.id)
            have.add((p.kind, p.value))
    departments = set(session.scalars(select(TicketDepartment.department)
                                      .where(TicketDepartment.ticket_id == target.id)))
    added_departments = []
    for d in session.scalars(select(TicketDepartment.department)
                             .where(TicketDepartment.ticket_id == source.id)
                             .order_by(TicketDepartment.department)).all():
        if d not in departments:
            session.add(TicketDepartment(ticket_id=target.id, department=d, role="involved", added_at=now))
            added_departments.append(d)
    link_exists = session.get(TicketLink, (source.id, target.id, MERGED_LINK)) is not None
    if not link_exists:
        session.add(TicketLink(from_ticket_id=source.id, to_ticket_id=target.id, kind=MERGED_LINK,
                               reason=reason[:500] or None, at=now))

    source.status, source.merged_into_id, source.updated_at = TicketStatus.MERGED.value, target.id, now
    latest = [t for t in (aware(source.last_message_at), aware(target.last_message_at)) if t]
    target.last_message_at = max(latest) if latest else None
    target.updated_at = now
    session.flush()
    after_target = {k: v for k, v in snapshot_row(target).items() if k in ("last_message_at", "updated_at")}

    merge = Merge(kind="ticket", source_id=source.id, target_id=target.id, actor=actor, at=now, snapshot={
        **before, "target_after": after_target, "messages": message_ids, "notes": note_ids,
        "participants_added": added_participants, "departments_added": added_departments,
        "link_added": not link_exists, "reason": reason,
    })
    session.add(merge)
    session.flush()
    _event(session, source, "merged", actor, now, into=target.reference, merge_id=merge.id, reason=reason,
           messages=len(message_ids))
    _event(session, target, "merged", actor, now, absorbed=source.reference, merge_id=merge.id, reason=reason,
           messages=len(message_ids))
    return merge


def unmerge_tickets(session: Session, merge_id: int, *, actor: str, now: datetime) -> Merge:
    """Undo ticket merge ``merge_id`` in the caller's transaction: the exact state before it."""
    merge = _open_merge(session, merge_id, "ticket")
    source, target = session.get(Ticket, merge.source_id), session.get(Ticket, merge.target_id)
    if source is None or target is None:
        raise MergeError("the merged tickets are gone")
    if source.status != TicketStatus.MERGED or source.merged_into_id != target.id:
        raise MergeError(f"{source.reference} is no longer merged into {target.reference}")
    if target.status == TicketStatus.MERGED:
        raise MergeError(f"{target.reference} was merged since: unmerge that first")
    snap = merge.snapshot
    if snap["messages"]:
        session.execute(update(TicketMessage).where(TicketMessage.id.in_(snap["messages"]))
                        .values(ticket_id=source.id))
    if snap["notes"]:
        session.execute(update(TicketNote).where(TicketNote.id.in_(snap["notes"])).values(ticket_id=source.id))
    if snap["participants_added"]:
        session.execute(delete(TicketParticipant).where(TicketParticipant.id.in_(snap["participants_added"])))
    if snap["departments_added"]:
        session.execute(delete(TicketDepartment).where(and_(
            TicketDepartment.ticket_id == target.id,
            TicketDepartment.department.in_(snap["departments_added"]))))
    if snap["link_added"]:
        session.execute(delete(TicketLink).where(and_(
            TicketLink.from_ticket_id == source.id, TicketLink.to_ticket_id == target.id,
            TicketLink.kind == MERGED_LINK)))
    restore_row(source, snap["source"])
    # The target keeps what happened to it since the merge; what the merge itself set goes back.
    unchanged = [k for k, v in snap["target_after"].items() if snapshot_row(target)[k] == v]
    restore_row(target, snap["target"], only=unchanged)
    merge.undone_at, merge.undone_by = now, actor
    session.flush()
    _event(session, source, "unmerged", actor, now, from_ticket=target.reference, merge_id=merge.id)
    _event(session, target, "unmerged", actor, now, released=source.reference, merge_id=merge.id)
    return merge


def _open_merge(session: Session, merge_id: int, kind: str) -> Merge:
    merge = session.get(Merge, merge_id)
    if merge is None or merge.kind != kind:
        raise MergeError(f"no {kind} merge {merge_id}")
    if merge.undone_at is not None:
        raise MergeError(f"merge {merge_id} was already undone")
    if not merge.snapshot:
        raise MergeError(f"merge {merge_id} can no longer be undone: retention erased what it held")
    return merge


# -- residents ---------------------------------------------------------------------------------

def surviving_resident(session: Session, resident_id: int | None) -> Resident | None:
    """The resident ``resident_id`` now lives on as, following merges (itself when never merged;
    None when there is no such resident)."""
    resident = session.get(Resident, resident_id) if resident_id is not None else None
    for _ in range(16):
        if resident is None or resident.merged_into_id is None:
            break
        resident = session.get(Resident, resident.merged_into_id)
    return resident


def merge_residents(session: Session, source_id: int, target_id: int, *, actor: str, reason: str,
                    now: datetime) -> Merge:
    """Merge resident ``source_id`` into ``target_id`` (a person's decision) in the caller's
    transaction."""
    if source_id == target_id:
        raise MergeError("a resident cannot be merged into themselves")
    source, target = session.get(Resident, source_id), session.get(Resident, target_id)
    if source is None or target is None:
        raise MergeError("no such resident")
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise MergeError("one of them is already merged into another resident")
    before = {"source": snapshot_row(source), "target": snapshot_row(target)}
    identity_ids = list(session.scalars(select(ResidentIdentity.id)
                                        .where(ResidentIdentity.resident_id == source.id)))
    tickets = list(session.scalars(select(Ticket).where(Ticket.resident_id == source.id).order_by(Ticket.id)))
    pair = sorted((source.id, target.id))
    suggestions = list(session.scalars(select(SuggestedMerge).where(
        SuggestedMerge.resident_a_id == pair[0], SuggestedMerge.resident_b_id == pair[1],
        SuggestedMerge.resolved_at.is_(None))))
    suggestion_before = [snapshot_row(s) for s in suggestions]
    if identity_ids:
        session.execute(update(ResidentIdentity).where(ResidentIdentity.id.in_(identity_ids))
                        .values(resident_id=target.id))
    if tickets:
        session.execute(update(Ticket).where(Ticket.id.in_([t.id for t in tickets]))
                        .values(resident_id=target.id))
    for s in suggestions:
        s.resolved_at, s.resolution, s.resolved_by = now, "merged", actor
    source.merged_into_id, source.updated_at = target.id, now
    session.flush()
    merge = Merge(kind="resident", source_id=source.id, target_id=target.id, actor=actor, at=now, snapshot={
        **before, "identities": identity_ids, "tickets": [t.id for t in tickets],
        "suggestions": suggestion_before, "reason": reason,
    })
    session.add(merge)
    session.flush()
    for ticket in tickets:
        _event(session, ticket, "resident_merged", actor, now, from_resident=source.id, to_resident=target.id,
               merge_id=merge.id, reason=reason)
    return merge


def unmerge_residents(session: Session, merge_id: int, *, actor: str, now: datetime) -> Merge:
    merge = _open_merge(session, merge_id, "resident")
    source, target = session.get(Resident, merge.source_id), session.get(Resident, merge.target_id)
    if source is None or target is None:
        raise MergeError("the merged residents are gone")
    if source.merged_into_id != target.id:
        raise MergeError(f"resident {source.id} is no longer merged into {target.id}")
    snap = merge.snapshot
    if snap["identities"]:
        session.execute(update(ResidentIdentity).where(ResidentIdentity.id.in_(snap["identities"]))
                        .values(resident_id=source.id))
    if snap["tickets"]:
        session.execute(update(Ticket).where(Ticket.id.in_(snap["tickets"])).values(resident_id=source.id))
    for saved in snap["suggestions"]:
        suggestion = session.get(SuggestedMerge, saved["id"])
        if suggestion is not None:
            restore_row(suggestion, saved)
    restore_row(source, snap["source"])
    merge.undone_at, merge.undone_by = now, actor
    session.flush()
    for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(snap["tickets"] or [-1]))):
        _event(session, ticket, "resident_unmerged", actor, now, back_to_resident=source.id,
               merge_id=merge.id)
    return merge


def merges_of(session: Session, kind: str, record_id: int) -> list[Merge]:
    """The merge history of a ticket or resident, on either side (the audit the console shows)."""
    return list(session.scalars(select(Merge).where(Merge.kind == kind, or_(
        Merge.source_id == record_id, Merge.target_id == record_id)).order_by(Merge.id)))
