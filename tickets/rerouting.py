"""Open tickets follow a replay: ``frontdoor replay`` (without ``--shadow``) routes the retained
stream again with a new model and republishes every changed decision marked ``replayed``.

The message is already held, so the writer would otherwise drop it as a duplicate. Here a replayed
decision moves the ticket it opened to the new departments, when all of these hold:

* the message is the ticket's first (its routing is what placed the ticket; a follow-up's routing
  never did);
* the ticket is still open (a closed case stays where it was answered) and not merged away;
* no agent has moved or added a department (``corrected`` / ``department_added``): a person's
  decision outranks any model's.

The move is one ``rerouted`` event (from, to, model) in the batch's transaction; the same replayed
record arriving again (from each department topic it was published to) then changes nothing.
Statutory clocks are left as they were: their kind comes from the enquiry type, not the department.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from schemas.routed import Routing
from tickets.models import (
    OPEN_STATUSES,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketMessage,
    table_of,
    utcnow,
)

AGENT_MOVES = ("corrected", "department_added")
tickets_t = table_of(Ticket)
departments_t = table_of(TicketDepartment)
messages_t = table_of(TicketMessage)
events_t = table_of(TicketEvent)


def routed_departments(routing: Routing) -> list[str]:
    """The departments a routing decision gives a ticket, the primary first."""
    if routing.departments or not routing.triage:
        return list(dict.fromkeys([routing.department, *routing.departments]))
    return [routing.department]


def apply_replayed(conn: Connection, replayed: Sequence[tuple[int, str, Routing]]) -> int:
    """Move each (ticket id, dedupe key, replayed routing) ticket that may move; how many moved."""
    moved = 0
    for ticket_id, dedupe_key, routing in replayed:
        moved += _move(conn, ticket_id, dedupe_key, routing)
    return moved


def _move(conn: Connection, ticket_id: int, dedupe_key: str, routing: Routing) -> bool:
    t, m, d, e = tickets_t.c, messages_t.c, departments_t.c, events_t.c
    ticket = conn.execute(select(t.reference, t.status, t.merged_into_id, t.primary_department, t.triage)
                          .where(t.id == ticket_id)).one_or_none()
    if ticket is None or ticket.merged_into_id is not None or ticket.status not in OPEN_STATUSES:
        return False
    first = conn.execute(select(m.dedupe_key).where(m.ticket_id == ticket_id)
                         .order_by(m.received_at, m.id).limit(1)).scalar_one_or_none()
    if first != dedupe_key:
        return False
    if conn.execute(select(e.id).where(e.ticket_id == ticket_id, e.kind.in_(AGENT_MOVES)).limit(1)).first():
        return False
    before = [row.department for row in conn.execute(
        select(d.department).where(d.ticket_id == ticket_id)
        .order_by(d.role != "primary", d.added_at, d.department))]
    after = routed_departments(routing)
    if before == after and bool(ticket.triage) == routing.triage:
        return False
    now = utcnow()
    conn.execute(delete(departments_t).where(d.ticket_id == ticket_id))
    conn.execute(insert(departments_t), [
        {"ticket_id": ticket_id, "department": department,
         "role": "primary" if department == routing.department else "involved", "added_at": now}
        for department in after])
    conn.execute(update(tickets_t).where(t.id == ticket_id).values(
        primary_department=routing.department, triage=routing.triage, model_version=routing.model_version,
        confidence=routing.confidence, updated_at=now))
    detail: dict[str, Any] = {
        "from_departments": before, "from_triage": bool(ticket.triage), "departments": after,
        "triage": routing.triage, "model_version": routing.model_version, "confidence": routing.confidence,
        "reason": f"replay with model {routing.model_version}"}
    conn.execute(insert(events_t).values(ticket_id=ticket_id, reference=ticket.reference, kind="rerouted",
                                         actor="system", detail=detail, at=now, published_at=None))
    return True
