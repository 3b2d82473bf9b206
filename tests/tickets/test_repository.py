"""What the console and the operator commands find, on both databases."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, text

from schemas.reference import new_reference
from schemas.routed import StatutoryClock
from tests.conftest import frontdoor
from tests.tickets.factory import email, form, later, record, routed, sms
from tickets import queues as reads
from tickets.db import make_engine
from tickets.repository import QueueFilter, TicketRepository
from tickets.service import TicketWriter

FORM_REF, SMS_REF = new_reference(), new_reference()


@pytest.fixture
def engine(upgraded_url: str) -> Iterator[Engine]:
    engine = make_engine(upgraded_url, immediate=True)
    foi = routed(email("fay@example.org", "FOI request: bin contracts", "Please send the waste contract",
                       message_id="<foi1@x>"), "information_governance", enquiry_type="foi")
    foi = foi.model_copy(update={"routing": foi.routing.model_copy(update={"statutory_clock": StatutoryClock(
        kind="foi", started=date(2026, 11, 2), due=date(2026, 11, 30))})})
    records = [
        record(routed(form("gil@example.org", "07700 900100", "The recycling collection was missed twice",
                           key="g1", reference=FORM_REF, name="Gillian Hart", postcode="ls1 4dy"))),
        record(routed(sms("07700900100", "Still no collection, what is happening", sid="SMg2", at=later(90),
                          reference=SMS_REF))),
        record(routed(email("hal@example.org", "Broken street light", "The lamp post on Elm Road is dark",
                            message_id="<h1@x>"), "highways", departments=["highways", "waste"])),
        record(foi),
    ]
    with engine.begin() as conn:
        TicketWriter().write_batch(conn, records, lambda *_: None)
    yield engine
    engine.dispose()


def test_any_reference_opens_the_ticket_with_its_whole_story(engine: Engine) -> None:
    repository = TicketRepository(engine)
    by_own, by_alias = repository.ticket(FORM_REF), repository.ticket(SMS_REF.lower().replace("-", " "))
    assert by_own is not None and by_alias is not None
    assert by_own == by_alias
    assert by_own.references == (FORM_REF, SMS_REF)
    assert [m.channel for m in by_own.messages] == ["webform", "sms"]
    assert [m.thread_rule for m in by_own.messages] == ["none", "sms_window"]
    assert {h["kind"] for h in by_own.history} >= {"created", "routed", "threaded"}
    assert repository.ticket(new_reference()) is None
    assert repository.ticket("not a reference") is None


def test_find_residents_by_email_phone_postcode_name_and_words(engine: Engine) -> None:
    repository = TicketRepository(engine)
    by_phone = repository.find_residents(phone="+44 7700 900100")
    assert [r.name for r in by_phone] == ["Gillian Hart"]
    assert [t.reference for t in by_phone[0].tickets] == [FORM_REF]
    assert repository.find_residents(email="GIL@example.org") == by_phone
    assert repository.find_residents(postcode="LS1 4DY") == by_phone
    assert repository.find_residents(name="gill") == by_phone
    assert repository.find_residents(words="collections missed") == by_phone  # stemmed, every word
    assert repository.find_residents(words="lamp") == repository.find_residents(email="hal@example.org")
    assert repository.find_residents(words="nothing-like-this") == []


def test_search_is_newest_first_and_never_reads_user_syntax(engine: Engine) -> None:
    repository = TicketRepository(engine)
    hits = repository.search("collection")
    assert [h.reference for h in hits] == [FORM_REF, FORM_REF]
    newest, older = hits[0].received_at, hits[1].received_at
    assert newest is not None and older is not None and newest > older
    # FTS syntax typed by a person is only words: no OR, no unbalanced quote errors
    assert repository.search('collection" OR "lamp') == repository.search("collection lamp")


def test_the_console_search_box_finds_tickets_by_words_in_their_messages(engine: Engine) -> None:
    by_words = reads.search(engine, "collections missed", departments=None)  # stemmed, every word
    assert [row.reference for row in by_words] == [FORM_REF]
    assert [row.reference for row in reads.search(engine, "lamp", departments=["waste"])] != []
    assert reads.search(engine, "lamp", departments=["parking"]) == []  # an officer's scope holds
    assert reads.search(engine, 'lamp" OR "collection', departments=None) == reads.search(
        engine, "lamp collection", departments=None)  # typed syntax is only words


def test_queues_filter_sort_and_page_in_the_database(engine: Engine) -> None:
    repository = TicketRepository(engine)
    highways = repository.queue(QueueFilter(department="highways"))
    waste = repository.queue(QueueFilter(department="waste"))
    assert [t.subject for t in highways.items] == ["Broken street light"]
    assert len(waste.items) == 2  # its own ticket and the one it is involved in
    due_first = repository.queue(QueueFilter(sort="due"))
    assert due_first.items[0].due_on == date(2026, 11, 30) and due_first.total == 3
    paged = [repository.queue(QueueFilter(sort="created", per_page=2, page=p)) for p in (1, 2)]
    assert paged[0].pages == 2 and len(paged[0].items) == 2 and len(paged[1].items) == 1
    assert repository.queue(QueueFilter(due_before=date(2026, 11, 30) - timedelta(days=1))).total == 0


def test_sqlite_queries_use_their_indexes(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans checked on SQLite")
    with engine.connect() as conn:
        plans = {
            "name": "SELECT id FROM residents WHERE name_key >= 'gil' AND name_key < 'gil\uffff'",
            "phone": "SELECT resident_id FROM resident_identities "
                     "WHERE kind = 'phone' AND value = '+447700900100'",
            "reference": "SELECT ticket_id FROM ticket_references WHERE reference = 'FD-0000-0000'",
            "history": "SELECT id FROM tickets WHERE resident_id = 1 ORDER BY created_at DESC",
        }
        for what, query in plans.items():
            plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
            assert "USING" in plan and "SCAN" not in plan.replace("USING INDEX", ""), (what, plan)


def test_cli_show_and_find(engine: Engine, upgraded_url: str) -> None:
    env = {**os.environ, "FRONTDOOR_DATABASE_URL": upgraded_url}
    shown = json.loads(frontdoor("tickets", "show", SMS_REF, "--json", env=env).stdout)
    assert shown["ticket"]["reference"] == FORM_REF
    assert [m["channel"] for m in shown["messages"]] == ["webform", "sms"]
    assert {"participants", "departments", "clocks", "history"} <= set(shown)
    found = json.loads(frontdoor("tickets", "find", "--phone", "07700 900100", "--json", env=env).stdout)
    assert [t["reference"] for t in found[0]["tickets"]] == [FORM_REF]
    missing = frontdoor("tickets", "show", new_reference(), env=env, check=False)
    assert missing.returncode == 1 and "no ticket" in missing.stderr
