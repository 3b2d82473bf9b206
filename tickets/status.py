"""A ticket's life: its status, the transitions allowed between them, and moves between
departments recorded as labelled corrections.

The transitions live in one table (:data:`TRANSITIONS`) so the console, the consumer and the
tests all ask the same question. ``merged`` leaves only by an unmerge, which restores the exact
status the ticket had (kept in the merge's audit record), so it is not a transition here.

A move to another department is a correction of the router: it keeps what the router decided
(model version, confidence), by which channel the enquiry came, who moved it and why. The
routing-accuracy report counts them and ``frontdoor train --from-corrections`` learns from the
CSV :func:`write_corrections_csv` writes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    AWAITING_RESIDENT = "awaiting_resident"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    MERGED = "merged"


S = TicketStatus
_WORKING = frozenset({S.OPEN, S.AWAITING_RESIDENT, S.RESOLVED, S.CLOSED, S.MERGED})

TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: _WORKING,
    S.OPEN: _WORKING - {S.OPEN},
    S.AWAITING_RESIDENT: _WORKING - {S.AWAITING_RESIDENT},
    S.REOPENED: _WORKING,
    S.RESOLVED: frozenset({S.CLOSED, S.REOPENED, S.MERGED}),
    S.CLOSED: frozenset({S.REOPENED, S.MERGED}),
    S.MERGED: frozenset(),  # only an unmerge leaves it, restoring the status before the merge
}

# A resident's reply reopens these (within the reopen window) instead of joining quietly.
FINISHED = frozenset({S.RESOLVED, S.CLOSED})
# Statuses in which the ticket is still being worked: an SMS joins, queues show it.
ACTIVE = frozenset({S.NEW, S.OPEN, S.AWAITING_RESIDENT, S.REOPENED})


class InvalidTransitionError(ValueError):
    """A status change the table does not allow (the console shows the message)."""


def allowed(current: TicketStatus | str, target: TicketStatus | str) -> bool:
    return TicketStatus(target) in TRANSITIONS[TicketStatus(current)]


def check_transition(current: TicketStatus | str, target: TicketStatus | str) -> TicketStatus:
    """``target`` as a status when the table allows ``current`` → ``target``, else raise."""
    now, then = TicketStatus(current), TicketStatus(target)
    if then not in TRANSITIONS[now]:
        choices = ", ".join(sorted(TRANSITIONS[now])) or "none (unmerge restores it)"
        raise InvalidTransitionError(f"a {now} ticket cannot become {then}; allowed: {choices}")
    return then


def on_resident_reply(current: TicketStatus | str) -> TicketStatus:
    """The status after the resident writes again on the ticket.

    Awaiting the resident: back to open (their answer is what we waited for; a paused clock
    resumes). Resolved or closed: reopened (threading has already decided the reply falls
    inside the reopen window; outside it the reply opens a new ticket instead). Otherwise
    unchanged.
    """
    now = TicketStatus(current)
    if now is S.AWAITING_RESIDENT:
        return S.OPEN
    if now in FINISHED:
        return S.REOPENED
    return now


@dataclass(frozen=True)
class Correction:
    """A ticket moved from one department to another: a label for the router.

    ``text`` is what the router classified (subject and the resident's own words), so the
    correction can train the next model without reloading the ticket.
    """

    ticket: str  # the ticket's reference
    from_department: str
    to_department: str
    model_version: str  # the model whose decision this corrects ("" when a person routed it)
    confidence: float | None
    channel: str
    who: str
    reason: str
    at: datetime
    text: str = ""


def correction_for_move(*, ticket: str, departments: Iterable[str], primary: str, to: str,
                        model_version: str, confidence: float | None, channel: str, who: str,
                        reason: str, at: datetime, text: str = "") -> tuple[Correction, tuple[str, ...]]:
    """The correction for moving a ticket's primary department to ``to``, and the ticket's
    departments afterwards (``to`` first, the others kept: a department that handled it keeps
    its share of the feedback)."""
    if not to:
        raise InvalidTransitionError("a move needs the department to move to")
    if to == primary:
        raise InvalidTransitionError(f"the ticket is already with {to}")
    if not who:
        raise InvalidTransitionError("a move says who made it")
    after = tuple(dict.fromkeys([to, *departments]))
    return Correction(ticket=ticket, from_department=primary, to_department=to,
                      model_version=model_version, confidence=confidence, channel=channel,
                      who=who, reason=reason, at=at, text=text), after


CORRECTIONS_CSV_COLUMNS = ("text", "from_department", "to_department")


def write_corrections_csv(corrections: Iterable[Correction], out: TextIO) -> int:
    """Write corrections as training rows (``text,from_department,to_department``); the number
    of rows written.

    One row per ticket: from the router's department (the first move's origin) to where the
    last move left it (A → B → C teaches C, not B; A → B → A teaches nothing). Rows without text
    teach nothing and are left out.
    """
    first: dict[str, Correction] = {}
    latest: dict[str, Correction] = {}
    for correction in sorted(corrections, key=lambda c: c.at):
        first.setdefault(correction.ticket, correction)
        latest[correction.ticket] = correction
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CORRECTIONS_CSV_COLUMNS)
    written = 0
    for ticket, last in latest.items():
        origin = first[ticket].from_department
        text = last.text or first[ticket].text
        if not text.strip() or origin == last.to_department:
            continue
        writer.writerow([text, origin, last.to_department])
        written += 1
    return written


def corrections_from_database(session: Session) -> list[Correction]:
    """Every stored move (``routing_corrections``), each with the text the router classified:
    the subject and the resident's own words of the message it corrects (the ticket's first
    message when none is named)."""
    from sqlalchemy import select

    from tickets.models import Correction as CorrectionRow
    from tickets.models import Ticket, TicketMessage, aware

    out: list[Correction] = []
    texts: dict[int, str] = {}
    rows = session.execute(select(CorrectionRow, Ticket.reference)
                           .join(Ticket, Ticket.id == CorrectionRow.ticket_id)
                           .order_by(CorrectionRow.at, CorrectionRow.id)).all()
    for row, reference in rows:
        message_id = row.message_id or session.scalar(
            select(TicketMessage.id)
            .where(TicketMessage.ticket_id == row.ticket_id, TicketMessage.direction == "in")
            .order_by(TicketMessage.received_at, TicketMessage.id).limit(1))
        if message_id is not None and message_id not in texts:
            message = session.get(TicketMessage, message_id)
            body, subject = "", None
            if message is not None:
                body = message.body_trimmed if message.body_trimmed is not None else message.body_text
                subject = message.subject
            texts[message_id] = f"{subject}\n\n{body}" if subject else body
        at = aware(row.at)
        out.append(Correction(ticket=reference, from_department=row.from_department or "",
                              to_department=row.to_department, model_version=row.model_version or "",
                              confidence=row.confidence, channel=row.channel or "", who=row.actor,
                              reason=row.reason, at=at if at is not None else datetime.min,
                              text=texts.get(message_id or -1, "")))
    return out
