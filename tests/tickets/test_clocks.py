"""Statutory clocks in England and Wales working days, with the dates worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tickets.clocks import (
    Clock,
    ClockError,
    ClockFlag,
    ClockKind,
    ClockPeriods,
    ClockState,
    add_working_days,
    clocks_for,
    earliest_due,
    escalate_complaint,
    extend,
    flag,
    pause,
    resume,
    start_clock,
    stop,
    sweep,
    today_in_england,
)

PERIODS = ClockPeriods(service_targets={"waste": 5})


def test_foi_is_twenty_working_days_skipping_easter() -> None:
    # Received Wed 25 March 2026: Good Friday (3 Apr) and Easter Monday (6 Apr) do not count.
    clock = start_clock("foi", date(2026, 3, 25), PERIODS)
    assert clock.due_on == date(2026, 4, 24)


def test_foi_over_christmas_skips_the_substitute_boxing_day() -> None:
    # Boxing Day 2026 is a Saturday: Monday 28 December is the bank holiday.
    assert add_working_days(date(2026, 12, 23), 2) == date(2026, 12, 29)


def test_sar_is_one_calendar_month_to_the_next_working_day() -> None:
    # 31 January has no 31 February: the month's last day, Sat 28 Feb 2026, then Monday.
    assert start_clock("sar", date(2026, 1, 31), PERIODS).due_on == date(2026, 3, 2)
    assert start_clock("sar", date(2026, 6, 10), PERIODS).due_on == date(2026, 7, 10)


def test_sar_extends_by_two_months_once() -> None:
    clock = extend(start_clock("sar", date(2026, 1, 31), PERIODS), PERIODS)
    assert clock.extended and clock.due_on == date(2026, 4, 30)
    with pytest.raises(ClockError, match="already extended"):
        extend(clock, PERIODS)
    with pytest.raises(ClockError, match="only a SAR"):
        extend(start_clock("foi", date(2026, 1, 5), PERIODS), PERIODS)


def test_periods_come_from_configuration() -> None:
    assert start_clock("foi", date(2026, 3, 25), ClockPeriods(foi_working_days=1)).due_on == date(2026, 3, 26)
    assert start_clock("complaint_stage1", date(2026, 3, 2), PERIODS).due_on == date(2026, 3, 16)
    assert start_clock("member_enquiry", date(2026, 3, 2), ClockPeriods(member_enquiry_working_days=5)) \
        .due_on == date(2026, 3, 9)


def test_foi_pauses_for_clarification_and_restarts_on_the_reply() -> None:
    clock = start_clock("foi", date(2026, 3, 2), PERIODS)
    paused = pause(clock, date(2026, 3, 4), "clarification")
    assert paused.state is ClockState.PAUSED
    assert flag(paused, date(2026, 5, 1), PERIODS) is ClockFlag.OK  # waiting on the resident
    resumed = resume(paused, date(2026, 3, 16), PERIODS)
    assert resumed.state is ClockState.RUNNING and resumed.paused_days == 12
    assert resumed.due_on == date(2026, 4, 15)  # 20 working days after 16 March, Easter skipped


def test_sar_pauses_for_the_identity_check_and_extends_from_the_restart() -> None:
    clock = pause(start_clock("sar", date(2026, 1, 5), PERIODS), date(2026, 1, 6), "identity_check")
    resumed = resume(clock, date(2026, 1, 20), PERIODS)
    assert resumed.due_on == date(2026, 2, 20)
    assert extend(resumed, PERIODS).due_on == date(2026, 4, 20)


@pytest.mark.parametrize(("kind", "awaiting", "message"), [
    ("complaint_stage1", "clarification", "does not pause"),
    ("member_enquiry", "clarification", "does not pause"),
    ("foi", "identity_check", "only for clarification"),
    ("sar", "clarification", "only for identity_check"),
])
def test_clocks_pause_only_where_the_rule_allows(kind: str, awaiting: str, message: str) -> None:
    with pytest.raises(ClockError, match=message):
        pause(start_clock(kind, date(2026, 3, 2), PERIODS), date(2026, 3, 3), awaiting)


def test_due_soon_then_breached_then_answered_late() -> None:
    clock = start_clock("foi", date(2026, 3, 25), PERIODS)  # due Fri 24 April
    assert flag(clock, date(2026, 4, 17), PERIODS) is ClockFlag.OK  # five working days left
    assert flag(clock, date(2026, 4, 21), PERIODS) is ClockFlag.DUE_SOON  # three left
    assert flag(clock, date(2026, 4, 24), PERIODS) is ClockFlag.DUE_SOON  # the day itself
    assert flag(clock, date(2026, 4, 25), PERIODS) is ClockFlag.BREACHED
    assert stop(clock, date(2026, 4, 24)).flag is ClockFlag.OK
    assert stop(clock, date(2026, 4, 27)).flag is ClockFlag.BREACHED


def test_sweep_reports_each_change_once() -> None:
    clock = start_clock("foi", date(2026, 3, 25), PERIODS)
    assert sweep([clock], date(2026, 4, 1), PERIODS) == []
    [soon] = sweep([clock], date(2026, 4, 21), PERIODS)
    assert (soon.before, soon.after, soon.event_kind) == (ClockFlag.OK, ClockFlag.DUE_SOON, "clock_due_soon")
    assert soon.detail()["due_on"] == "2026-04-24"
    assert sweep([soon.clock], date(2026, 4, 22), PERIODS) == []
    [late] = sweep([soon.clock], date(2026, 4, 27), PERIODS)
    assert late.event_kind == "clock_breached"


def test_a_new_ticket_starts_the_clocks_its_routing_calls_for() -> None:
    kinds = lambda clocks: [(c.kind, c.department) for c in clocks]  # noqa: E731
    received = date(2026, 3, 2)
    assert kinds(clocks_for(statutory_kind="foi", enquiry_type="foi", received_on=received,
                            department="information_governance", periods=PERIODS)) == [(ClockKind.FOI, None)]
    assert kinds(clocks_for(statutory_kind=None, enquiry_type="complaint", received_on=received,
                            department="waste", periods=PERIODS)) == [(ClockKind.COMPLAINT_STAGE1, None),
                                                                      (ClockKind.SERVICE_TARGET, "waste")]
    assert kinds(clocks_for(statutory_kind=None, enquiry_type="member_enquiry", received_on=received,
                            department="parks", periods=PERIODS)) == [(ClockKind.MEMBER_ENQUIRY, None)]
    assert clocks_for(statutory_kind=None, enquiry_type="general", received_on=received, department="parks",
                      periods=PERIODS) == []


def test_a_complaint_escalates_to_stage_two() -> None:
    stage1 = start_clock("complaint_stage1", date(2026, 3, 2), PERIODS)
    done, stage2 = escalate_complaint(stage1, date(2026, 3, 10), PERIODS)
    assert done.state is ClockState.STOPPED and done.flag is ClockFlag.OK
    assert (stage2.kind, stage2.due_on) == (ClockKind.COMPLAINT_STAGE2, date(2026, 4, 9))
    assert earliest_due([done, stage2]) == date(2026, 4, 9)


def test_the_day_is_englands_not_utcs() -> None:
    # 23:30 UTC on 30 June is already 1 July in London (BST).
    assert today_in_england(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == date(2026, 7, 1)


def test_pause_resume_and_sweep_in_the_database(upgraded_url: str) -> None:
    from sqlalchemy import insert, select

    from tickets.clocks import clock_values, pause_ticket_clocks, resume_ticket_clocks, sweep_clocks
    from tickets.db import make_engine
    from tickets.models import StatutoryClockRow, Ticket, TicketEvent

    engine = make_engine(upgraded_url)
    try:
        received = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        foi = start_clock("foi", date(2026, 3, 2), PERIODS)
        target = start_clock("service_target", date(2026, 3, 2), PERIODS, department="waste")
        with engine.begin() as conn:
            ticket_id = conn.execute(insert(Ticket).returning(Ticket.id), {
                "reference": "FD-3333-3333", "status": "open", "channel": "email", "due_on": target.due_on,
                "created_at": received, "updated_at": received}).scalar_one()
            conn.execute(insert(StatutoryClockRow),
                         [{"ticket_id": ticket_id, **clock_values(c)} for c in (foi, target)])
            paused = pause_ticket_clocks(conn, ticket_id, "clarification", actor="officer",
                                         now=datetime(2026, 3, 4, 9, tzinfo=UTC))
            assert [c.kind for c in paused] == [ClockKind.FOI]  # the service target runs on
            # Weeks later, still waiting: the paused FOI is not breached; the target is.
            swept = sweep_clocks(conn, PERIODS, now=datetime(2026, 4, 7, 9, tzinfo=UTC))
            assert [(c.clock.kind, c.after) for _, c in swept] == [(ClockKind.SERVICE_TARGET,
                                                                   ClockFlag.BREACHED)]
            resumed = resume_ticket_clocks(conn, ticket_id, PERIODS,
                                           now=datetime(2026, 3, 16, 11, tzinfo=UTC))
            assert [(c.kind, c.due_on, c.paused_days) for c in resumed] == [(ClockKind.FOI, date(2026, 4, 15),
                                                                             12)]
            assert sweep_clocks(conn, PERIODS, now=datetime(2026, 4, 7, 9, tzinfo=UTC)) == []
            [(_, soon)] = sweep_clocks(conn, PERIODS, now=datetime(2026, 4, 13, 9, tzinfo=UTC))
            assert (soon.clock.kind, soon.after) == (ClockKind.FOI, ClockFlag.DUE_SOON)
            [(_, late)] = sweep_clocks(conn, PERIODS, now=datetime(2026, 4, 16, 9, tzinfo=UTC))
            assert late.after is ClockFlag.BREACHED
            events = conn.execute(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)
                                  .order_by(TicketEvent.id)).scalars().all()
            assert events == ["clock_paused", "clock_breached", "clock_resumed", "clock_due_soon",
                              "clock_breached"]
            stored = conn.execute(select(StatutoryClockRow.__table__).where(
                StatutoryClockRow.kind == "foi")).one()
            assert (stored.state, stored.due_on, stored.status_flag) == ("running", date(2026, 4, 15),
                                                                         "breached")
            ticket_due = conn.execute(select(Ticket.due_on).where(Ticket.id == ticket_id)).scalar_one()
            assert ticket_due == target.due_on  # the earliest running clock's
    finally:
        engine.dispose()


def test_sweep_clocks_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import insert

    from frontdoor.cli import main
    from tickets.clocks import clock_values
    from tickets.db import make_engine, upgrade
    from tickets.models import StatutoryClockRow, Ticket

    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            ticket_id = conn.execute(insert(Ticket).returning(Ticket.id), {
                "reference": "FD-4444-4444", "status": "open", "channel": "email"}).scalar_one()
            long_ago = start_clock("foi", date(2020, 1, 6), PERIODS)
            conn.execute(insert(StatutoryClockRow), [{"ticket_id": ticket_id, **clock_values(long_ago)}])
    finally:
        engine.dispose()
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", url)
    monkeypatch.setenv("FRONTDOOR_CLOCK_FOI_WORKING_DAYS", "20")
    for expected in ({"changed": 1, "breached": 1}, {"changed": 0}):
        try:
            main(["tickets", "sweep-clocks"])
        except SystemExit as exc:
            assert not exc.code
        assert json.loads(capsys.readouterr().out) == expected


@pytest.mark.parametrize("soon", [0, 3])
def test_the_due_soon_range_for_queries_agrees_with_flag(soon: int) -> None:
    from datetime import timedelta

    from tickets.clocks import due_soon_cutoff

    periods = ClockPeriods(due_soon_working_days=soon)
    for offset in range(0, 40):  # across Easter 2026 and its weekends
        today = date(2026, 3, 25) + timedelta(days=offset)
        cutoff = due_soon_cutoff(today, periods)
        for ahead in range(-3, 15):
            due = today + timedelta(days=ahead)
            expected = flag(Clock(ClockKind.FOI, date(2026, 1, 5), due), today, periods)
            by_range = ClockFlag.BREACHED if due < today else \
                ClockFlag.DUE_SOON if due <= cutoff else ClockFlag.OK
            assert by_range is expected, (today, due)


def test_the_sweep_resumes_a_paused_clock_from_the_day_the_resident_answered(upgraded_url: str) -> None:
    from sqlalchemy import insert, select

    from tickets.clocks import clock_values, pause_ticket_clocks, sweep_clocks
    from tickets.db import make_engine
    from tickets.models import StatutoryClockRow, Ticket, TicketEvent, TicketMessage

    engine = make_engine(upgraded_url)
    try:
        with engine.begin() as conn:
            ticket_id = conn.execute(insert(Ticket).returning(Ticket.id), {
                "reference": "FD-5555-5555", "status": "awaiting_resident", "channel": "email"}).scalar_one()
            foi = start_clock("foi", date(2026, 3, 2), PERIODS)
            conn.execute(insert(StatutoryClockRow), [{"ticket_id": ticket_id, **clock_values(foi)}])

            def message(key: str, at: datetime, automation: str = "none") -> None:
                conn.execute(insert(TicketMessage), [{
                    "ticket_id": ticket_id, "dedupe_key": key, "message_uuid": key, "channel": "email",
                    "received_at": at, "body_text": "…", "automation": automation}])

            message("email:request", datetime(2026, 3, 2, 10, tzinfo=UTC))  # before the pause
            pause_ticket_clocks(conn, ticket_id, "clarification", actor="officer",
                                now=datetime(2026, 3, 4, 9, tzinfo=UTC))
            message("email:ooo", datetime(2026, 3, 5, 9, tzinfo=UTC), automation="auto_reply")
            sweep_clocks(conn, PERIODS, now=datetime(2026, 3, 10, 9, tzinfo=UTC))
            state = conn.execute(select(StatutoryClockRow.state)).scalar_one()
            assert state == "paused"  # an out-of-office is not the resident's answer
            message("email:answer", datetime(2026, 3, 16, 11, tzinfo=UTC))
            sweep_clocks(conn, PERIODS, now=datetime(2026, 3, 20, 9, tzinfo=UTC))  # noticed days later
            stored = conn.execute(select(StatutoryClockRow.state, StatutoryClockRow.due_on,
                                         StatutoryClockRow.paused_days)).one()
            assert tuple(stored) == ("running", date(2026, 4, 15), 12)  # counted from 16 March
            kinds = conn.execute(select(TicketEvent.kind).order_by(TicketEvent.id)).scalars().all()
            assert kinds == ["clock_paused", "clock_resumed"]
    finally:
        engine.dispose()


def test_the_sweep_stops_the_clocks_of_finished_tickets_keeping_late_as_breached(upgraded_url: str) -> None:
    from sqlalchemy import insert, select

    from tickets.clocks import clock_values, sweep_clocks
    from tickets.db import make_engine
    from tickets.models import StatutoryClockRow, Ticket, TicketEvent

    engine = make_engine(upgraded_url)
    try:
        with engine.begin() as conn:
            foi = start_clock("foi", date(2026, 3, 25), PERIODS)  # due 24 April
            for reference, closed in (("FD-6666-6666", datetime(2026, 4, 20, 15, tzinfo=UTC)),
                                      ("FD-7777-7777", datetime(2026, 4, 28, 15, tzinfo=UTC))):
                ticket_id = conn.execute(insert(Ticket).returning(Ticket.id), {
                    "reference": reference, "status": "closed", "channel": "email",
                    "closed_at": closed}).scalar_one()
                conn.execute(insert(StatutoryClockRow), [{"ticket_id": ticket_id, **clock_values(foi)}])
            assert sweep_clocks(conn, PERIODS, now=datetime(2026, 5, 1, 9, tzinfo=UTC)) == []
            rows = conn.execute(select(Ticket.reference, StatutoryClockRow.state,
                                       StatutoryClockRow.status_flag)
                                .join(Ticket, Ticket.id == StatutoryClockRow.ticket_id)
                                .order_by(Ticket.reference)).all()
            assert [tuple(r) for r in rows] == [("FD-6666-6666", "stopped", "ok"),
                                                ("FD-7777-7777", "stopped", "breached")]
            details = conn.execute(select(TicketEvent.detail).where(TicketEvent.kind == "clock_stopped")
                                   .order_by(TicketEvent.id)).scalars().all()
            assert [d["flag"] for d in details] == ["ok", "breached"]
    finally:
        engine.dispose()


def test_an_officer_escalates_a_complaint_to_stage_two(upgraded_url: str) -> None:
    from sqlalchemy import insert, select

    from tickets.clocks import clock_values, start_ticket_clock
    from tickets.db import make_engine
    from tickets.models import StatutoryClockRow, Ticket

    engine = make_engine(upgraded_url)
    try:
        with engine.begin() as conn:
            ticket_id = conn.execute(insert(Ticket).returning(Ticket.id), {
                "reference": "FD-8888-8888", "status": "open", "channel": "email"}).scalar_one()
            stage1 = start_clock("complaint_stage1", date(2026, 3, 2), PERIODS)
            conn.execute(insert(StatutoryClockRow), [{"ticket_id": ticket_id, **clock_values(stage1)}])
            stage2 = start_ticket_clock(conn, ticket_id, "complaint_stage2", PERIODS, actor="officer",
                                        now=datetime(2026, 3, 10, 12, tzinfo=UTC))
            assert stage2.due_on == date(2026, 4, 9)
            rows = conn.execute(select(StatutoryClockRow.kind, StatutoryClockRow.state)
                                .order_by(StatutoryClockRow.id)).all()
            assert [tuple(r) for r in rows] == [("complaint_stage1", "stopped"),
                                                ("complaint_stage2", "running")]
            assert conn.execute(select(Ticket.due_on)).scalar_one() == date(2026, 4, 9)
            with pytest.raises(ClockError, match="already has"):
                start_ticket_clock(conn, ticket_id, "complaint_stage2", PERIODS, actor="officer",
                                   now=datetime(2026, 3, 11, tzinfo=UTC))
    finally:
        engine.dispose()


def test_an_officer_extends_a_sar_once(upgraded_url: str) -> None:
    from sqlalchemy import insert, select

    from tickets.clocks import clock_values, extend_ticket_sar
    from tickets.db import make_engine
    from tickets.models import StatutoryClockRow, Ticket

    engine = make_engine(upgraded_url)
    try:
        with engine.begin() as conn:
            ticket_id = conn.execute(insert(Ticket).returning(Ticket.id), {
                "reference": "FD-9999-9999", "status": "open", "channel": "email"}).scalar_one()
            sar = start_clock("sar", date(2026, 1, 31), PERIODS)
            conn.execute(insert(StatutoryClockRow), [{"ticket_id": ticket_id, **clock_values(sar)}])
            [extended] = extend_ticket_sar(conn, ticket_id, PERIODS, actor="ig@council",
                                           now=datetime(2026, 2, 10, tzinfo=UTC))
            assert extended.due_on == date(2026, 4, 30)
            assert conn.execute(select(Ticket.due_on)).scalar_one() == date(2026, 4, 30)
            with pytest.raises(ClockError, match="already extended"):
                extend_ticket_sar(conn, ticket_id, PERIODS, actor="ig@council",
                                  now=datetime(2026, 2, 11, tzinfo=UTC))
    finally:
        engine.dispose()
