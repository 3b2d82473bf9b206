"""Queues: triage, each department, mine, unassigned, due soon, breached; and search.

Filtering, sorting and paging happen in SQL (:mod:`tickets.queues`); the table's rows are also
served alone (``…/rows``) so htmx can poll them and new work appears without a reload.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tickets import queues as reads
from tickets.accounts import Permission, SignedIn
from tickets.repository import TicketRepository
from web.console.auth import ForbiddenError, requires
from web.console.context import ConsoleContext, console_context
from web.pages import templates

router = APIRouter(prefix="/console", include_in_schema=False)

QUEUE_NAMES = {
    "triage": "Triage",
    "mine": "Mine",
    "unassigned": "Unassigned",
    "due_soon": "Due soon",
    "breached": "Breached",
}
STATUSES = ("new", "open", "awaiting_resident", "reopened", "resolved", "closed")
CHANNELS = ("email", "sms", "webform", "phone", "walk_in")
TYPES = ("service_request", "complaint", "compliment", "foi", "sar", "member_enquiry", "general")
FILTERS = ("department", "status", "channel", "type", "priority", "deadline")
POLL_SECONDS = 15
COUNTS_TTL_S = 10.0
"""The sub navigation's counts are recounted at most this often per viewer (they scan every open
ticket; a queue's own rows are always fresh)."""


def _counts(console: ConsoleContext, user: str, scope: tuple[str, ...] | None,
            departments: list[str]) -> dict[str, int]:
    memos = console.counts_memo  # one per app (database), never shared between them
    key = (user, scope, tuple(departments))
    now = time.monotonic()
    memo = memos.get(key)
    if memo is not None and memo[0] > now:
        return memo[1]
    counts = reads.queue_counts(console.engine, user=user, departments=scope, today=datetime.now(UTC).date(),
                                department_ids=departments)
    if len(memos) > 1000:
        memos.clear()
    memos[key] = (now + COUNTS_TTL_S, counts)
    return counts


def scope_of(who: SignedIn, console: ConsoleContext) -> tuple[str, ...] | None:
    """The departments whose tickets this account sees (None: all)."""
    return who.account.departments if console.scoping and who.account.scoped else None


def _query(queue: str, params: dict[str, str]) -> reads.QueueQuery:
    def choice(name: str, allowed: tuple[str, ...] | None = None) -> str | None:
        value = params.get(name) or None
        return value if value is None or allowed is None or value in allowed else None

    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    priority = {"yes": True, "no": False}.get(params.get("priority") or "")
    return reads.QueueQuery(
        queue=queue, department=choice("department"), status=choice("status", STATUSES),
        channel=choice("channel", CHANNELS), enquiry_type=choice("type", TYPES), priority=priority,
        deadline=choice("deadline", ("due_soon", "breached")),
        sort=params.get("sort") or "updated" if params.get("sort") in reads.SORTS else "updated",
        descending=params.get("order") != "asc", page=page)


def _check_queue(queue: str, who: SignedIn, console: ConsoleContext) -> None:
    if queue in QUEUE_NAMES:
        return
    if queue.startswith("department:"):
        department = queue.split(":", 1)[1]
        scope = scope_of(who, console)
        if department in console.departments and (scope is None or department in scope):
            return
    raise ForbiddenError()


def _url(queue: str, params: dict[str, str], **changes: Any) -> str:
    merged = {**params, **{k: str(v) for k, v in changes.items() if v is not None}}
    merged = {k: v for k, v in merged.items() if v}
    return f"/console/queues/{queue}" + (f"?{urlencode(merged)}" if merged else "")


def _table_context(request: Request, queue: str, who: SignedIn, console: ConsoleContext,
                   page: reads.QueuePage, params: dict[str, str]) -> dict[str, Any]:
    query = _query(queue, params)

    def sort_link(column: str) -> dict[str, str]:
        active = query.sort == column
        order = "asc" if active and query.descending else "desc"
        aria = ("descending" if query.descending else "ascending") if active else "none"
        return {"href": _url(queue, params, sort=column, order=order, page=1), "aria": aria}

    return {
        "queue": queue, "page": page, "params": params, "who": who,
        "sorts": {c: sort_link(c) for c in ("reference", "updated", "due", "status")},
        "previous": _url(queue, params, page=page.page - 1) if page.page > 1 else None,
        "next": _url(queue, params, page=page.page + 1) if page.page < page.pages else None,
        "rows_url": f"/console/queues/{queue}/rows" + (f"?{urlencode(params)}" if params else ""),
        "poll_seconds": POLL_SECONDS, "department_name": console.department_name,
        "today": datetime.now(UTC).date(),
    }


@router.get("", response_class=HTMLResponse)
async def home(who: SignedIn = requires(Permission.VIEW_TICKETS),
               console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    scope = scope_of(who, console)
    first = f"department:{scope[0]}" if scope else "triage"
    return RedirectResponse(f"/console/queues/{first}", status_code=303)


@router.get("/queues/{queue}", response_class=HTMLResponse)
async def queue_view(request: Request, queue: str, who: SignedIn = requires(Permission.VIEW_TICKETS),
                     console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    _check_queue(queue, who, console)
    params = {k: v for k, v in request.query_params.items() if k in (*FILTERS, "sort", "order", "page")}
    scope = scope_of(who, console)
    today = datetime.now(UTC).date()
    departments = [d for d in console.departments if scope is None or d in scope]

    def load() -> tuple[reads.QueuePage, dict[str, int]]:
        page = reads.queue_page(console.engine, _query(queue, params), user=who.account.email,
                                departments=scope, today=today)
        return page, _counts(console, who.account.email, scope, departments)

    page, counts = await run_in_threadpool(load)
    title = QUEUE_NAMES.get(queue) or console.department_name(queue.split(":", 1)[1])
    nav = [{"text": f"{name} ({counts.get(q, 0)})", "href": f"/console/queues/{q}", "active": q == queue}
           for q, name in QUEUE_NAMES.items()]
    if who.account.may(Permission.MERGE):  # supervisors decide the suggested resident merges
        waiting = await run_in_threadpool(TicketRepository(console.engine).open_suggestion_count)
        nav.append({"text": f"Possible duplicates ({waiting})", "href": "/console/residents/duplicates",
                    "active": False})
    dept_nav = [{"text": f"{console.department_name(d)} ({counts.get(f'department:{d}', 0)})",
                 "href": f"/console/queues/department:{d}", "active": queue == f"department:{d}"}
                for d in departments
                # an officer sees each of theirs; others see the departments with open work
                if scope is not None or counts.get(f"department:{d}", 0) or queue == f"department:{d}"]
    return templates.TemplateResponse(request, "console/queues/queue.html", {
        **_table_context(request, queue, who, console, page, params),
        "title": title, "nav": nav, "dept_nav": dept_nav,
        "departments": [(d, console.department_name(d)) for d in departments],
        "statuses": STATUSES, "channels": CHANNELS, "types": TYPES,
    })


@router.get("/queues/{queue}/rows", response_class=HTMLResponse)
async def queue_rows(request: Request, queue: str, who: SignedIn = requires(Permission.VIEW_TICKETS),
                     console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    """The table alone, for htmx's polling: new work appears without a reload."""
    _check_queue(queue, who, console)
    params = {k: v for k, v in request.query_params.items() if k in (*FILTERS, "sort", "order", "page")}
    page = await run_in_threadpool(reads.queue_page, console.engine, _query(queue, params),
                                   user=who.account.email, departments=scope_of(who, console),
                                   today=datetime.now(UTC).date())
    return templates.TemplateResponse(request, "console/queues/_table.html",
                                      _table_context(request, queue, who, console, page, params))


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, q: str = "", who: SignedIn = requires(Permission.VIEW_TICKETS),
                 console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    rows = await run_in_threadpool(reads.search, console.engine, q[:200], departments=scope_of(who, console))
    return templates.TemplateResponse(request, "console/queues/search.html", {
        "who": who, "q": q, "rows": rows, "department_name": console.department_name,
        "today": datetime.now(UTC).date(),
    })
