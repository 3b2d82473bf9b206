"""A replay with a new model moves the open tickets its changed decisions opened, and no others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from schemas.routed import RoutedMessage
from tests.tickets.factory import email, later, record, routed
from tickets import casework
from tickets.db import make_engine
from tickets.models import Ticket, TicketDepartment, TicketEvent
from tickets.service import TicketWriter


@pytest.fixture
def engine(upgraded_url: str) -> Iterator[Engine]:
    engine = make_engine(upgraded_url, immediate=True)
    yield engine
    engine.dispose()


def replayed(original: RoutedMessage, department: str) -> RoutedMessage:
    return original.model_copy(update={"routing": original.routing.model_copy(update={
        "department": department, "departments": [department], "model_version": "test-2",
        "confidence": 0.97, "replayed": True})})


def write(engine: Engine, *messages: RoutedMessage) -> None:
    with engine.begin() as conn:
        TicketWriter().write_batch(conn, [record(m) for m in messages], lambda *_: None)


def state(engine: Engine, subject: str) -> tuple[str | None, list[str], list[dict[str, object]]]:
    with engine.connect() as conn:
        ticket = conn.execute(select(Ticket.id, Ticket.primary_department)
                              .where(Ticket.subject == subject)).one()
        departments = sorted(conn.scalars(select(TicketDepartment.department)
                                          .where(TicketDepartment.ticket_id == ticket.id)))
        moves = [e for e in conn.scalars(select(TicketEvent.detail).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "rerouted"))]
    return ticket.primary_department, departments, moves


def ticket_id(engine: Engine, subject: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(Ticket.id).where(Ticket.subject == subject)) or 0)


def test_replayed_decisions_move_open_untouched_tickets_once(engine: Engine) -> None:
    hole = routed(email("ann@example.org", "Hole", "deep hole outside no 4", message_id="<a1@x>"), "waste")
    follow = routed(email("ann@example.org", "Re: Hole", "still there", message_id="<a2@x>",
                          in_reply_to="<a1@x>", at=later(60)), "waste")
    corrected = routed(email("bob@example.org", "Branch", "branch down on the path", message_id="<b1@x>"),
                       "waste")
    closed = routed(email("cy@example.org", "Lamp", "lamp out on the corner", message_id="<c1@x>"), "waste")
    write(engine, hole, follow, corrected, closed)
    casework.move(engine, ticket_id(engine, "Branch"), actor="agent@council", to="parks",
                  reason="a fallen branch is the tree team's")
    casework.change_status(engine, ticket_id(engine, "Lamp"), actor="agent@council", status="closed")

    write(engine, replayed(hole, "highways"), replayed(follow, "parks"), replayed(corrected, "highways"),
          replayed(closed, "highways"))

    primary, departments, moves = state(engine, "Hole")
    assert (primary, departments) == ("highways", ["highways"])  # the follow-up's routing never placed it
    assert len(moves) == 1
    assert moves[0]["from_departments"] == ["waste"] and moves[0]["model_version"] == "test-2"
    assert state(engine, "Branch")[:2] == ("parks", ["parks", "waste"])  # the agent's move outranks a model
    assert state(engine, "Lamp") == ("waste", ["waste"], [])  # a closed case stays where it was answered

    write(engine, replayed(hole, "highways"))  # the same decision again, from another department topic
    assert len(state(engine, "Hole")[2]) == 1
