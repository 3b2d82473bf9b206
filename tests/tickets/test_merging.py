"""Merge and unmerge of tickets and residents: one transaction, audited on both sides, and an
unmerge restores every row exactly (rows snapshotted before and after), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tickets.db import make_engine
from tickets.merging import (
    MergeError,
    merge_residents,
    merge_tickets,
    merges_of,
    unmerge_residents,
    unmerge_tickets,
)
from tickets.models import (
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
    metadata,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AUDIT = {"ticket_events", "merges", "alembic_version"}


@pytest.fixture
def engine(upgraded_url: str) -> Iterator[Engine]:
    engine = make_engine(upgraded_url)
    yield engine
    engine.dispose()


def rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit ones, as plain values in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in AUDIT:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [tuple(aware(v) if isinstance(v, datetime) else v for v in row)
                               for row in conn.execute(select(table).order_by(*order))]
    return out


def seed(engine: Engine) -> dict[str, int]:
    """Two residents (Anna by email, a number that turned out to be hers), each with a ticket."""
    with Session(engine) as s, s.begin():
        anna, texter = Resident(name="Anna Resident"), Resident(name=None)
        s.add_all([anna, texter])
        s.flush()
        s.add_all([ResidentIdentity(resident_id=anna.id, kind="email", value="anna@example.org"),
                   ResidentIdentity(resident_id=texter.id, kind="phone", value="+447700900123"),
                   SuggestedMerge(resident_a_id=min(anna.id, texter.id),
                                  resident_b_id=max(anna.id, texter.id), reason="one form gave both")])
        first = Ticket(reference="FD-1111-1111", status="open", resident_id=anna.id,
                       primary_department="housing", channel="email", subject="Damp in flat",
                       created_at=T0, updated_at=T0, last_message_at=T0)
        second = Ticket(reference="FD-2222-2222", status="awaiting_resident", resident_id=texter.id,
                        primary_department="environmental_health", channel="sms",
                        created_at=T0 + timedelta(hours=1), updated_at=T0 + timedelta(hours=1),
                        last_message_at=T0 + timedelta(hours=2))
        s.add_all([first, second])
        s.flush()
        for ticket, channel, sender, n in ((first, "email", "anna@example.org", 2), (second, "sms", None, 2)):
            for i in range(n):
                s.add(TicketMessage(ticket_id=ticket.id, dedupe_key=f"{channel}:{ticket.id}:{i}",
                                    message_uuid=f"u{i}", channel=channel,
                                    received_at=T0 + timedelta(minutes=i),
                                    sender_email=sender, sender_phone=None if sender else "+447700900123",
                                    body_text=f"message {i}"))
        s.add_all([
            TicketParticipant(ticket_id=first.id, kind="email", value="anna@example.org"),
            TicketParticipant(ticket_id=second.id, kind="phone", value="+447700900123"),
            TicketDepartment(ticket_id=first.id, department="housing", role="primary"),
            TicketDepartment(ticket_id=second.id, department="environmental_health", role="primary"),
            TicketNote(ticket_id=second.id, author="officer@council", body="Called back, no answer"),
        ])
        s.flush()
        return {"anna": anna.id, "texter": texter.id, "first": first.id, "second": second.id}


def test_ticket_merge_moves_the_conversation_and_unmerge_restores_every_row(engine: Engine) -> None:
    ids = seed(engine)
    before = rows(engine)
    now = T0 + timedelta(days=1)
    with Session(engine) as s, s.begin():
        merge_id = merge_tickets(s, ids["second"], ids["first"], actor="agent@council", reason="same damp",
                                 now=now).id
    with Session(engine) as s:
        source, target = s.get(Ticket, ids["second"]), s.get(Ticket, ids["first"])
        assert source is not None and target is not None
        assert (source.status, source.merged_into_id) == ("merged", target.id)  # kept, marked merged
        on_target = select(TicketMessage.id).where(TicketMessage.ticket_id == target.id)
        assert len(s.scalars(on_target).all()) == 4
        assert s.scalar(select(TicketNote.ticket_id)) == target.id
        participants = select(TicketParticipant.value).where(TicketParticipant.ticket_id == target.id)
        assert set(s.scalars(participants)) == {"anna@example.org", "+447700900123"}
        departments = select(TicketDepartment.department).where(TicketDepartment.ticket_id == target.id)
        assert set(s.scalars(departments)) == {"housing", "environmental_health"}
        assert s.get(TicketLink, (source.id, target.id, "merged")) is not None
        assert aware(target.last_message_at) == T0 + timedelta(hours=2)
        events = {(e.ticket_id, e.kind) for e in s.scalars(select(TicketEvent))}
        assert events == {(source.id, "merged"), (target.id, "merged")}  # audited on both sides
        assert [m.id for m in merges_of(s, "ticket", source.id)] == [merge_id]
        assert [m.id for m in merges_of(s, "ticket", target.id)] == [merge_id]

    with Session(engine) as s, s.begin():
        unmerge_tickets(s, merge_id, actor="supervisor@council", now=now + timedelta(hours=1))
    assert rows(engine) == before
    with Session(engine) as s:
        assert sorted(e.kind for e in s.scalars(select(TicketEvent))) == ["merged", "merged", "unmerged",
                                                                          "unmerged"]
    with Session(engine) as s, s.begin(), pytest.raises(MergeError, match="already undone"):
        unmerge_tickets(s, merge_id, actor="supervisor@council", now=now)


def test_what_arrived_after_the_merge_stays_in_the_target(engine: Engine) -> None:
    ids = seed(engine)
    now = T0 + timedelta(days=1)
    with Session(engine) as s, s.begin():
        merge_id = merge_tickets(s, ids["second"], ids["first"], actor="agent", reason="dup", now=now).id
    with Session(engine) as s, s.begin():  # a text that threaded through the merged ticket
        s.add(TicketMessage(ticket_id=ids["first"], dedupe_key="sms:late", message_uuid="late", channel="sms",
                            received_at=now + timedelta(hours=1), sender_phone="+447700900123",
                            body_text="late"))
        s.get(Ticket, ids["first"]).last_message_at = now + timedelta(hours=1)  # type: ignore[union-attr]
    with Session(engine) as s, s.begin():
        unmerge_tickets(s, merge_id, actor="agent", now=now + timedelta(hours=2))
    with Session(engine) as s:
        late = select(TicketMessage.ticket_id).where(TicketMessage.dedupe_key == "sms:late")
        assert s.scalar(late) == ids["first"]
        target = s.get(Ticket, ids["first"])
        assert target is not None and aware(target.last_message_at) == now + timedelta(hours=1)
        back = select(TicketMessage).where(TicketMessage.ticket_id == ids["second"])
        assert len(s.scalars(back).all()) == 2


def test_merges_the_rules_refuse(engine: Engine) -> None:
    ids = seed(engine)
    with Session(engine) as s, s.begin():
        with pytest.raises(MergeError, match="itself"):
            merge_tickets(s, ids["first"], ids["first"], actor="a", reason="", now=T0)
        merge_tickets(s, ids["second"], ids["first"], actor="a", reason="", now=T0)
        with pytest.raises(MergeError, match="is itself merged"):
            merge_tickets(s, ids["first"], ids["second"], actor="a", reason="", now=T0)


def test_resident_merge_and_unmerge(engine: Engine) -> None:
    ids = seed(engine)
    before = rows(engine)
    now = T0 + timedelta(days=1)
    with Session(engine) as s, s.begin():
        merge_id = merge_residents(s, ids["texter"], ids["anna"], actor="agent@council",
                                   reason="same person, confirmed by phone", now=now).id
    with Session(engine) as s:
        held = select(ResidentIdentity.value).where(ResidentIdentity.resident_id == ids["anna"])
        assert set(s.scalars(held)) == {"anna@example.org", "+447700900123"}
        assert set(s.scalars(select(Ticket.resident_id))) == {ids["anna"]}
        assert s.get(Resident, ids["texter"]).merged_into_id == ids["anna"]  # type: ignore[union-attr]
        assert s.scalar(select(SuggestedMerge.resolution)) == "merged"
        assert [(e.ticket_id, e.kind) for e in s.scalars(select(TicketEvent))] == [(ids["second"],
                                                                                   "resident_merged")]
        assert [m.id for m in merges_of(s, "resident", ids["anna"])] == [merge_id]
        assert [m.id for m in merges_of(s, "resident", ids["texter"])] == [merge_id]
    with Session(engine) as s, s.begin():
        unmerge_residents(s, merge_id, actor="agent@council", now=now + timedelta(hours=1))
    assert rows(engine) == before


def test_a_merge_whose_tickets_retention_erased_cannot_be_undone(engine: Engine) -> None:
    from tickets.privacy import erase_expired

    ids = seed(engine)
    with Session(engine) as s, s.begin():
        merge_id = merge_tickets(s, ids["second"], ids["first"], actor="agent", reason="dup", now=T0).id
        target = s.get(Ticket, ids["first"])
        assert target is not None
        target.status, target.closed_at = "closed", T0
    with Session(engine) as s, s.begin():
        assert erase_expired(s, now=T0 + timedelta(days=400), retention=timedelta(days=365)).tickets == 2
    with Session(engine) as s, s.begin(), pytest.raises(MergeError, match="retention erased"):
        unmerge_tickets(s, merge_id, actor="agent", now=T0 + timedelta(days=401))
