"""The figures of the ops dashboard and of the committee report, computed in SQL from the
tickets database (grouped counts; Python only divides and arranges them).

Definitions, so a figure means the same on the dashboard, in the report and in the tests:

* **Routing accuracy**: of the tickets the router decided (their ``routed`` event), the share
  whose department now is the one the router chose. An agent's move (a correction) makes it
  wrong; a move and back makes it right again. The *confusion matrix* counts (router's choice,
  department now). *Triage rate*: the share the router sent to triage; *routed without a
  human*: the others, and their accuracy is the one that says whether to trust the thresholds.
* **Drift**: the last 7 days' accuracy against the 28 days before; a warning when it is at
  least 5 points lower, on at least 20 tickets, and the gap is beyond chance (a two-proportion
  z below -2).
* **On time**: a statutory or service clock stopped (answered) on or before its due date, by
  the day it stopped; *due soon*: running and due within 3 days; *breached*: running past due.
* **Satisfaction**: the ratings counted for each department that handled the ticket
  (:mod:`tickets.feedback`), by the day the rating was first given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, func, select
from sqlalchemy.engine import Connection, Engine

from tickets.models import (
    Feedback,
    FeedbackDepartment,
    StatutoryClockRow,
    Ticket,
    TicketEvent,
    TicketMessage,
)

DUE_SOON_DAYS = 3
DRIFT_MIN_TICKETS = 20
DRIFT_MIN_DROP = 0.05
CLOCK_KINDS = ("foi", "sar", "complaint_stage1", "complaint_stage2", "member_enquiry", "service_target")
CLOCK_NAMES = {
    "foi": "FOI requests", "sar": "Subject access requests", "complaint_stage1": "Complaints, stage 1",
    "complaint_stage2": "Complaints, stage 2", "member_enquiry": "Member enquiries",
    "service_target": "Service targets",
}
CHANNELS = ("email", "sms", "webform", "phone", "walk_in")


@dataclass(frozen=True)
class Share:
    """``part`` of ``whole``; ``ratio`` is None when there is nothing to divide."""

    part: int
    whole: int

    @property
    def ratio(self) -> float | None:
        return self.part / self.whole if self.whole else None

    @property
    def percent(self) -> str:
        return "–" if self.whole == 0 else f"{100 * self.part / self.whole:.1f}%"


@dataclass(frozen=True)
class Drift:
    week: Share
    month: Share
    z: float | None
    warning: bool


@dataclass(frozen=True)
class RoutingFigures:
    overall: Share
    triaged: Share  # of all decided tickets
    unassisted: Share  # routed without a human: right / all of them
    by_department: dict[str, Share]  # by the router's department
    by_channel: dict[str, Share]
    by_model: dict[str, Share]
    by_week: list[tuple[date, Share]]  # Monday of each week, oldest first
    confusion: dict[tuple[str, str], int]  # (router's department, department now) -> tickets
    drift: Drift


@dataclass(frozen=True)
class DeadlineFigures:
    due_soon: dict[str, int]  # per clock kind
    breached: dict[str, int]
    on_time_by_kind: dict[str, Share]
    on_time_by_department: dict[str, Share]


@dataclass(frozen=True)
class Satisfaction:
    count: int
    average: float | None
    distribution: tuple[int, int, int, int, int]  # ratings 1..5


@dataclass(frozen=True)
class Comment:
    at: datetime
    reference: str
    rating: int
    comment: str
    departments: tuple[str, ...]


@dataclass(frozen=True)
class SatisfactionFigures:
    by_department: dict[str, Satisfaction]
    comments: list[Comment]  # newest first
    low: list[Comment]  # ratings of 1 or 2, newest first


@dataclass(frozen=True)
class MonthFigures:
    month: str  # YYYY-MM
    enquiries: int
    by_channel: dict[str, int]
    by_department: dict[str, int]
    on_time: dict[str, Share]  # foi, member_enquiry, sar, complaint stages
    complaints_by_stage: dict[str, int]  # complaint clocks started in the month
    satisfaction: dict[str, Satisfaction]
    routing: Share
    unassisted: Share
    triaged: Share


@dataclass(frozen=True)
class Report:
    month: MonthFigures
    previous: MonthFigures
    departments: list[str] = field(default_factory=list)  # every department in either month


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    return (datetime.combine(since, datetime.min.time(), tzinfo=UTC),
            datetime.combine(until, datetime.min.time(), tzinfo=UTC))


# -- routing -------------------------------------------------------------------------------------

def _routed() -> Any:
    """One row per ticket the router decided: its choice, triage or not, and where it is now."""
    routed_department = TicketEvent.detail["department"].as_string()
    triaged = TicketEvent.detail["triage"].as_boolean()
    return (select(Ticket.id.label("ticket_id"), Ticket.created_at, Ticket.channel,
                   func.coalesce(Ticket.model_version, "unknown").label("model"),
                   routed_department.label("routed"), triaged.label("triaged"),
                   Ticket.primary_department.label("now"),
                   case((routed_department == Ticket.primary_department, 1), else_=0).label("right"))
            .join(TicketEvent, and_(TicketEvent.ticket_id == Ticket.id, TicketEvent.kind == "routed"))
            .where(Ticket.primary_department.is_not(None)))


def _shares(conn: Connection, routed: Any, column: Any, where: Any = None) -> dict[str, Share]:
    stmt = select(column, func.count(), func.sum(routed.c.right)).group_by(column)
    if where is not None:
        stmt = stmt.where(where)
    return {str(key): Share(int(right or 0), int(n)) for key, n, right in conn.execute(stmt)}


def _total(conn: Connection, routed: Any, where: Any = None) -> Share:
    stmt = select(func.count(), func.sum(routed.c.right))
    if where is not None:
        stmt = stmt.where(where)
    n, right = conn.execute(stmt).one()
    return Share(int(right or 0), int(n or 0))


def z_score(a: Share, b: Share) -> float | None:
    """Two-proportion z of ``a`` against ``b`` (negative: ``a`` is lower)."""
    if not a.whole or not b.whole:
        return None
    pooled = (a.part + b.part) / (a.whole + b.whole)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.whole + 1 / b.whole))
    if spread == 0:
        return None
    return ((a.ratio or 0) - (b.ratio or 0)) / spread


def routing_figures(engine: Engine, since: date, until: date, *, today: date | None = None) -> RoutingFigures:
    """Routing figures of the tickets created in [since, until); drift as of ``today``."""
    start, end = _bounds(since, until)
    today = today or datetime.now(UTC).date()
    with engine.connect() as conn:
        every = _routed().subquery()
        routed = select(every).where(every.c.created_at >= start, every.c.created_at < end).subquery()
        overall = _total(conn, routed)
        triaged_n = conn.execute(select(func.count()).where(routed.c.triaged.is_(True))).scalar_one()
        unassisted = _total(conn, routed, routed.c.triaged.is_not(True))
        confusion = {(str(a), str(b)): int(n) for a, b, n in conn.execute(
            select(routed.c.routed, routed.c.now, func.count()).group_by(routed.c.routed, routed.c.now))}
        day = _day(engine, routed.c.created_at)
        weeks: dict[date, list[int]] = defaultdict(lambda: [0, 0])
        for on, n, right in conn.execute(select(day, func.count(), func.sum(routed.c.right)).group_by(day)):
            d = on if isinstance(on, date) else date.fromisoformat(str(on))
            monday = d - timedelta(days=d.weekday())
            weeks[monday][0] += int(right or 0)
            weeks[monday][1] += int(n)
        # the last 7 days (today included) against the 28 days before them
        week_start, _ = _bounds(today - timedelta(days=6), today)
        month_start, _ = _bounds(today - timedelta(days=34), today)
        week = _total(conn, every, every.c.created_at >= week_start)
        month = _total(conn, every, and_(every.c.created_at >= month_start, every.c.created_at < week_start))
        return RoutingFigures(
            overall=overall, triaged=Share(int(triaged_n), overall.whole), unassisted=unassisted,
            by_department=_shares(conn, routed, routed.c.routed),
            by_channel=_shares(conn, routed, routed.c.channel),
            by_model=_shares(conn, routed, routed.c.model),
            by_week=[(monday, Share(*weeks[monday])) for monday in sorted(weeks)],
            confusion=confusion, drift=_drift(week, month))


def _drift(week: Share, month: Share) -> Drift:
    z = z_score(week, month)
    warning = (week.whole >= DRIFT_MIN_TICKETS and month.whole >= DRIFT_MIN_TICKETS and z is not None
               and z < -2 and (month.ratio or 0) - (week.ratio or 0) >= DRIFT_MIN_DROP)
    return Drift(week, month, z, warning)


# -- deadlines -----------------------------------------------------------------------------------

def _day(engine: Engine, column: Any) -> Any:
    """The date of a stored UTC time (SQLite keeps times as text: its date() reads them)."""
    return cast(column, Date) if engine.dialect.name != "sqlite" else func.date(column)


def deadline_figures(engine: Engine, since: date, until: date, *,
                     today: date | None = None) -> DeadlineFigures:
    """Clocks due soon and breached now; the share answered on time of those stopped in [since, until)."""
    today = today or datetime.now(UTC).date()
    start, end = _bounds(since, until)
    running = StatutoryClockRow.state == "running"
    with engine.connect() as conn:
        soon = today + timedelta(days=DUE_SOON_DAYS)
        due_soon = dict(conn.execute(select(StatutoryClockRow.kind, func.count()).where(
            running, StatutoryClockRow.due_on >= today, StatutoryClockRow.due_on <= soon)
            .group_by(StatutoryClockRow.kind)).all())
        breached = dict(conn.execute(select(StatutoryClockRow.kind, func.count()).where(
            running, StatutoryClockRow.due_on < today).group_by(StatutoryClockRow.kind)).all())
        on_time = case((_day(engine, StatutoryClockRow.stopped_at) <= StatutoryClockRow.due_on, 1), else_=0)
        stopped = and_(StatutoryClockRow.state == "stopped", StatutoryClockRow.stopped_at >= start,
                       StatutoryClockRow.stopped_at < end)
        by_kind = {str(k): Share(int(ok or 0), int(n)) for k, n, ok in conn.execute(
            select(StatutoryClockRow.kind, func.count(), func.sum(on_time)).where(stopped)
            .group_by(StatutoryClockRow.kind))}
        department = func.coalesce(Ticket.primary_department, "triage")
        by_department = {str(d): Share(int(ok or 0), int(n)) for d, n, ok in conn.execute(
            select(department, func.count(), func.sum(on_time))
            .join(Ticket, Ticket.id == StatutoryClockRow.ticket_id).where(stopped).group_by(department))}
    return DeadlineFigures({str(k): int(v) for k, v in due_soon.items()},
                           {str(k): int(v) for k, v in breached.items()}, by_kind, by_department)


# -- satisfaction --------------------------------------------------------------------------------

def satisfaction_figures(engine: Engine, since: date, until: date, *,
                         comments: int = 20) -> SatisfactionFigures:
    start, end = _bounds(since, until)
    in_period = and_(Feedback.at >= start, Feedback.at < end)
    with engine.connect() as conn:
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for department, rating, n in conn.execute(
                select(FeedbackDepartment.department, FeedbackDepartment.rating, func.count())
                .join(Feedback, Feedback.ticket_id == FeedbackDepartment.ticket_id).where(in_period)
                .group_by(FeedbackDepartment.department, FeedbackDepartment.rating)):
            if 1 <= int(rating) <= 5:
                counts[str(department)][int(rating) - 1] += int(n)
        by_department = {d: _satisfaction(c) for d, c in sorted(counts.items())}
        recent = _comments(conn, in_period, comments)
        low = _comments(conn, and_(in_period, Feedback.rating <= 2), comments, with_text_only=False)
    return SatisfactionFigures(by_department, recent, low)


def _satisfaction(counts: Iterable[int]) -> Satisfaction:
    c = tuple(counts)
    total = sum(c)
    average = sum((i + 1) * n for i, n in enumerate(c)) / total if total else None
    return Satisfaction(total, average, (c[0], c[1], c[2], c[3], c[4]))


def _comments(conn: Connection, where: Any, limit: int, with_text_only: bool = True) -> list[Comment]:
    stmt = (select(Feedback.ticket_id, Feedback.at, Feedback.rating, Feedback.comment, Ticket.reference)
            .join(Ticket, Ticket.id == Feedback.ticket_id).where(where)
            .order_by(Feedback.at.desc()).limit(limit))
    if with_text_only:
        stmt = stmt.where(Feedback.comment.is_not(None))
    rows = conn.execute(stmt).all()
    departments: dict[int, list[str]] = defaultdict(list)
    for ticket_id, department in conn.execute(
            select(FeedbackDepartment.ticket_id, FeedbackDepartment.department)
            .where(FeedbackDepartment.ticket_id.in_([r.ticket_id for r in rows]))
            .order_by(FeedbackDepartment.department)):
        departments[int(ticket_id)].append(str(department))
    return [Comment(r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC), r.reference, int(r.rating),
                    r.comment or "", tuple(departments[int(r.ticket_id)])) for r in rows]


# -- ingest --------------------------------------------------------------------------------------

def messages_per_hour(engine: Engine, *, now: datetime | None = None,
                      hours: int = 24) -> dict[str, list[int]]:
    """Inbound messages per channel in each of the last ``hours`` hours (oldest first)."""
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = now - timedelta(hours=hours)
    found: dict[str, list[int]] = {c: [0] * hours for c in CHANNELS}
    with engine.connect() as conn:
        for channel, at in conn.execute(select(TicketMessage.channel, TicketMessage.received_at).where(
                TicketMessage.direction == "in", TicketMessage.received_at >= start)):
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            slot = int((at - start).total_seconds() // 3600)
            if 0 <= slot < hours:
                found.setdefault(str(channel), [0] * hours)[slot] += 1
    return found


# -- the month -----------------------------------------------------------------------------------

def month_bounds(month: str) -> tuple[date, date]:
    """``YYYY-MM`` → (first day, first day of the next month); ValueError when it is not one."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"{month!r} is not a month: write it as YYYY-MM, e.g. 2026-11") from None
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, following


def previous_month(month: str) -> str:
    first, _ = month_bounds(month)
    last = first - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def month_figures(engine: Engine, month: str) -> MonthFigures:
    since, until = month_bounds(month)
    start, end = _bounds(since, until)
    created = and_(Ticket.created_at >= start, Ticket.created_at < end, Ticket.status != "merged")
    with engine.connect() as conn:
        by_channel = {str(c): int(n) for c, n in conn.execute(
            select(Ticket.channel, func.count()).where(created).group_by(Ticket.channel))}
        department = func.coalesce(Ticket.primary_department, "triage")
        by_department = {str(d): int(n) for d, n in conn.execute(
            select(department, func.count()).where(created).group_by(department))}
        complaint = StatutoryClockRow.kind.in_(("complaint_stage1", "complaint_stage2"))
        started = and_(StatutoryClockRow.started_on >= since, StatutoryClockRow.started_on < until)
        complaints = {str(k): int(n) for k, n in conn.execute(
            select(StatutoryClockRow.kind, func.count()).where(complaint, started)
            .group_by(StatutoryClockRow.kind))}
    deadlines = deadline_figures(engine, since, until, today=until)
    routing = routing_figures(engine, since, until, today=until)
    satisfaction = satisfaction_figures(engine, since, until, comments=0)
    return MonthFigures(
        month=month, enquiries=sum(by_channel.values()), by_channel=by_channel, by_department=by_department,
        on_time={k: deadlines.on_time_by_kind.get(k, Share(0, 0))
                 for k in ("foi", "member_enquiry", "sar", "complaint_stage1", "complaint_stage2")},
        complaints_by_stage={k: complaints.get(k, 0) for k in ("complaint_stage1", "complaint_stage2")},
        satisfaction=satisfaction.by_department, routing=routing.overall, unassisted=routing.unassisted,
        triaged=routing.triaged)


def month_report(engine: Engine, month: str) -> Report:
    current = month_figures(engine, month)
    previous = month_figures(engine, previous_month(month))
    departments = sorted(set(current.by_department) | set(previous.by_department)
                         | set(current.satisfaction) | set(previous.satisfaction))
    return Report(current, previous, departments)


def as_json(value: Any) -> Any:
    """The figures as plain JSON values (shares as {part, whole, ratio})."""
    if isinstance(value, Share):
        return {"part": value.part, "whole": value.whole, "ratio": value.ratio}
    if isinstance(value, Satisfaction):
        return {"count": value.count, "average": value.average, "distribution": list(value.distribution)}
    if isinstance(value, Mapping):
        return {("→".join(k) if isinstance(k, tuple) else str(k)): as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {name: as_json(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def ticket_feedback(engine: Engine, ticket_id: int) -> Comment | None:
    """The resident's rating of one ticket, for the ticket page (None: not rated)."""
    with engine.connect() as conn:
        found = _comments(conn, Feedback.ticket_id == ticket_id, 1, with_text_only=False)
    return found[0] if found else None
