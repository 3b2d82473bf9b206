"""The ticket page and its actions: reply, note, move or add a department (a correction),
assign, status, copy in, link, merge (confirmed, then undoable), attachments.

Every route resolves the reference through :func:`_ticket_id`, which answers 403 for a ticket
outside an officer's departments, so a guessed URL (ticket, action or attachment) shows
nothing. Actions answer with a redirect back to the page (so a reload does not repeat them) or,
when refused, the page again with an error summary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from schemas.inbound import BlobRef
from tickets import casework, reporting
from tickets import queues as reads
from tickets.accounts import Permission, SignedIn
from tickets.outbox import OutboxPolicy
from web.console.auth import ForbiddenError, requires
from web.console.context import ConsoleContext, console_context
from web.console.email_html import sanitise
from web.console.queues import scope_of
from web.pages import templates

router = APIRouter(prefix="/console", include_in_schema=False)

STATUS_CHOICES = ("open", "awaiting_resident", "resolved", "closed", "reopened")
DONE = {
    "note": "Note added",
    "reply": "Reply queued: it is sent on the resident's channel",
    "callback": "Call-back recorded on the ticket",
    "move": "Ticket moved: the correction is recorded",
    "add": "Department added: the correction is recorded",
    "assign": "Assignment changed",
    "status": "Status changed",
    "copy": "Copied in",
    "link": "Tickets linked",
    "merge": "Tickets merged",
    "unmerge": "Merge undone",
}


class NotFoundError(Exception):
    """No such ticket (for someone who may see every ticket): a 404 page."""


async def _ticket_id(reference: str, who: SignedIn, console: ConsoleContext) -> int:
    ticket_id = await run_in_threadpool(reads.find_ticket_id, console.engine, reference)
    if ticket_id is None:
        raise ForbiddenError() if scope_of(who, console) is not None else NotFoundError()
    scope = scope_of(who, console)
    if scope is not None and not await run_in_threadpool(reads.visible, console.engine, ticket_id, scope):
        raise ForbiddenError()
    return ticket_id


def _page(request: Request, who: SignedIn, console: ConsoleContext, detail: reads.TicketDetail, *,
          errors: dict[str, str] | None = None, status: int = 200, values: dict[str, str] | None = None,
          show_images: int | None = None) -> HTMLResponse:
    bodies: dict[int, Any] = {}
    for item in detail.history:
        message = item.message
        if message is not None and message.body_html:
            bodies[message.id] = sanitise(message.body_html, show_images=show_images == message.id)
    today = datetime.now(UTC).date()
    departments = [(d, console.department_name(d)) for d in console.departments]
    response = templates.TemplateResponse(request, "console/tickets/ticket.html", {
        "who": who, "t": detail, "bodies": bodies, "errors": errors or {}, "values": values or {},
        "done": DONE.get(request.query_params.get("done", "")), "department_name": console.department_name,
        "departments": departments, "statuses": STATUS_CHOICES, "today": today,
        "may_merge": who.account.may(Permission.MERGE), "may_work": who.account.may(Permission.WORK_TICKETS),
        "may_reassign": who.account.may(Permission.REASSIGN),
        "feedback": reporting.ticket_feedback(console.engine, detail.id),  # a low rating stands out
    }, status_code=status)
    if show_images is not None:  # the agent asked: this view may load the message's https images
        response.headers["content-security-policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
            "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; object-src 'none'")
    return response


async def _detail(ticket_id: int, who: SignedIn, console: ConsoleContext) -> reads.TicketDetail:
    detail = await run_in_threadpool(reads.ticket_detail, console.engine, ticket_id,
                                     departments=scope_of(who, console))
    if detail is None:
        raise ForbiddenError()
    return detail


@router.get("/tickets/{reference}", response_class=HTMLResponse)
async def ticket_page(request: Request, reference: str, images: int | None = None,
                      who: SignedIn = requires(Permission.VIEW_TICKETS),
                      console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    ticket_id = await _ticket_id(reference, who, console)
    detail = await _detail(ticket_id, who, console)
    if detail.reference != reference.upper():  # an alias: show the ticket under its own reference
        return RedirectResponse(f"/console/tickets/{detail.reference}", status_code=303)
    return _page(request, who, console, detail, show_images=images)


async def _act(request: Request, reference: str, who: SignedIn, console: ConsoleContext,
               action: Any, done: str, field: str) -> Response:
    ticket_id = await _ticket_id(reference, who, console)
    form = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        outcome = await run_in_threadpool(action, ticket_id, form)
    except casework.CaseworkError as exc:
        detail = await _detail(ticket_id, who, console)
        return _page(request, who, console, detail, errors={field: str(exc)}, status=422, values=form)
    if isinstance(outcome, str) and outcome.startswith("/"):
        return RedirectResponse(outcome, status_code=303)
    done = outcome if isinstance(outcome, str) and outcome in DONE else done
    return RedirectResponse(f"/console/tickets/{quote(reference.upper())}?done={done}#main-content",
                            status_code=303)


@router.post("/tickets/{reference}/notes")
async def add_note(request: Request, reference: str, who: SignedIn = requires(Permission.WORK_TICKETS),
                   console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    def action(ticket_id: int, form: dict[str, str]) -> None:
        casework.add_note(console.engine, ticket_id, author=who.account.email, body=form.get("note", ""))
    return await _act(request, reference, who, console, action, "note", "note")


@router.post("/tickets/{reference}/reply")
async def reply(request: Request, reference: str, who: SignedIn = requires(Permission.WORK_TICKETS),
                console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    def action(ticket_id: int, form: dict[str, str]) -> str:
        outcome = casework.reply(console.engine, ticket_id, author=who.account.email,
                                 body=form.get("reply", ""), policy=console.outbox or OutboxPolicy(),
                                 idempotency_key=form.get("idempotency_key") or None)
        return "callback" if outcome.channel == "callback" else "reply"
    return await _act(request, reference, who, console, action, "reply", "reply")


@router.post("/tickets/{reference}/move")
async def move(request: Request, reference: str, who: SignedIn = requires(Permission.WORK_TICKETS),
               console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    def action(ticket_id: int, form: dict[str, str]) -> str:
        to = form.get("department", "")
        if to not in console.departments:
            raise casework.CaseworkError("Choose the department")
        keep = form.get("mode") == "add"
        casework.move(console.engine, ticket_id, actor=who.account.email, to=to,
                      reason=form.get("reason", ""), keep=keep)
        return "add" if keep else "move"
    return await _act(request, reference, who, console, action, "move", "department")


@router.post("/tickets/{reference}/assign")
async def assign(request: Request, reference: str, who: SignedIn = requires(Permission.WORK_TICKETS),
                 console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    def action(ticket_id: int, form: dict[str, str]) -> None:
        to = form.get("assignee", "").strip().lower() or None
        if to not in (None, who.account.email) and not who.account.may(Permission.REASSIGN):
            raise casework.CaseworkError("Only a supervisor assigns work to someone else: take it yourself")
        casework.assign(console.engine, ticket_id, actor=who.account.email, to=to)
    return await _act(request, reference, who, console, action, "assign", "assignee")


@router.post("/tickets/{reference}/status")
async def change_status(request: Request, reference: str, who: SignedIn = requires(Permission.WORK_TICKETS),
                        console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    def action(ticket_id: int, form: dict[str, str]) -> None:
        casework.change_status(console.engine, ticket_id, actor=who.account.email,
                               status=form.get("status", ""), policy=console.outbox)
    return await _act(request, reference, who, console, action, "status", "status")


@router.post("/tickets/{reference}/copy-in")
async def copy_in(request: Request, reference: str, who: SignedIn = requires(Permission.WORK_TICKETS),
                  console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    def action(ticket_id: int, form: dict[str, str]) -> None:
        casework.copy_in(console.engine, ticket_id, actor=who.account.email, address=form.get("address", ""))
    return await _act(request, reference, who, console, action, "copy", "address")


@router.post("/tickets/{reference}/link")
async def link(request: Request, reference: str, who: SignedIn = requires(Permission.WORK_TICKETS),
               console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    other = await _other(request, "other", who, console)

    def action(ticket_id: int, form: dict[str, str]) -> None:
        casework.link(console.engine, ticket_id, actor=who.account.email, other_id=other,
                      reason=form.get("reason", ""))
    return await _act(request, reference, who, console, action, "link", "other")


async def _other(request: Request, field: str, who: SignedIn, console: ConsoleContext) -> int:
    """The other ticket a form names; 0 (refused by the rules) when there is none to see."""
    value = str((await request.form()).get(field) or "").strip()
    if not value:
        return 0
    try:
        return await _ticket_id(value, who, console)
    except (ForbiddenError, NotFoundError):
        return 0


@router.get("/tickets/{reference}/merge", response_class=HTMLResponse)
async def merge_confirm(request: Request, reference: str, into: str = "",
                        who: SignedIn = requires(Permission.MERGE),
                        console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    """The confirm step: both tickets side by side before anything changes."""
    source = await _detail(await _ticket_id(reference, who, console), who, console)
    try:
        target = await _detail(await _ticket_id(into, who, console), who, console) if into else None
    except (ForbiddenError, NotFoundError):
        target = None
    if target is None or target.id == source.id:
        return _page(request, who, console, source, status=422, values={"into": into},
                     errors={"into": "Enter the reference of another ticket to merge this one into"})
    return templates.TemplateResponse(request, "console/tickets/merge.html", {
        "who": who, "source": source, "target": target, "department_name": console.department_name,
    })


@router.post("/tickets/{reference}/merge")
async def merge(request: Request, reference: str, who: SignedIn = requires(Permission.MERGE),
                console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    target = await _other(request, "into", who, console)

    def action(ticket_id: int, form: dict[str, str]) -> str:
        if form.get("confirm") != "yes":
            raise casework.CaseworkError("Confirm the merge")
        casework.merge(console.engine, ticket_id, target, actor=who.account.email,
                       reason=form.get("reason", ""))
        return f"/console/tickets/{quote(form.get('into', '').upper())}?done=merge#main-content"
    return await _act(request, reference, who, console, action, "merge", "into")


@router.post("/tickets/{reference}/merges/{merge_id}/undo")
async def unmerge(request: Request, reference: str, merge_id: int, who: SignedIn = requires(Permission.MERGE),
                  console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    def action(ticket_id: int, form: dict[str, str]) -> None:
        detail = reads.ticket_detail(console.engine, ticket_id, departments=scope_of(who, console))
        if detail is None or merge_id not in {m[0] for m in detail.merges}:
            raise casework.CaseworkError("That merge is not one of this ticket's")
        casework.unmerge(console.engine, merge_id, actor=who.account.email)
    return await _act(request, reference, who, console, action, "unmerge", "merge")


@router.get("/tickets/{reference}/messages/{message_id}/attachments/{index}")
async def attachment(reference: str, message_id: int, index: int,
                     who: SignedIn = requires(Permission.VIEW_TICKETS),
                     console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    """An attachment, only for someone who may see the ticket it belongs to (as a download)."""
    ticket_id = await _ticket_id(reference, who, console)
    found = await run_in_threadpool(reads.attachment_of, console.engine, message_id, index)
    if found is None:
        raise NotFoundError()
    owner, stored = found
    if owner != ticket_id:  # a message of another ticket named under this one's reference
        raise ForbiddenError()
    blob = BlobRef.model_validate(stored.get("blob") or stored)
    def read() -> bytes:
        with console.blobs.open(blob) as stream:
            return stream.read()

    data = await run_in_threadpool(read)
    name = str(stored.get("filename") or "attachment").replace('"', "")
    return Response(data, media_type="application/octet-stream", headers={
        "content-disposition": f"attachment; filename=\"{quote(name)}\"; filename*=UTF-8''{quote(name)}",
        "x-content-type-options": "nosniff", "cache-control": "private, no-store"})
