"""The ops dashboard (ops and supervisors): routing accuracy, deadlines, satisfaction, ingest
health. One page per section, each figure a :class:`Figure`: the same rows make the data table
(always shown, beside the chart), the chart (drawn from that table by ``dashboard.mjs`` with
Chart.js: no inline script) and the CSV download, so the three never disagree.

Figures come from :mod:`tickets.reporting` (SQL over the tickets database). Ingest health adds
the intake outbox's backlog (the relay's) and, when ``frontdoor/`` gives the app an
:class:`IngestProbe`, consumer lag per stage and the dead letters, with an audited replay.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tickets import reporting
from tickets.accounts import Permission, SignedIn
from web.console.auth import ForbiddenError, requires
from web.console.context import ConsoleContext, console_context
from web.console.report import channel_name
from web.pages import templates

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console/dashboard", include_in_schema=False)

SECTIONS = {"routing": "Routing", "deadlines": "Deadlines", "satisfaction": "Satisfaction",
            "ingest": "Ingest health"}
PERIODS = (7, 30, 90, 365)
DEFAULT_DAYS = 90


class DeadLetter(Protocol):
    """One record on ``frontdoor.dlq``, as the dashboard shows it."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def origin(self) -> str: ...  # topic/partition/offset it came from
    @property
    def at(self) -> datetime | None: ...
    @property
    def preview(self) -> str: ...  # the record's first bytes, as text


class IngestProbe(Protocol):
    """What the dashboard asks the stream (built by ``frontdoor/`` from the Kafka adapter)."""

    def lag(self) -> dict[str, int]: ...  # stage (consumer group) -> records not yet consumed

    def dead_letters(self, limit: int) -> Sequence[DeadLetter]: ...

    def replay(self, partition: int, offset: int, actor: str) -> str: ...  # where it was sent


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "int"  # text | int | pct (a ratio 0..1) | avg (stars) | link


@dataclass(frozen=True)
class Figure:
    id: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    chart: str | None = None  # line | bar | stacked
    series: tuple[int, ...] = ()  # the columns the chart draws
    note: str = ""
    empty: str = "Nothing in this period."
    palette: str = ""  # "rating": red for 1 star to green for 5

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.name for c in self.columns])
        for row in self.rows:
            writer.writerow(["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v) for v in row])
        return out.getvalue()


def _share_cols(what: str) -> tuple[Column, ...]:
    return (Column(f"{what} (%)", "pct"), Column("Right" if what == "Accuracy" else "On time"),
            Column("Tickets" if what == "Accuracy" else "Answered"))


def _share_row(label: str, share: reporting.Share) -> tuple[Any, ...]:
    return (label, share.ratio, share.part, share.whole)


def routing_section(engine: Any, since: date, until: date, name: Callable[[str], str],
                    today: date) -> tuple[reporting.RoutingFigures, list[Figure]]:
    figures = reporting.routing_figures(engine, since, until, today=today)
    weekly = Figure("routing-weekly", "Accuracy by week",
                    (Column("Week starting", "text"), *_share_cols("Accuracy")),
                    [(f"{monday:%-d %b %Y}", s.ratio, s.part, s.whole) for monday, s in figures.by_week],
                    chart="line", series=(1,))
    by_department = Figure(
        "routing-departments", "Accuracy by the router's department",
        (Column("Department", "text"), *_share_cols("Accuracy")),
        [_share_row(name(d), s) for d, s in sorted(figures.by_department.items(), key=lambda i: name(i[0]))],
        chart="bar", series=(1,))
    by_channel = Figure("routing-channels", "Accuracy by channel",
                        (Column("Channel", "text"), *_share_cols("Accuracy")),
                        [_share_row(channel_name(c), s) for c, s in sorted(figures.by_channel.items())],
                        chart="bar", series=(1,))
    by_model = Figure("routing-models", "Accuracy by model version",
                      (Column("Model version", "text"), *_share_cols("Accuracy")),
                      [_share_row(m, s) for m, s in sorted(figures.by_model.items())],
                      chart="bar", series=(1,))
    routed = sorted({a for a, _ in figures.confusion}, key=name)
    now = sorted({b for _, b in figures.confusion}, key=name)
    confusion = Figure(
        "confusion", "Confusion matrix: the router's department (rows) against the department now (columns)",
        (Column("Router chose", "text"), *(Column(name(b)) for b in now)),
        [(name(a), *(figures.confusion.get((a, b), 0) for b in now)) for a in routed],
        note="The diagonal is right; every other cell is tickets an agent moved.")
    return figures, [weekly, by_department, by_channel, by_model, confusion]


def deadlines_section(engine: Any, since: date, until: date, name: Callable[[str], str],
                      today: date) -> list[Figure]:
    figures = reporting.deadline_figures(engine, since, until, today=today)
    kinds = [k for k in reporting.CLOCK_KINDS
             if k in figures.due_soon or k in figures.breached or k in figures.on_time_by_kind]
    now = Figure("due-now", "Running now: due soon and breached",
                 (Column("Type", "text"), Column("Due soon"), Column("Breached")),
                 [(reporting.CLOCK_NAMES[k], figures.due_soon.get(k, 0), figures.breached.get(k, 0))
                  for k in kinds],
                 chart="stacked", series=(1, 2), note=f"Due soon: within {reporting.DUE_SOON_DAYS} days.",
                 empty="No clock is running.")
    by_kind = Figure("on-time-types", "Answered on time, by type",
                     (Column("Type", "text"), *_share_cols("On time")),
                     [_share_row(reporting.CLOCK_NAMES[k], s) for k, s in figures.on_time_by_kind.items()],
                     chart="bar", series=(1,))
    by_department = Figure("on-time-departments", "Answered on time, by department",
                           (Column("Department", "text"), *_share_cols("On time")),
                           [_share_row(name(d), s) for d, s in sorted(figures.on_time_by_department.items(),
                                                                     key=lambda i: name(i[0]))],
                           chart="bar", series=(1,))
    return [now, by_kind, by_department]


def _comment_rows(comments: Sequence[reporting.Comment], name: Callable[[str], str]) -> list[tuple[Any, ...]]:
    return [(f"{c.at:%-d %b %Y}", c.reference, c.rating, c.comment or "(no comment)",
             ", ".join(name(d) for d in c.departments)) for c in comments]


def satisfaction_section(engine: Any, since: date, until: date, name: Callable[[str], str]) -> list[Figure]:
    figures = reporting.satisfaction_figures(engine, since, until)
    per_department = Figure(
        "satisfaction", "Ratings by department",
        (Column("Department", "text"), Column("Average (out of 5)", "avg"), Column("Ratings"),
         *(Column(f"{n} star{'s' if n > 1 else ''}") for n in range(1, 6))),
        [(name(d), s.average, s.count, *s.distribution)
         for d, s in sorted(figures.by_department.items(), key=lambda i: name(i[0]))],
        chart="stacked", series=(3, 4, 5, 6, 7), palette="rating",
        note="A rating counts for every department that handled the enquiry.")
    comment_columns = (Column("Given", "text"), Column("Reference", "link"), Column("Rating"),
                       Column("Comment", "text"), Column("Departments", "text"))
    low = Figure("low-ratings", "Low ratings (1 or 2 stars)", comment_columns,
                 _comment_rows(figures.low, name),
                 empty="No low ratings in this period.")
    recent = Figure("comments", "Recent comments", comment_columns, _comment_rows(figures.comments, name))
    return [per_department, low, recent]


def ingest_section(engine: Any, now: datetime, store: Any,
                   probe: IngestProbe | None) -> tuple[list[Figure], Sequence[DeadLetter] | None]:
    """The section's figures and the dead letters read (None: no probe, or the broker away)."""
    hours = reporting.messages_per_hour(engine, now=now)
    channels = [c for c in hours if any(hours[c])] or list(reporting.CHANNELS[:3])
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    per_hour = Figure("messages-per-hour", "Messages received per hour, last 24 hours (UTC)",
                      (Column("Hour", "text"), *(Column(channel_name(c)) for c in channels)),
                      [(f"{start + timedelta(hours=i):%H:00}", *(hours[c][i] for c in channels))
                       for i in range(24)],
                      chart="line", series=tuple(range(1, len(channels) + 1)))
    figures = [per_hour]
    shown: Sequence[DeadLetter] | None = None
    if store is not None:
        waiting, oldest = store.backlog()
        age = f"{int((now - oldest).total_seconds())} s" if oldest else "–"
        figures.append(Figure("relay-backlog", "Intake relay backlog",
                              (Column("Stage", "text"), Column("Waiting for Kafka"),
                               Column("Oldest waiting", "text")),
                              [("relay", waiting, age)],
                              note="Messages the web front took and committed that the relay has not yet "
                                   "seen acknowledged by Kafka."))
    if probe is not None:
        try:
            lag = probe.lag()
            figures.append(Figure("consumer-lag", "Consumer lag per stage",
                                  (Column("Stage", "text"), Column("Records behind")),
                                  sorted(lag.items()), chart="bar", series=(1,)))
            letters = probe.dead_letters(200)
            shown = letters
            reasons: dict[str, int] = {}
            for letter in letters:
                reasons[letter.reason] = reasons.get(letter.reason, 0) + 1
            figures.append(Figure("dead-letter-reasons", "Dead letters by reason",
                                  (Column("Reason", "text"), Column("Records")),
                                  sorted(reasons.items(), key=lambda i: -i[1]), chart="bar", series=(1,),
                                  empty="No dead letters."))
        except Exception as exc:  # the broker away must not take the dashboard down
            log.warning("ingest probe failed: %s", exc)
    return figures, shown


# -- routes --------------------------------------------------------------------------------------

def _period(request: Request) -> tuple[int, date, date, date]:
    try:
        days = int(request.query_params.get("days") or DEFAULT_DAYS)
    except ValueError:
        days = DEFAULT_DAYS
    days = days if days in PERIODS else DEFAULT_DAYS
    today = datetime.now(UTC).date()
    return days, today - timedelta(days=days - 1), today + timedelta(days=1), today


def _build(section: str, request: Request, console: ConsoleContext) -> dict[str, Any]:
    days, since, until, today = _period(request)
    name = console.department_name
    context: dict[str, Any] = {"days": days, "since": since, "today": today}
    if section == "routing":
        figures, items = routing_section(console.engine, since, until, name, today)
        context.update(routing=figures, figures=items)
    elif section == "deadlines":
        context["figures"] = deadlines_section(console.engine, since, until, name, today)
    elif section == "satisfaction":
        context["figures"] = satisfaction_section(console.engine, since, until, name)
    elif section == "ingest":
        ctx = getattr(request.app.state, "ctx", None)
        probe = getattr(request.app.state, "ingest_probe", None)
        store = getattr(ctx, "store", None)
        context["figures"], letters = ingest_section(console.engine, datetime.now(UTC), store, probe)
        context["probe"] = probe is not None
        context["letters"] = list(letters[:50]) if letters is not None else None
    else:
        raise ForbiddenError()
    return context


@router.get("", response_class=HTMLResponse)
async def dashboard_home(_: SignedIn = requires(Permission.DASHBOARD)) -> Response:
    return RedirectResponse("/console/dashboard/routing", status_code=303)


@router.get("/{section}", response_class=HTMLResponse)
async def dashboard_section(request: Request, section: str, who: SignedIn = requires(Permission.DASHBOARD),
                            console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    context = await run_in_threadpool(_build, section, request, console)
    nav = [{"text": title, "href": f"/console/dashboard/{key}?days={context['days']}",
            "active": key == section} for key, title in SECTIONS.items()]
    nav.append({"text": "Monthly report", "href": "/console/report", "active": False})
    return templates.TemplateResponse(request, "console/dashboard/section.html", {
        **context, "who": who, "section": section, "title": SECTIONS[section], "nav": nav,
        "periods": PERIODS, "department_name": console.department_name,
        "may_replay": who.account.may(Permission.OPS),
        "done": request.query_params.get("replayed"),
    })


@router.get("/{section}/{figure}.csv")
async def figure_csv(request: Request, section: str, figure: str,
                     _: SignedIn = requires(Permission.DASHBOARD),
                     console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    context = await run_in_threadpool(_build, section, request, console)
    for item in context["figures"]:
        if item.id == figure:
            return Response(item.csv(), media_type="text/csv; charset=utf-8", headers={
                "content-disposition": f'attachment; filename="{figure}-{context["today"]}.csv"',
                "cache-control": "private, no-store"})
    raise ForbiddenError()


@router.post("/ingest/dead-letters/{partition}/{offset}/replay")
async def replay(request: Request, partition: int, offset: int, who: SignedIn = requires(Permission.OPS),
                 console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    """Send one dead letter back to the topic it came from; the probe records who and when."""
    probe: IngestProbe | None = getattr(request.app.state, "ingest_probe", None)
    if probe is None:
        raise ForbiddenError()
    try:
        target = await run_in_threadpool(probe.replay, partition, offset, who.account.email)
    except LookupError as exc:
        return templates.TemplateResponse(request, "console/error.html", {
            "title": "That dead letter cannot be replayed", "text": str(exc), "who": who}, status_code=404)
    log.info("dead letter %d/%d replayed to %s by %s", partition, offset, target, who.account.email)
    return RedirectResponse(f"/console/dashboard/ingest?replayed={partition}:{offset}#dead-letters",
                            status_code=303)
