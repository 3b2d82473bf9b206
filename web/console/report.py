"""The committee report of a month: a console page (ops and supervisors) and the same figures as
one self-contained printable file for ``frontdoor report``. The figures come from
:mod:`tickets.reporting`; this module only words and lays them out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tickets import reporting
from tickets.accounts import Permission, SignedIn
from web.console.auth import requires
from web.console.context import ConsoleContext, console_context
from web.pages import templates

router = APIRouter(prefix="/console", include_in_schema=False)

CHANNEL_NAMES = {"email": "Email", "sms": "Text message", "webform": "Web form", "phone": "Phone",
                 "walk_in": "In person"}


def month_name(month: str) -> str:
    return datetime.strptime(month, "%Y-%m").strftime("%B %Y")


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel.replace("_", " ").capitalize())


def report_context(report: reporting.Report, name: Callable[[str], str]) -> dict[str, Any]:
    channels = list(reporting.CHANNELS) + sorted(
        (set(report.month.by_channel) | set(report.previous.by_channel)) - set(reporting.CHANNELS))
    return {"r": report, "name": name, "month_name": month_name, "channel_name": channel_name,
            "clock_names": reporting.CLOCK_NAMES, "channels": channels}


def render_standalone(report: reporting.Report, names: Mapping[str, str] | None = None) -> str:
    """The report as one HTML file with its styles inline and no script (it prints as it is)."""
    def name(department: str) -> str:
        return (names or {}).get(department) or department.replace("_", " ").capitalize()

    template = templates.env.get_template("report/standalone.html")
    return template.render(**report_context(report, name),
                           produced=datetime.now(UTC).strftime("%-d %B %Y at %H:%M UTC"))


def last_month(today: date | None = None) -> str:
    today = today or datetime.now(UTC).date()
    return reporting.previous_month(f"{today.year:04d}-{today.month:02d}")


@router.get("/report", response_class=HTMLResponse)
async def report_page(request: Request, month: str = "", who: SignedIn = requires(Permission.DASHBOARD),
                      console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    chosen = month or last_month()
    try:
        reporting.month_bounds(chosen)
    except ValueError:
        chosen = last_month()
    report = await run_in_threadpool(reporting.month_report, console.engine, chosen)
    return templates.TemplateResponse(request, "console/dashboard/report.html", {
        **report_context(report, console.department_name), "who": who, "chosen": chosen,
        "previous_link": reporting.previous_month(chosen),
    })
