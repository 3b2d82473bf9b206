"""The committee report's and the dashboard's figures against counts computed here, directly
from the tables, on a database the real ticket stage, casework and feedback wrote (two months
of enquiries on several channels, corrections, answered and late clocks, ratings)."""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from schemas.inbound import Channel, InboundMessage, Party, Source
from tests.conftest import frontdoor
from tests.tickets import factory
from tickets import casework, reporting, tracking
from tickets.clocks import stop_ticket_clocks
from tickets.db import make_engine
from tickets.models import Ticket
from tickets.service import TicketWriter

DEPARTMENTS = ("waste", "highways", "housing", "parking")
TYPES = ("general", "general", "foi", "member_enquiry", "complaint", "service_request")
START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def _message(n: int, at: datetime, rng: random.Random) -> InboundMessage:
    channel = rng.choice(("email", "sms", "webform"))
    body = f"Enquiry number {n}: something needs doing on street {n}."
    if channel == "email":
        return factory.email(f"r{n}@example.com", f"Enquiry {n}", body, message_id=f"<e{n}@example.com>",
                             at=at)
    if channel == "sms":
        return factory.sms(f"+4477009{n:05d}", body, sid=f"SM{n:032d}", at=at)
    return InboundMessage(channel=Channel.WEBFORM, received_at=at, sender=Party(email=f"f{n}@example.com"),
                          subject=f"Enquiry {n}", body_text=body, source=Source(form_id="contact"),
                          dedupe_key=f"webform:k{n}")


def seed(engine: Engine) -> None:
    """About 80 tickets over October and November 2026."""
    rng = random.Random(14)
    writer = TicketWriter()
    for n in range(80):
        at = START + timedelta(hours=rng.randrange(0, 61 * 24))
        department = rng.choice(DEPARTMENTS)
        routed = factory.routed(_message(n, at, rng), department, triage=rng.random() < 0.2,
                                enquiry_type=rng.choice(TYPES), confidence=round(rng.uniform(0.3, 0.99), 2))
        with engine.begin() as conn:
            writer.write_batch(conn, [factory.record(routed)], lambda record, exc: None)
    with engine.connect() as conn:
        tickets = conn.execute(select(Ticket.id, Ticket.created_at, Ticket.primary_department)
                               .order_by(Ticket.id)).all()
    for ticket_id, stored, primary in tickets:
        created, department = when(stored), str(primary)
        if rng.random() < 0.25:
            to = rng.choice([d for d in DEPARTMENTS if d != department])
            casework.move(engine, ticket_id, actor="agent@council", to=to, reason="belongs there")
        if rng.random() < 0.6:
            answered = created + timedelta(days=rng.choice((2, 10, 25, 40)))
            with engine.begin() as conn:
                stop_ticket_clocks(conn, ticket_id, actor="officer@council", now=answered)
            casework.change_status(engine, ticket_id, actor="officer@council", status="closed")
            if rng.random() < 0.7:
                tracking.give_feedback(engine, ticket_id, rating=rng.randint(1, 5),
                                       comment=rng.choice((None, "ok", "slow")),
                                       now=created + timedelta(days=3))


def when(value: object) -> datetime:
    """A stored time as an aware datetime (SQLite's raw rows give strings, naive UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def direct(engine: Engine, month: str) -> dict[str, Any]:
    """The month's figures as a person would count them, straight from the rows."""
    first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    after = (first + timedelta(days=32)).replace(day=1)

    def inside(value: object) -> bool:
        return first <= when(value) < after

    with engine.connect() as conn:
        tickets = [r for r in conn.execute(text(
            "SELECT id, channel, primary_department, status, created_at FROM tickets"))
            if inside(r.created_at) and r.status != "merged"]
        clocks = conn.execute(text(
            "SELECT kind, due_on, state, stopped_at, started_on FROM statutory_clocks")).all()
        routed = conn.execute(text("SELECT t.created_at, t.primary_department, e.detail FROM tickets t "
                                   "JOIN ticket_events e ON e.ticket_id = t.id AND e.kind = 'routed'")).all()
        ratings = conn.execute(text("SELECT d.department, d.rating, f.at FROM ticket_feedback_departments d "
                                    "JOIN ticket_feedback f ON f.ticket_id = d.ticket_id")).all()
    on_time: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, due_on, state, stopped_at, _ in clocks:
        if state == "stopped" and stopped_at is not None and inside(stopped_at) and kind != "service_target":
            due = due_on if isinstance(due_on, date) else date.fromisoformat(str(due_on))
            on_time[kind][1] += 1
            on_time[kind][0] += int(when(stopped_at).date() <= due)
    right = total = 0
    for created_at, now, detail in routed:
        if inside(created_at):
            detail = detail if isinstance(detail, dict) else json.loads(detail)
            total += 1
            right += int(detail["department"] == now)
    stars: dict[str, list[int]] = defaultdict(list)
    for department, rating, at in ratings:
        if inside(at):
            stars[department].append(rating)
    started = Counter(kind for kind, _, _, _, started_on in clocks
                      if kind.startswith("complaint") and first.date() <= (
                          started_on if isinstance(started_on, date) else date.fromisoformat(str(started_on)))
                      < after.date())
    return {
        "enquiries": len(tickets),
        "by_channel": dict(Counter(r.channel for r in tickets)),
        "by_department": dict(Counter(r.primary_department for r in tickets)),
        "on_time": {k: tuple(v) for k, v in on_time.items()},
        "routing": (right, total),
        "stars": {d: (len(v), sum(v) / len(v)) for d, v in stars.items()},
        "complaints": dict(started),
    }


def test_the_month_figures_equal_counts_taken_from_the_tables(upgraded_url: str) -> None:
    engine = make_engine(upgraded_url)
    try:
        seed(engine)
        for month in ("2026-10", "2026-11"):
            figures = reporting.month_figures(engine, month)
            expected = direct(engine, month)
            assert figures.enquiries == expected["enquiries"] > 10
            assert figures.by_channel == expected["by_channel"]
            assert figures.by_department == expected["by_department"]
            # every kind answered in the month, and only those
            answered = {k: (s.part, s.whole) for k, s in figures.on_time.items() if s.whole}
            assert answered == expected["on_time"]
            assert (figures.routing.part, figures.routing.whole) == expected["routing"]
            assert figures.routing.part < figures.routing.whole  # some were corrected
            assert {d: (s.count, round(s.average or 0, 6)) for d, s in figures.satisfaction.items()} == \
                {d: (n, round(avg, 6)) for d, (n, avg) in expected["stars"].items()}
            assert {k: v for k, v in figures.complaints_by_stage.items() if v} == expected["complaints"]
        report = reporting.month_report(engine, "2026-11")
        assert report.previous == reporting.month_figures(engine, "2026-10")
    finally:
        engine.dispose()


def test_frontdoor_report_prints_the_month_as_json_and_as_a_printable_page(upgraded_url: str,
                                                                          tmp_path: Path) -> None:
    engine = make_engine(upgraded_url)
    try:
        seed(engine)
        expected = reporting.month_figures(engine, "2026-11")
    finally:
        engine.dispose()
    env = {**os.environ, "FRONTDOOR_DATABASE_URL": upgraded_url, "FRONTDOOR_VAR_DIR": str(tmp_path)}
    as_json = frontdoor("report", "--month", "2026-11", "--json", env=env)
    body = json.loads(as_json.stdout)
    assert body["month"]["enquiries"] == expected.enquiries and body["previous"]["month"] == "2026-10"
    assert body["month"]["routing"]["part"] == expected.routing.part
    assert body["month"]["on_time"]["foi"]["whole"] == expected.on_time["foi"].whole
    frontdoor("report", "--month", "2026-11", "--out", str(tmp_path / "report.html"), env=env)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Enquiries report: November 2026" in page
    assert "October 2026" in page and "<script" not in page
    assert f"<strong>{expected.enquiries}</strong>" in page
    wrong = frontdoor("report", "--month", "2026-13", env=env, check=False)
    assert wrong.returncode == 2 and "YYYY-MM" in wrong.stderr and "Traceback" not in wrong.stderr


def test_drift_warns_only_when_a_week_is_clearly_below_the_month_before() -> None:
    month = reporting.Share(270, 300)  # 90% over the 4 weeks before
    assert reporting._drift(reporting.Share(21, 30), month).warning  # 70% on 30: clearly worse
    assert not reporting._drift(reporting.Share(26, 30), month).warning  # 86.7%: within chance
    assert not reporting._drift(reporting.Share(10, 15), month).warning  # 66.7%, but only 15 tickets
    assert not reporting._drift(reporting.Share(30, 30), month).warning  # better is never a warning
    assert not reporting._drift(reporting.Share(0, 0), reporting.Share(0, 0)).warning
    z = reporting.z_score(reporting.Share(21, 30), month)
    assert z is not None and z < -2
