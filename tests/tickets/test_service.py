"""The batch writer on real databases (SQLite and PostgreSQL), without Kafka: what an agent
and a resident would see after messages arrive, and that nothing arrives twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text

from ingest.bus import Record
from ingest.errors import PoisonMessageError
from schemas.reference import new_reference
from tests.tickets.factory import email, form, later, record, routed, sms
from tickets.db import make_engine
from tickets.models import Ticket, TicketDepartment, TicketMessage, TicketReference, table_of
from tickets.service import BatchOutcome, TicketWriter, check_tracking_secret, issue_tracking_secret

REF_A, REF_B, REF_C, REF_D = (new_reference() for _ in range(4))

TABLES = ("tickets", "ticket_messages", "ticket_departments", "residents", "resident_identities",
          "ticket_participants", "ticket_events", "ticket_references", "ticket_links", "statutory_clocks",
          "suggested_merges")


@pytest.fixture
def engine(upgraded_url: str) -> Iterator[Engine]:
    engine = make_engine(upgraded_url, immediate=True)
    yield engine
    engine.dispose()


def write(engine: Engine, records: list[Record], writer: TicketWriter | None = None,
          dead: list[tuple[Record, PoisonMessageError]] | None = None) -> BatchOutcome:
    writer = writer or TicketWriter()
    with engine.begin() as conn:
        sink = dead if dead is not None else []
        return writer.write_batch(conn, records, lambda r, exc: sink.append((r, exc)))


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}  # noqa: S608


def test_one_email_to_two_department_inboxes_is_one_ticket_in_two_departments(engine: Engine) -> None:
    message = email("ann@example.org", "Fly-tipping blocking the pavement", "Bags dumped on the path",
                    message_id="<m1@example.org>",
                    mailboxes=["waste@council.gov.uk", "highways@council.gov.uk"])
    both = ["waste", "highways"]
    first = write(engine, [record(routed(message, "waste", departments=both), topic="frontdoor.dept.waste")])
    second = write(engine, [record(routed(message, "waste", departments=both),
                                   topic="frontdoor.dept.highways")])
    assert (first.opened, second.opened, second.duplicates) == (1, 0, 1)
    with engine.connect() as conn:
        assert conn.execute(select(table_of(Ticket))).all().__len__() == 1
        departments = conn.execute(select(table_of(TicketDepartment).c.department,
                                          table_of(TicketDepartment).c.role)).all()
        assert sorted(departments) == [("highways", "involved"), ("waste", "primary")]
        assert len(conn.execute(select(table_of(TicketMessage))).all()) == 1


def test_a_batch_applied_again_changes_nothing(engine: Engine) -> None:
    batch = [
        record(routed(email("bob@example.org", "Street light out", "Dark since Tuesday", message_id="<b1@x>"),
                      "highways")),
        record(routed(email("bob@example.org", "Re: Street light out", "Still dark", message_id="<b2@x>",
                            in_reply_to="<b1@x>", at=later(60)), "highways")),
        record(routed(sms("07700 900123", "Bin missed again", sid="SM1"))),
        record(routed(sms("+447700900123", "It's the green one", sid="SM2", at=later(3)))),
        record(routed(form("cat@example.org", "07700 900456", "Noise every night", key="k1",
                           reference=REF_D), "environmental_health")),
    ]
    write(engine, batch)
    before = counts(engine)
    again = write(engine, batch)
    assert again.applied == 0 and again.duplicates == len(batch)
    assert counts(engine) == before
    assert before["tickets"] == 3  # the reply and the second SMS joined their tickets


def test_threading_and_identity_are_recorded(engine: Engine) -> None:
    write(engine, [record(routed(sms("07700 900123", "Pothole outside no. 4", sid="SM10",
                                     reference=REF_A), "highways"))])
    write(engine, [record(routed(sms("07700900123", "It is getting bigger", sid="SM11", at=later(30),
                                     reference=REF_B), "highways"))])
    with engine.connect() as conn:
        ticket = conn.execute(select(table_of(Ticket))).one()
        assert ticket.reference == REF_A  # the first message's intake reference
        refs = dict(conn.execute(select(table_of(TicketReference).c.reference,
                                        table_of(TicketReference).c.ticket_id)).all())
        # the second message's own reference is an alias of the ticket it joined
        assert refs == {REF_A: ticket.id, REF_B: ticket.id}
        rules = conn.execute(select(table_of(TicketMessage).c.thread_rule)
                             .order_by(table_of(TicketMessage).c.id)).scalars().all()
        assert rules == ["none", "sms_window"]
        phones = conn.execute(text("SELECT value FROM resident_identities")).scalars().all()
        assert phones == ["+447700900123"]


def test_an_email_gets_a_reference_from_the_allocator(engine: Engine) -> None:
    write(engine, [record(routed(email("dan@example.org", "Council tax band", "Why band D?",
                                       message_id="<d1@x>"), "council_tax"))])
    with engine.connect() as conn:
        ticket = conn.execute(select(table_of(Ticket))).one()
        issued = conn.execute(select(table_of(TicketReference)).where(
            table_of(TicketReference).c.reference == ticket.reference)).one()
    assert ticket.reference.startswith("FD-") and issued.ticket_id == ticket.id and issued.kind == "primary"


def test_a_record_that_cannot_be_read_is_dead_lettered_and_the_rest_applied(engine: Engine) -> None:
    dead: list[tuple[Record, PoisonMessageError]] = []
    good = record(routed(sms("07700 900777", "Graffiti on the bridge", sid="SM20")), offset=41)
    outcome = write(engine, [record(b"{not json", offset=40), good,
                             record(b'{"schema_version": 99}', offset=42)], dead=dead)
    assert outcome.applied == 1 and outcome.dead == 2
    reasons = [(r.offset, exc.reason) for r, exc in dead]
    assert reasons == [(40, "malformed_json"), (42, "unknown_schema_version")]
    with engine.connect() as conn:
        stored = TicketWriter().stored_offsets(conn, [("frontdoor.dept.waste", 0)])
    assert stored == {("frontdoor.dept.waste", 0): 42}  # the partition flows on past them


def test_stored_offsets_never_go_backwards(engine: Engine) -> None:
    writer = TicketWriter()
    with engine.begin() as conn:
        writer.store_offsets(conn, [record(b"x", offset=100)])
        writer.store_offsets(conn, [record(b"x", offset=90)])  # a zombie from before a rebalance
        stored = writer.stored_offsets(conn, [("frontdoor.dept.waste", 0)])
    assert stored == {("frontdoor.dept.waste", 0): 100}


def test_the_tracking_secret_is_stored_hashed(engine: Engine) -> None:
    write(engine, [record(routed(sms("07700 900888", "Tree down", sid="SM30"), "parks"))])
    with engine.begin() as conn:
        ticket_id = conn.execute(select(table_of(Ticket).c.id)).scalar_one()
        secret = issue_tracking_secret(conn, ticket_id)
        stored = conn.execute(select(table_of(Ticket).c.tracking_secret_hash)).scalar_one()
        assert secret not in stored
        assert check_tracking_secret(conn, ticket_id, secret)
        assert not check_tracking_secret(conn, ticket_id, secret + "x")


def test_a_form_with_email_and_number_links_them_and_a_later_sms_joins(engine: Engine) -> None:
    write(engine, [record(routed(form("eve@example.org", "07700 900321", "Bin not emptied", key="f1",
                                      reference=REF_C)))])
    write(engine, [record(routed(sms("07700 900321", "Any news on my bin?", sid="SM40", at=later(120))))])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM residents")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM tickets")).scalar_one() == 1
        kinds = sorted(conn.execute(text("SELECT kind FROM resident_identities")).scalars())
    assert kinds == ["email", "phone"]


def test_two_writers_at_once_for_one_new_resident_make_one_resident(upgraded_url: str) -> None:
    """SMS and a web form from the same new resident, applied by two consumers at the same moment."""
    engines = [make_engine(upgraded_url, immediate=True) for _ in range(2)]
    try:
        for round_ in range(5):
            phone = f"07700 9005{round_:02d}"
            batches = [[record(routed(sms(phone, "Overflowing bin", sid=f"SMr{round_}")))],
                       [record(routed(form(f"r{round_}@example.org", phone, "Bin overflowing",
                                           key=f"r{round_}", reference=None)))]]
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def run(engine: Engine, batch: list[Record], barrier: threading.Barrier = barrier,
                    errors: list[BaseException] = errors) -> None:
                barrier.wait()
                for _attempt in range(20):  # what the consumer loop does: redo a batch that lost a race
                    try:
                        write(engine, batch)
                        return
                    except Exception as exc:  # noqa: BLE001
                        errors.append(exc)
                raise AssertionError(f"never applied: {errors[-1]}")

            threads = [threading.Thread(target=run, args=(e, b))
                       for e, b in zip(engines, batches, strict=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            with engines[0].connect() as conn:
                residents = conn.execute(text(
                    "SELECT count(DISTINCT resident_id) FROM resident_identities WHERE value = :v"),
                    {"v": "+4477009005" + f"{round_:02d}"}).scalar_one()
                assert residents == 1
                messages = conn.execute(text("SELECT count(*) FROM ticket_messages "
                                             "WHERE dedupe_key IN (:a, :b)"),
                                        {"a": f"sms:SMr{round_}", "b": f"webform:r{round_}"}).scalar_one()
                assert messages == 2
        with engines[0].connect() as conn:
            empty = conn.execute(text(
                "SELECT count(*) FROM tickets t WHERE NOT EXISTS "
                "(SELECT 1 FROM ticket_messages m WHERE m.ticket_id = t.id)")).scalar_one()
            assert empty == 0
    finally:
        for e in engines:
            e.dispose()


def test_sms_after_the_window_or_a_closed_ticket_opens_a_new_linked_ticket(engine: Engine) -> None:
    write(engine, [record(routed(sms("07700 900999", "Dog fouling on the green", sid="SM50"), "parks"))])
    write(engine, [record(routed(sms("07700 900999", "Another thing: broken swing", sid="SM51",
                                     at=later(0) + timedelta(days=10)), "parks"))])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tickets")).scalar_one() == 2
        link = conn.execute(text("SELECT kind FROM ticket_links")).scalar_one()
    assert link == "follow_up"


def test_the_stage_writer_queues_one_acknowledgement_per_new_ticket_with_its_secret(engine: Engine) -> None:
    """frontdoor.wiring.ticket_writer: the acknowledgement is queued in the batch's transaction,
    and the secret in its tracking link is the one whose hash the ticket keeps."""
    from urllib.parse import parse_qs, urlparse

    from frontdoor.settings import Settings
    from frontdoor.wiring import ticket_writer
    from tickets import outbox

    writer = ticket_writer(Settings())
    first = email("ivy@example.org", "Hedge blocking the path", "Overgrown hedge", message_id="<i1@x>")
    reply = email("ivy@example.org", "Re: Hedge blocking the path", "Still there", message_id="<i2@x>",
                  in_reply_to="<i1@x>", at=later(30))
    batch = [record(routed(first, "highways")), record(routed(reply, "highways"))]
    write(engine, batch, writer)
    write(engine, batch, writer)  # a redelivery queues nothing more
    with engine.begin() as conn:
        ticket = conn.execute(select(table_of(Ticket))).one()
        rows = outbox.for_ticket(conn, ticket.id)
        assert len(rows) == 1 and rows[0].recipient == "ivy@example.org"
        link = urlparse(rows[0].context["tracking_url"])
        query = parse_qs(link.query)
        assert query["ref"] == [ticket.reference]
        assert check_tracking_secret(conn, ticket.id, query["secret"][0])
