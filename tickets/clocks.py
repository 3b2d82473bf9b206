"""Statutory and service clocks on a ticket, in England and Wales working days.

A clock starts when the router says so (``routing.statutory_clock``: FOI, SAR) or when the
enquiry's type calls for one (a complaint, a member enquiry), and every ticket of a department
with a service target gets that one too. Periods come from configuration
(:class:`ClockPeriods`, filled by ``frontdoor/`` from settings); the defaults are the law's or
the usual council's:

* FOI: 20 working days following receipt (FOIA s.10(1)).
* SAR: one calendar month, to the corresponding date (the month's last day when it has none),
  moved to the next working day; extendable by two further months (UK GDPR art. 12(3)).
* Complaints: stage 1 in 10 working days, stage 2 in 20 (the Housing Ombudsman's Complaint
  Handling Code, which most councils apply to every complaint).
* Member enquiries: 10 working days.

Waiting for the resident pauses a clock only where the law allows it, and the clock then
restarts from their reply, as the law counts it: FOI while clarification is sought (s.1(3) and
s.10(6): time runs from receipt of the clarification), SAR while identity is checked (the month
runs from receipt of what confirms it). Other clocks run on.

Working days skip weekends and England and Wales bank holidays (``holidays``, GB subdivision
ENG). Due-soon and breached are computed by :func:`flag`; :func:`sweep` says which clocks
changed since they were last looked at, so the sweep can publish those as audit events; the
``sweep_database`` helper does that against the tickets tables.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import Connection, insert, select, update

LONDON = ZoneInfo("Europe/London")


class ClockKind(StrEnum):
    FOI = "foi"
    SAR = "sar"
    COMPLAINT_STAGE1 = "complaint_stage1"
    COMPLAINT_STAGE2 = "complaint_stage2"
    MEMBER_ENQUIRY = "member_enquiry"
    SERVICE_TARGET = "service_target"


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # answered (or the ticket closed)


class ClockFlag(StrEnum):
    OK = "ok"
    DUE_SOON = "due_soon"
    BREACHED = "breached"


# What a clock may pause for while the council waits on the resident.
PAUSABLE: Mapping[ClockKind, str] = {
    ClockKind.FOI: "clarification",
    ClockKind.SAR: "identity_check",
}


class ClockError(ValueError):
    """A clock operation the rules do not allow (said to the console as it is)."""


@dataclass(frozen=True)
class ClockPeriods:
    """The periods, from settings (``FRONTDOOR_CLOCK_*``); service targets per department."""

    foi_working_days: int = 20
    sar_months: int = 1
    sar_extension_months: int = 2
    complaint_stage1_working_days: int = 10
    complaint_stage2_working_days: int = 20
    member_enquiry_working_days: int = 10
    service_targets: Mapping[str, int] = field(default_factory=dict)  # department → working days
    due_soon_working_days: int = 3


@dataclass(frozen=True)
class Clock:
    kind: ClockKind
    started_on: date
    due_on: date
    state: ClockState = ClockState.RUNNING
    paused_since: date | None = None
    paused_for: str | None = None
    paused_days: int = 0  # calendar days spent paused, all pauses together (for reports)
    extended: bool = False
    department: str | None = None  # for a service target
    stopped_on: date | None = None
    flag: ClockFlag = ClockFlag.OK
    restarted_on: date | None = None  # the period runs from here after a pause, else from started_on

    @property
    def counting_from(self) -> date:
        return self.restarted_on or self.started_on


@lru_cache(maxsize=32)
def _bank_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("GB", subdiv="ENG", years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
    current, counted = start, 0
    while counted < days:
        current += timedelta(days=1)
        counted += is_working_day(current)
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (negative when end is earlier)."""
    if end < start:
        return -working_days_between(end, start)
    return sum(is_working_day(start + timedelta(days=n)) for n in range(1, (end - start).days + 1))


def add_months(start: date, months: int) -> date:
    """The corresponding date ``months`` later (the month's last day when it has none), moved to
    the next working day when it is not one (the ICO's reading of art. 12(3))."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    due = date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
    while not is_working_day(due):
        due += timedelta(days=1)
    return due


def due_date(kind: ClockKind, start: date, periods: ClockPeriods, *, department: str | None = None,
             extended: bool = False) -> date:
    if kind is ClockKind.FOI:
        return add_working_days(start, periods.foi_working_days)
    if kind is ClockKind.SAR:
        return add_months(start, periods.sar_months + (periods.sar_extension_months if extended else 0))
    if kind is ClockKind.COMPLAINT_STAGE1:
        return add_working_days(start, periods.complaint_stage1_working_days)
    if kind is ClockKind.COMPLAINT_STAGE2:
        return add_working_days(start, periods.complaint_stage2_working_days)
    if kind is ClockKind.MEMBER_ENQUIRY:
        return add_working_days(start, periods.member_enquiry_working_days)
    if department is None or department not in periods.service_targets:
        raise ClockError(f"no service target for department {department!r}")
    return add_working_days(start, periods.service_targets[department])


def start_clock(kind: ClockKind | str, started_on: date, periods: ClockPeriods, *,
                department: str | None = None) -> Clock:
    kind = ClockKind(kind)
    return Clock(kind, started_on, due_date(kind, started_on, periods, department=department),
                 department=department)


def clocks_for(*, statutory_kind: str | None, enquiry_type: str, received_on: date, department: str | None,
               periods: ClockPeriods) -> list[Clock]:
    """The clocks a new ticket starts: the router's statutory clock (``routing.statutory_clock``),
    one for a complaint or member enquiry, and the department's service target if it has one."""
    kinds: list[ClockKind] = []
    if statutory_kind:
        kinds.append(ClockKind(statutory_kind))
    elif enquiry_type in (ClockKind.FOI, ClockKind.SAR):
        kinds.append(ClockKind(enquiry_type))
    if enquiry_type == "complaint":
        kinds.append(ClockKind.COMPLAINT_STAGE1)
    elif enquiry_type == "member_enquiry":
        kinds.append(ClockKind.MEMBER_ENQUIRY)
    clocks = [start_clock(k, received_on, periods) for k in dict.fromkeys(kinds)]
    if department and department in periods.service_targets:
        clocks.append(start_clock(ClockKind.SERVICE_TARGET, received_on, periods, department=department))
    return clocks


def escalate_complaint(stage1: Clock, on: date, periods: ClockPeriods) -> tuple[Clock, Clock]:
    """Stage 1 answered and the resident is not satisfied: stage 1 stops, stage 2 starts."""
    if stage1.kind is not ClockKind.COMPLAINT_STAGE1:
        raise ClockError(f"only a stage 1 complaint escalates, not {stage1.kind}")
    stopped = stage1 if stage1.state is ClockState.STOPPED else stop(stage1, on)
    return stopped, start_clock(ClockKind.COMPLAINT_STAGE2, on, periods)


def pause(clock: Clock, on: date, awaiting: str) -> Clock:
    """Pause while the council waits for the resident, where the rule allows it."""
    allowed = PAUSABLE.get(clock.kind)
    if allowed is None:
        raise ClockError(f"a {clock.kind} clock does not pause while awaiting the resident")
    if awaiting != allowed:
        raise ClockError(f"a {clock.kind} clock pauses only for {allowed}, not {awaiting}")
    if clock.state is not ClockState.RUNNING:
        raise ClockError(f"the {clock.kind} clock is {clock.state}, not running")
    return replace(clock, state=ClockState.PAUSED, paused_since=on, paused_for=awaiting)


def resume(clock: Clock, on: date, periods: ClockPeriods) -> Clock:
    """The resident answered: the period restarts from ``on`` (see the module's docstring)."""
    if clock.state is not ClockState.PAUSED or clock.paused_since is None:
        raise ClockError(f"the {clock.kind} clock is {clock.state}, not paused")
    waited = max(0, (on - clock.paused_since).days)
    due = due_date(clock.kind, on, periods, department=clock.department, extended=clock.extended)
    return replace(clock, state=ClockState.RUNNING, due_on=due, paused_since=None, paused_for=None,
                   paused_days=clock.paused_days + waited, restarted_on=on)


def extend(clock: Clock, periods: ClockPeriods) -> Clock:
    """A complex or numerous SAR: two further months from the same start (art. 12(3))."""
    if clock.kind is not ClockKind.SAR:
        raise ClockError(f"only a SAR clock is extendable, not {clock.kind}")
    if clock.extended:
        raise ClockError("the SAR clock is already extended")
    if clock.state is ClockState.STOPPED:
        raise ClockError("the SAR clock has stopped")
    return replace(clock, extended=True, due_on=due_date(clock.kind, clock.counting_from, periods,
                                                          extended=True))


def stop(clock: Clock, on: date) -> Clock:
    """The enquiry was answered (or closed): the clock stops; late stays breached."""
    if clock.state is ClockState.STOPPED:
        return clock
    stopped = replace(clock, state=ClockState.STOPPED, stopped_on=on, paused_since=None, paused_for=None)
    return replace(stopped, flag=ClockFlag.BREACHED if on > clock.due_on else ClockFlag.OK)


def flag(clock: Clock, today: date, periods: ClockPeriods) -> ClockFlag:
    """Where a clock stands today. A paused clock is neither due soon nor breached: the council
    is waiting on the resident. A stopped one keeps whether it was answered late."""
    if clock.state is ClockState.STOPPED:
        return ClockFlag.BREACHED if clock.stopped_on and clock.stopped_on > clock.due_on else ClockFlag.OK
    if clock.state is ClockState.PAUSED:
        return ClockFlag.OK
    if today > clock.due_on:
        return ClockFlag.BREACHED
    if working_days_between(today, clock.due_on) <= periods.due_soon_working_days:
        return ClockFlag.DUE_SOON
    return ClockFlag.OK


def due_soon_cutoff(today: date, periods: ClockPeriods) -> date:
    """For queries: a running clock with ``today <= due_on <= due_soon_cutoff(today)`` is due
    soon, one with ``due_on < today`` breached (the same answer as :func:`flag`, as a range an
    index on ``(state, due_on)`` serves)."""
    return add_working_days(today, periods.due_soon_working_days + 1) - timedelta(days=1)


@dataclass(frozen=True)
class ClockChange:
    """A clock whose flag changed: the sweep writes it back and publishes it."""

    clock: Clock
    before: ClockFlag
    after: ClockFlag

    @property
    def event_kind(self) -> str:
        return f"clock_{self.after.value}"

    def detail(self) -> dict[str, str]:
        c = self.clock
        out = {"clock": c.kind.value, "from": self.before.value, "to": self.after.value,
               "due_on": c.due_on.isoformat(), "started_on": c.started_on.isoformat()}
        if c.department:
            out["department"] = c.department
        return out


def sweep(clocks: Iterable[Clock], today: date, periods: ClockPeriods) -> list[ClockChange]:
    """The clocks whose flag is not what it was when last stored, with the new flag set."""
    changes = []
    for clock in clocks:
        now = flag(clock, today, periods)
        if now is not clock.flag:
            changes.append(ClockChange(replace(clock, flag=now), clock.flag, now))
    return changes


def earliest_due(clocks: Iterable[Clock]) -> date | None:
    """The ticket's due date for queues: the earliest running clock's (None when none runs)."""
    dues = [c.due_on for c in clocks if c.state is ClockState.RUNNING]
    return min(dues) if dues else None


def today_in_england(now: datetime) -> date:
    """The date the law counts in: the clock's day is England's, not UTC's."""
    return now.astimezone(LONDON).date()


# -- against the tickets tables (the caller's transaction) --------------------------------------

def _tables() -> tuple[Any, Any, Any]:
    from tickets.models import StatutoryClockRow, Ticket, TicketEvent

    return StatutoryClockRow.__table__, Ticket.__table__, TicketEvent.__table__


def clock_from_row(row: Any) -> Clock:
    detail = row.detail or {}
    restarted = detail.get("restarted_on")
    return Clock(kind=ClockKind(row.kind), started_on=row.started_on, due_on=row.due_on,
                 state=ClockState(row.state), paused_since=row.paused_since,
                 paused_for=detail.get("paused_for"),
                 paused_days=row.paused_days or 0, extended=bool(row.extended),
                 department=detail.get("department"),
                 stopped_on=row.stopped_at.date() if row.stopped_at else None,
                 flag=ClockFlag(row.status_flag or "ok"),
                 restarted_on=date.fromisoformat(restarted) if restarted else None)


def clock_values(clock: Clock) -> dict[str, Any]:
    """The ``statutory_clocks`` columns for ``clock`` (``detail`` keeps what has no column)."""
    detail: dict[str, str] = {}
    if clock.department:
        detail["department"] = clock.department
    if clock.paused_for:
        detail["paused_for"] = clock.paused_for
    if clock.restarted_on:
        detail["restarted_on"] = clock.restarted_on.isoformat()
    stopped = None
    if clock.stopped_on:
        stopped = datetime.combine(clock.stopped_on, datetime.min.time(), tzinfo=UTC)
    return {"kind": clock.kind.value, "started_on": clock.started_on, "due_on": clock.due_on,
            "state": clock.state.value, "paused_since": clock.paused_since, "paused_days": clock.paused_days,
            "extended": clock.extended, "status_flag": clock.flag.value, "stopped_at": stopped,
            "detail": detail}


def _change_ticket_clocks(conn: Connection, ticket_id: int, change: Callable[[Clock], Clock | None],
                          event_kind: str, actor: str, now: datetime) -> list[Clock]:
    clocks_t, tickets_t, events_t = _tables()
    rows = conn.execute(select(clocks_t).where(clocks_t.c.ticket_id == ticket_id)
                        .order_by(clocks_t.c.id)).all()
    changed: list[Clock] = []
    every: list[Clock] = []
    for row in rows:
        clock = clock_from_row(row)
        after = change(clock)
        if after is not None and after != clock:
            conn.execute(update(clocks_t).where(clocks_t.c.id == row.id).values(**clock_values(after)))
            changed.append(after)
            clock = after
        every.append(clock)
    if changed:
        reference = conn.execute(select(tickets_t.c.reference)
                                 .where(tickets_t.c.id == ticket_id)).scalar_one()
        conn.execute(update(tickets_t).where(tickets_t.c.id == ticket_id).values(due_on=earliest_due(every)))
        conn.execute(insert(events_t), [{
            "ticket_id": ticket_id, "reference": reference, "kind": event_kind, "actor": actor, "at": now,
            "detail": {"clock": c.kind.value, "state": c.state.value, "due_on": c.due_on.isoformat(),
                       "flag": c.flag.value,
                       **({"awaiting": c.paused_for} if c.paused_for else {})},
            "published_at": None} for c in changed])
    return changed


def start_ticket_clock(conn: Connection, ticket_id: int, kind: ClockKind | str, periods: ClockPeriods, *,
                       actor: str, now: datetime, department: str | None = None) -> Clock:
    """Start a clock on a ticket from today (an officer escalating a complaint to stage 2, or
    recording an FOI the router did not see). Stage 2 stops a stage 1 still running. A ticket
    holds one clock of each kind: starting one it already has is refused."""
    clocks_t, tickets_t, events_t = _tables()
    kind = ClockKind(kind)
    today = today_in_england(now)
    exists = conn.execute(select(clocks_t.c.id).where(clocks_t.c.ticket_id == ticket_id,
                                                      clocks_t.c.kind == kind.value)).first()
    if exists is not None:
        raise ClockError(f"the ticket already has a {kind} clock")
    if kind is ClockKind.COMPLAINT_STAGE2:
        def change(clock: Clock) -> Clock | None:
            return stop(clock, today) if clock.kind is ClockKind.COMPLAINT_STAGE1 else None

        _change_ticket_clocks(conn, ticket_id, change, "clock_stopped", actor, now)
    clock = start_clock(kind, today, periods, department=department)
    conn.execute(insert(clocks_t), [{"ticket_id": ticket_id, **clock_values(clock)}])
    rows = conn.execute(select(clocks_t).where(clocks_t.c.ticket_id == ticket_id))
    every = [clock_from_row(r) for r in rows]
    reference = conn.execute(select(tickets_t.c.reference).where(tickets_t.c.id == ticket_id)).scalar_one()
    conn.execute(update(tickets_t).where(tickets_t.c.id == ticket_id).values(due_on=earliest_due(every)))
    conn.execute(insert(events_t), [{"ticket_id": ticket_id, "reference": reference, "kind": "clock_started",
                                     "actor": actor, "at": now, "published_at": None,
                                     "detail": {"clock": kind.value, "started_on": today.isoformat(),
                                                "due_on": clock.due_on.isoformat()}}])
    return clock


def pause_ticket_clocks(conn: Connection, ticket_id: int, awaiting: str, *, actor: str,
                        now: datetime) -> list[Clock]:
    """The ticket now waits on the resident for ``awaiting`` (``clarification``,
    ``identity_check``): pause the running clocks that the rule lets pause for it; the others run
    on. Returns the paused clocks (each also a ``clock_paused`` event)."""
    today = today_in_england(now)

    def change(clock: Clock) -> Clock | None:
        if clock.state is ClockState.RUNNING and PAUSABLE.get(clock.kind) == awaiting:
            return pause(clock, today, awaiting)
        return None

    return _change_ticket_clocks(conn, ticket_id, change, "clock_paused", actor, now)


def resume_ticket_clocks(conn: Connection, ticket_id: int, periods: ClockPeriods, *, now: datetime,
                         actor: str = "resident") -> list[Clock]:
    """The resident answered: every paused clock restarts from today (``clock_resumed`` events,
    the ticket's due date moved)."""
    today = today_in_england(now)

    def change(clock: Clock) -> Clock | None:
        return resume(clock, today, periods) if clock.state is ClockState.PAUSED else None

    return _change_ticket_clocks(conn, ticket_id, change, "clock_resumed", actor, now)


def extend_ticket_sar(conn: Connection, ticket_id: int, periods: ClockPeriods, *, actor: str,
                      now: datetime) -> list[Clock]:
    """A complex or numerous SAR: its clock gets the further months (``clock_extended`` event)."""
    def change(clock: Clock) -> Clock | None:
        return extend(clock, periods) if clock.kind is ClockKind.SAR else None

    extended = _change_ticket_clocks(conn, ticket_id, change, "clock_extended", actor, now)
    if not extended:
        raise ClockError("the ticket has no SAR clock")
    return extended


def stop_ticket_clocks(conn: Connection, ticket_id: int, *, actor: str, now: datetime) -> list[Clock]:
    """The enquiry was answered (resolved or closed): every clock stops, late ones stay breached."""
    today = today_in_england(now)
    return _change_ticket_clocks(conn, ticket_id, lambda c: stop(c, today), "clock_stopped", actor, now)


def resume_answered_clocks(conn: Connection, periods: ClockPeriods, *, now: datetime) -> list[Clock]:
    """Resume every paused clock whose ticket has had a message from the resident since the clock
    was paused, from the day that message arrived (the law counts from receipt, not from when
    we noticed). The ticket stage need not know about clocks: the sweep catches the reply."""
    from sqlalchemy import func

    from tickets.models import TicketMessage

    clocks_t, _, events_t = _tables()
    messages_t = TicketMessage.__table__
    paused = select(clocks_t.c.ticket_id).where(clocks_t.c.state == ClockState.PAUSED.value).distinct()
    resumed: list[Clock] = []
    for ticket_id in conn.execute(paused).scalars().all():
        paused_at = conn.execute(select(func.max(events_t.c.at)).where(
            events_t.c.ticket_id == ticket_id, events_t.c.kind == "clock_paused")).scalar()
        if paused_at is None:
            continue
        reply = conn.execute(select(func.min(messages_t.c.received_at)).where(
            messages_t.c.ticket_id == ticket_id, messages_t.c.direction == "in",
            messages_t.c.automation == "none", messages_t.c.received_at > paused_at)).scalar()
        if reply is None:
            continue
        on = today_in_england(reply if reply.tzinfo else reply.replace(tzinfo=UTC))

        def change(clock: Clock, on: date = on) -> Clock | None:
            return resume(clock, on, periods) if clock.state is ClockState.PAUSED else None

        resumed += _change_ticket_clocks(conn, ticket_id, change, "clock_resumed", "resident", now)
    return resumed


def stop_finished_clocks(conn: Connection, *, now: datetime) -> list[Clock]:
    """Stop the clocks of tickets that were resolved, closed or merged, as of the day that
    happened (``closed_at``, else the ticket's last update): answered late stays breached."""
    clocks_t, tickets_t, _ = _tables()
    finished = ("resolved", "closed", "merged")
    rows = conn.execute(select(tickets_t.c.id, tickets_t.c.closed_at, tickets_t.c.updated_at).where(
        tickets_t.c.status.in_(finished), tickets_t.c.id.in_(
            select(clocks_t.c.ticket_id).where(clocks_t.c.state != ClockState.STOPPED.value)))).all()
    stopped: list[Clock] = []
    for row in rows:
        when = row.closed_at or row.updated_at or now
        on = today_in_england(when if when.tzinfo else when.replace(tzinfo=UTC))

        def change(clock: Clock, on: date = on) -> Clock | None:
            return stop(clock, on)

        stopped += _change_ticket_clocks(conn, row.id, change, "clock_stopped", "system", now)
    return stopped


def sweep_clocks(conn: Connection, periods: ClockPeriods, *, now: datetime,
                 limit: int | None = None) -> list[tuple[int, ClockChange]]:
    """The periodic sweep. First, a paused clock whose resident has written since the pause
    resumes from the day of their message (:func:`resume_answered_clocks`) and the clocks of
    finished tickets stop (:func:`stop_finished_clocks`); then each running or
    paused clock's flag is stored when it changed, with a ``clock_due_soon`` / ``clock_breached``
    / ``clock_ok`` event (published on ``frontdoor.events`` by the events relay). Returns the
    flag changes (ticket id, change)."""
    clocks_t, tickets_t, events_t = _tables()
    today = today_in_england(now)
    resume_answered_clocks(conn, periods, now=now)
    stop_finished_clocks(conn, now=now)
    query = (select(clocks_t, tickets_t.c.reference).join(tickets_t, tickets_t.c.id == clocks_t.c.ticket_id)
             .where(clocks_t.c.state != ClockState.STOPPED.value).order_by(clocks_t.c.due_on, clocks_t.c.id))
    if limit is not None:
        query = query.limit(limit)
    changes: list[tuple[int, ClockChange]] = []
    events: list[dict[str, Any]] = []
    for row in conn.execute(query).all():
        for change in sweep([clock_from_row(row)], today, periods):
            conn.execute(update(clocks_t).where(clocks_t.c.id == row.id)
                         .values(status_flag=change.after.value))
            changes.append((row.ticket_id, change))
            events.append({"ticket_id": row.ticket_id, "reference": row.reference, "kind": change.event_kind,
                           "actor": "system", "detail": change.detail(), "at": now, "published_at": None})
    if events:
        conn.execute(insert(events_t), events)
    return changes
