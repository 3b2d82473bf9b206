"""The ops dashboard and the monthly report page through the real app over HTTP: who may see
them, an agent's correction moving the accuracy and the confusion matrix, ratings counted for
every department that handled the ticket, ingest figures, and every figure as CSV."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from ingest.admin import ensure_topics
from ingest.bus import DeadLetterWriter, KafkaProducerClient, Record, read_topic
from ingest.health import KafkaIngestProbe, StageInput
from schemas.topics import TopicSpec
from tests.conftest import KafkaHandle
from tests.tickets import factory
from tests.web.console_support import (
    PASSWORD,
    ConsoleFactory,
    ConsoleServer,
    hidden,
)
from tickets import casework, tracking
from tickets.models import Ticket

AGENT = "agent@council.example.gov.uk"
SUPERVISOR = "supervisor@council.example.gov.uk"
OPS = "ops@council.example.gov.uk"


@contextmanager
def signed_in(server: ConsoleServer, email: str) -> Iterator[httpx.Client]:
    if email == OPS and server.accounts.get(OPS) is None:
        server.accounts.add_user(OPS, PASSWORD, "ops", ())
    with server.client() as client:
        assert server.sign_in(client, email).status_code == 303
        yield client


def two_tickets(server: ConsoleServer) -> tuple[str, str]:
    car = factory.email("ann@example.com", "Car dumped", "A burnt-out car has been left on the verge.",
                        message_id="<car-1@example.com>")
    damp = factory.email("bob@example.com", "Damp", "Black mould in the bedroom.",
                         message_id="<damp-1@example.com>")
    server.receive(factory.routed(car, "waste"))
    server.receive(factory.routed(damp, "housing"))
    with server.engine.connect() as conn:
        refs = dict(conn.execute(select(Ticket.subject, Ticket.reference)).all())
    return refs["Car dumped"], refs["Damp"]


def table(html: str, table_id: str) -> list[list[str]]:
    """A table's rows as text cells (header row first)."""
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
            for r in rows]


def test_only_ops_and_supervisors_open_the_dashboard(console_server: ConsoleFactory) -> None:
    server = console_server()
    with signed_in(server, AGENT) as agent:
        assert agent.get("/console/dashboard/routing").status_code == 403
        assert agent.get("/console/dashboard/routing/confusion.csv").status_code == 403
        assert agent.get("/console/report").status_code == 403
    for email in (OPS, SUPERVISOR):
        with signed_in(server, email) as client:
            page = client.get("/console/dashboard/routing")
            assert page.status_code == 200 and "<h1 class=\"govuk-heading-l\">Routing</h1>" in page.text
            assert "<script>" not in page.text  # the charts' data is the table: no inline script
    with server.client() as nobody:
        assert nobody.get("/console/dashboard/routing").status_code == 303  # to sign in


def test_a_correction_moves_the_accuracy_and_the_confusion_matrix(console_server: ConsoleFactory) -> None:
    server = console_server()
    car, _ = two_tickets(server)
    with signed_in(server, OPS) as ops:
        before = ops.get("/console/dashboard/routing").text
        assert 'id="accuracy">100.0%' in before
        assert table(before, "confusion-table") == [["Router chose", "Housing", "Waste and recycling"],
                                                    ["Housing", "1", "0"], ["Waste and recycling", "0", "1"]]
        with signed_in(server, AGENT) as agent:
            page = agent.get(f"/console/tickets/{car}")
            moved = agent.post(f"/console/tickets/{car}/move", data={
                "csrf_token": hidden(page.text)["csrf_token"], "department": "parking",
                "reason": "Abandoned vehicles are parking's"})
            assert moved.status_code == 303
        after = ops.get("/console/dashboard/routing").text
        assert 'id="accuracy">50.0%' in after
        matrix = table(after, "confusion-table")
        assert matrix[0] == ["Router chose", "Housing", "Parking"]
        assert matrix[1:] == [["Housing", "1", "0"], ["Waste and recycling", "0", "1"]]
        departments = {row[0]: row[1:] for row in table(after, "routing-departments-table")[1:]}
        assert departments["Waste and recycling"] == ["0.0%", "0", "1"]
        assert departments["Housing"][0] == "100.0%"
        as_csv = ops.get("/console/dashboard/routing/confusion.csv")
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert list(csv.reader(io.StringIO(as_csv.text))) == [
            ["Router chose", "Housing", "Parking"], ["Housing", "1", "0"], ["Waste and recycling", "0", "1"]]
        weekly = list(csv.reader(io.StringIO(ops.get("/console/dashboard/routing/routing-weekly.csv").text)))
        assert weekly == [["Week starting", "Accuracy (%)", "Right", "Tickets"],
                          ["2 Nov 2026", "0.5000", "1", "2"]]


def test_a_rating_counts_for_each_department_and_a_low_one_shows_its_comment(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    car, damp = two_tickets(server)
    with server.engine.connect() as conn:
        ids = dict(conn.execute(select(Ticket.reference, Ticket.id)).all())
    casework.move(server.engine, ids[car], actor=AGENT, to="parking", reason="vehicles are parking's")
    for ref in (car, damp):
        casework.change_status(server.engine, ids[ref], actor=AGENT, status="closed")
    tracking.give_feedback(server.engine, ids[car], rating=2, comment="Three weeks to tow it away.")
    tracking.give_feedback(server.engine, ids[damp], rating=5, comment=None)
    with signed_in(server, SUPERVISOR) as supervisor:
        page = supervisor.get("/console/dashboard/satisfaction").text
        rows = {r[0]: r[1:] for r in table(page, "satisfaction-table")[1:]}
        assert rows["Parking"][:3] == ["2.00", "1", "0"] and rows["Waste and recycling"][:2] == ["2.00", "1"]
        assert rows["Housing"][:2] == ["5.00", "1"] and rows["Housing"][-1] == "1"
        low = table(page, "low-ratings-table")[1:]
        assert [(r[1], r[2], r[3]) for r in low] == [(car, "2", "Three weeks to tow it away.")]
        assert set(low[0][4].split(", ")) == {"Parking", "Waste and recycling"}
        assert f'href="/console/tickets/{car}"' in page
        as_csv = supervisor.get("/console/dashboard/satisfaction/satisfaction.csv").text
        assert "Parking,2.0000,1,0,1,0,0,0" in as_csv
        ticket = supervisor.get(f"/console/tickets/{car}").text  # the low rating stands out on the ticket
        assert "The resident rated this 2 out of 5" in ticket and "Three weeks to tow it away." in ticket
        assert "govuk-warning-text" in ticket.split('id="feedback"')[0][-200:]
        assert "rated this 5 out of 5" in supervisor.get(f"/console/tickets/{damp}").text


def test_ingest_health_counts_messages_per_channel_per_hour_and_the_relay_backlog(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    now = datetime.now(UTC)
    server.receive(factory.routed(factory.sms("+447700900111", "Bin missed", sid="SM1", at=now), "waste"))
    lights = factory.email("c@example.com", "Lights", "Street light out", message_id="<l@x>", at=now)
    server.receive(factory.routed(lights, "highways"))
    with signed_in(server, OPS) as ops:
        page = ops.get("/console/dashboard/ingest").text
        hours = table(page, "messages-per-hour-table")
        assert hours[0] == ["Hour", "Email", "Text message"] and len(hours) == 25
        assert hours[-1][1:] == ["1", "1"] and hours[-1][0] == f"{now:%H}:00"
        assert table(page, "relay-backlog-table")[1][:2] == ["relay", "0"]
        assert "not connected to the stream" in page
        got = ops.get("/console/dashboard/ingest/messages-per-hour.csv")
        assert got.status_code == 200 and got.text.splitlines()[-1].endswith(",1,1")
        for section in ("routing", "deadlines", "satisfaction"):
            assert ops.get(f"/console/dashboard/{section}?days=7").status_code == 200
        report = ops.get("/console/report?month=2026-11")
        assert report.status_code == 200 and "Enquiries report: November 2026" in report.text
        assert table(report.text, "report-channels")[-1] == ["All enquiries", "0", "0"]


@pytest.mark.kafka
def test_dead_letters_show_their_record_and_ops_replay_one_audited(
        console_server: ConsoleFactory, kafka: KafkaHandle) -> None:
    origin, dlq = f"test.origin.{uuid.uuid4().hex[:8]}", f"test.dlq.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.bootstrap, [TopicSpec(origin, 2, "test"), TopicSpec(dlq, 1, "test")])
    producer = KafkaProducerClient(kafka.bootstrap)
    for n in range(3):
        producer.send(origin, f'{{"n": {n}}}'.encode(), b"k")
    DeadLetterWriter(producer, dlq).send(
        Record(origin, 1, 7, b"resident-key", b'{"not": "an inbound message"'), "bad_json",
        "Expecting ',' delimiter", "PoisonMessageError", "router")
    audited: list[dict[str, str]] = []
    probe = KafkaIngestProbe(kafka.bootstrap, {"route": StageInput("test-router-group", [origin])},
                             dlq_topic=dlq, producer=producer, audit=audited.append)
    server = console_server()
    server.app.state.ingest_probe = probe
    try:
        with signed_in(server, SUPERVISOR) as supervisor:
            page = supervisor.get("/console/dashboard/ingest").text
            assert table(page, "consumer-lag-table")[1:] == [["route", "3"]]
            assert table(page, "dead-letter-reasons-table")[1:] == [["bad_json", "1"]]
            assert "{&#34;not&#34;: &#34;an inbound message&#34;" in page and f"From {origin}/1/7" in page
            assert "Replay to" not in page  # a supervisor sees dead letters; only ops replay them
            assert supervisor.post("/console/dashboard/ingest/dead-letters/0/0/replay",
                                   data={"csrf_token": "x"}).status_code == 403
        with signed_in(server, OPS) as ops:
            ingest = ops.get("/console/dashboard/ingest")
            token = re.search(r'name="csrf_token" value="([^"]+)"', ingest.text.split('id="dead-letters"')[1])
            assert token is not None
            replayed = ops.post("/console/dashboard/ingest/dead-letters/0/0/replay",
                                data={"csrf_token": token.group(1)})
            assert replayed.status_code == 303
            assert "sent back to its topic" in ops.get(replayed.headers["location"]).text
            # the web process exports what the dashboard read: 3, and the replayed record makes 4
            assert 'frontdoor_stage_consumer_lag{stage="route"} 4.0' in ops.get("/metrics/").text
        [back] = [r for r in read_topic(kafka.bootstrap, origin, expect=4) if r.key == b"resident-key"]
        assert back.value == b'{"not": "an inbound message"'
        assert back.headers["x-replayed-by"] == OPS.encode() and "x-error-reason" not in back.headers
        assert audited and audited[0]["by"] == OPS and audited[0]["to"] == origin
    finally:
        producer.close()


def test_deadlines_count_the_running_clocks_breached(console_server: ConsoleFactory) -> None:
    server = console_server()
    foi = factory.email("ann@example.com", "FOI: bin contracts", "Under the Freedom of Information Act, "
                        "please send the waste contract.", message_id="<foi-1@example.com>")
    member = factory.email("cllr@example.com", "Member enquiry", "On behalf of a resident in my ward.",
                           message_id="<mem-1@example.com>", at=datetime.now(UTC))
    server.receive(factory.routed(foi, "waste", enquiry_type="foi"))  # 2 Nov: 20 working days are past
    server.receive(factory.routed(member, "housing", enquiry_type="member_enquiry"))
    with signed_in(server, OPS) as ops:
        rows = {r[0]: r[1:] for r in table(ops.get("/console/dashboard/deadlines").text, "due-now-table")[1:]}
    assert rows["FOI requests"] == ["0", "1"]  # running and breached
    assert "Member enquiries" not in rows  # running, due in weeks: neither due soon nor breached


def test_a_week_clearly_worse_than_the_month_before_raises_the_drift_warning(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    now = datetime.now(UTC)

    def days_ago(n: int) -> timedelta:  # 24 tickets in the last week, 40 in the four weeks before
        return timedelta(days=n % 6 if n < 24 else 8 + n % 20)

    messages = [factory.routed(factory.email(f"r{n}@example.com", f"Enquiry {n}", "Something to fix.",
                                             message_id=f"<d{n}@example.com>", at=now - days_ago(n)), "waste")
                for n in range(64)]
    with server.engine.begin() as conn:
        server.writer.write_batch(conn, [factory.record(m) for m in messages], lambda record, exc: None)
    with signed_in(server, OPS) as ops:
        assert 'id="drift-warning"' not in ops.get("/console/dashboard/routing").text
        with server.engine.connect() as conn:
            recent = conn.execute(select(Ticket.id).where(Ticket.subject.in_(
                [f"Enquiry {n}" for n in range(12)]))).scalars().all()
        for ticket_id in recent:  # half of the last week's were for another department
            casework.move(server.engine, ticket_id, actor=AGENT, to="highways", reason="street lights")
        page = ops.get("/console/dashboard/routing").text
    assert 'id="drift-warning"' in page and "50.0% in the last 7 days against 100.0%" in page
