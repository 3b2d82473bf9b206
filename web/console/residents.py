"""Residents: one resident's whole history, and the possible duplicates a supervisor resolves.

The resident page lists every address and number the resident holds, each of their tickets
(newest first) and the merges on their record, with "Undo" for supervisors. An officer sees
only the tickets of their departments, and a resident with none of those is refused exactly as
a ticket outside them is (403, also for an id that does not exist), so guessing ids learns
nothing.

The duplicates queue holds the suggested merges the ticket stage wrote when one message gave
addresses or numbers held by two residents (:mod:`tickets.identity`): a supervisor merges them
(the newer into the older, after a confirm step) or records that they are not the same person.
Reads come from :class:`tickets.repository.TicketRepository`; changes from :mod:`tickets.casework`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tickets import casework
from tickets.accounts import Permission, SignedIn
from tickets.repository import ResidentView, SuggestionView, TicketRepository
from web.console.auth import ForbiddenError, requires
from web.console.context import ConsoleContext, console_context
from web.console.queues import scope_of
from web.console.tickets import NotFoundError
from web.pages import templates

router = APIRouter(prefix="/console/residents", include_in_schema=False)

PER_PAGE = 20
DONE = {
    "merge": "Residents merged: the newer record's enquiries, addresses and numbers are on this one now",
    "unmerge": "Merge undone: the enquiries, addresses and numbers are back where they were",
    "reject": "Recorded: they are not the same person. The suggestion has left the queue",
    "already": "They had already become one resident by another merge: the suggestion is resolved",
}
CHANNELS = {"email": "Email", "sms": "Text message", "webform": "Web form", "phone": "Phone",
            "walk_in": "In person"}


def _repository(console: ConsoleContext) -> TicketRepository:
    return TicketRepository(console.engine)


def _form(raw: Any) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items() if isinstance(v, str)}


# -- the duplicates queue (supervisors) ---------------------------------------------------------

def _render_duplicates(request: Request, who: SignedIn, console: ConsoleContext, total: int,
                       suggestions: tuple[SuggestionView, ...], *, page: int, errors: dict[str, str] | None,
                       status: int) -> Response:
    pages = max(1, -(-total // PER_PAGE))
    return templates.TemplateResponse(request, "console/residents/duplicates.html", {
        "who": who, "total": total, "suggestions": suggestions, "errors": errors or {},
        "done": DONE.get(request.query_params.get("done", "")), "page": page, "pages": pages,
        "previous": f"/console/residents/duplicates?page={page - 1}" if page > 1 else None,
        "next": f"/console/residents/duplicates?page={page + 1}" if page < pages else None,
        "department_name": console.department_name, "channel_name": channel_name,
    }, status_code=status)


@router.get("/duplicates", response_class=HTMLResponse)
async def duplicates(request: Request, page: int = 1, who: SignedIn = requires(Permission.MERGE),
                     console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    page = max(1, page)
    repository = _repository(console)
    total = await run_in_threadpool(repository.open_suggestion_count)
    suggestions = await run_in_threadpool(repository.open_suggestions, page=page, per_page=PER_PAGE)
    return _render_duplicates(request, who, console, total, suggestions, page=page, errors=None, status=200)


async def _refused(request: Request, who: SignedIn, console: ConsoleContext, message: str,
                   suggestion_id: int) -> Response:
    repository = _repository(console)
    total = await run_in_threadpool(repository.open_suggestion_count)
    suggestions = await run_in_threadpool(repository.open_suggestions, page=1, per_page=PER_PAGE)
    return _render_duplicates(request, who, console, total, suggestions, page=1,
                              errors={f"suggestion-{suggestion_id}": message}, status=422)


@router.get("/duplicates/{suggestion_id}/merge", response_class=HTMLResponse)
async def merge_confirm(request: Request, suggestion_id: int, who: SignedIn = requires(Permission.MERGE),
                        console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    """The confirm step: both residents side by side, and which one stays, before anything changes."""
    suggestion = await run_in_threadpool(_repository(console).suggestion, suggestion_id)
    if suggestion is None:
        raise NotFoundError()
    return templates.TemplateResponse(request, "console/residents/merge.html", {
        "who": who, "s": suggestion, "errors": {}, "values": {}, "department_name": console.department_name,
    })


@router.post("/duplicates/{suggestion_id}/merge")
async def merge(request: Request, suggestion_id: int, who: SignedIn = requires(Permission.MERGE),
                console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    form = _form(await request.form())
    if form.get("confirm") != "yes":
        return await _refused(request, who, console, "Confirm the merge on its own page", suggestion_id)
    try:
        survivor = await run_in_threadpool(lambda: casework.merge_suggested(
            console.engine, suggestion_id, actor=who.account.email, reason=form.get("reason", "")))
    except casework.CaseworkError as exc:
        return await _refused(request, who, console, str(exc).capitalize(), suggestion_id)
    if survivor is None:
        return RedirectResponse("/console/residents/duplicates?done=already", status_code=303)
    return RedirectResponse(f"/console/residents/{survivor}?done=merge#main-content", status_code=303)


@router.post("/duplicates/{suggestion_id}/reject")
async def reject(request: Request, suggestion_id: int, who: SignedIn = requires(Permission.MERGE),
                 console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    try:
        await run_in_threadpool(lambda: casework.reject_suggestion(console.engine, suggestion_id,
                                                                   actor=who.account.email))
    except casework.CaseworkError as exc:
        return await _refused(request, who, console, str(exc).capitalize(), suggestion_id)
    return RedirectResponse("/console/residents/duplicates?done=reject#main-content", status_code=303)


@router.post("/merges/{merge_id}/undo")
async def unmerge(request: Request, merge_id: int, who: SignedIn = requires(Permission.MERGE),
                  console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    form = _form(await request.form())
    try:
        source = await run_in_threadpool(lambda: casework.unmerge_residents(console.engine, merge_id,
                                                                            actor=who.account.email))
    except casework.CaseworkError as exc:
        shown = form.get("resident", "")
        if not shown.isdigit():
            raise NotFoundError() from None
        return await _resident_page(request, int(shown), who, console,
                                    errors={"merges": str(exc).capitalize()}, status=422)
    back = form.get("resident", "")
    target = back if back.isdigit() else str(source)
    return RedirectResponse(f"/console/residents/{target}?done=unmerge#main-content", status_code=303)


# -- one resident -------------------------------------------------------------------------------

def channel_name(channel: str) -> str:
    return CHANNELS.get(channel, channel.replace("_", " ").capitalize())


async def _resident_page(request: Request, resident_id: int, who: SignedIn, console: ConsoleContext, *,
                         errors: dict[str, str] | None = None, status: int = 200) -> Response:
    repository = _repository(console)
    scope = scope_of(who, console)
    resident: ResidentView | None = await run_in_threadpool(repository.resident, resident_id,
                                                            departments=scope)
    if resident is None:
        raise ForbiddenError() if scope is not None else NotFoundError()
    if resident.merged_into_id is not None and not errors:
        survivor = await run_in_threadpool(repository.survivor, resident_id)
        return RedirectResponse(f"/console/residents/{survivor}", status_code=303)
    if scope is not None and not resident.tickets:
        raise ForbiddenError()  # none of theirs: as a ticket outside their departments
    merges = await run_in_threadpool(repository.resident_merges, resident_id)
    return templates.TemplateResponse(request, "console/residents/resident.html", {
        "who": who, "r": resident, "merges": merges, "errors": errors or {},
        "done": DONE.get(request.query_params.get("done", "")),
        "may_merge": who.account.may(Permission.MERGE), "scoped": scope is not None,
        "department_name": console.department_name, "channel_name": channel_name,
        "today": datetime.now(UTC).date(),
    }, status_code=status)


@router.get("/{resident_id}", response_class=HTMLResponse)
async def resident_page(request: Request, resident_id: int, who: SignedIn = requires(Permission.VIEW_TICKETS),
                        console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    return await _resident_page(request, resident_id, who, console)
