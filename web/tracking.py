"""Residents' tracking (``/track``): status, timeline, a message or photo, and a rating.

The acknowledgement's link carries the reference and the secret (``/track?ref=…&secret=…``);
the form accepts them typed. Either way, once both match, the pair goes into a signed,
HTTP-only cookie scoped to ``/track`` and the browser is sent to ``/track/enquiry``, so the
secret leaves the address bar and history at once; every later request checks it again
against the stored hash (a secret issued anew, or an erased ticket, ends access).

No enumeration: a wrong reference, a wrong secret and another ticket's secret get the same
page, status and words, from the same code path (:func:`tickets.tracking.find_tracked`
checks a dummy hash when there is no ticket); look-ups are counted per client address in
the intake store (a resident needs one: the cookie carries them on), and past the limit every
look-up, right or wrong, gets the same 429.

A message or photo written here goes through the intake, exactly as the contact form does:
committed in the intake outbox before we answer, put on the stream by the relay, routed,
and threaded by the ticket stage into this ticket by its reference (the sender is the
resident's own address or number, which the reference rule accepts). We chose that over
writing a ticket message directly because the ticket stage stays the one writer of messages
(dedupe, reopening a finished ticket, clocks restarting on a resident's reply, the audit
events all happen there), and the message is counted on the stream like every other.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from connectors.webform import ALLOWED_TYPES, Upload, attachment, check_upload, size_label, webform_dedupe_key
from ingest.intake import fingerprint
from schemas.inbound import Channel, InboundMessage, Source, Threading
from tickets import tracking
from web.context import RETRY_AFTER_S, WebContext, context
from web.pages import templates
from web.security import CSRF_COOKIE

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

TRACK_COOKIE = "fd_track"
MAX_MESSAGE = 5000
NOT_FOUND = ("We could not find an enquiry with that reference and code. Check both against your "
             "acknowledgement: the code is case sensitive")
TOO_MANY = "Too many tries from your connection: try again in {minutes} minutes"


def _console(request: Request) -> Any:
    return request.app.state.console


def _serializer(ctx: WebContext) -> URLSafeSerializer:
    return URLSafeSerializer(ctx.csrf.serializer.secret_key, salt="frontdoor.track")


def _csrf(request: Request, ctx: WebContext) -> tuple[str, str]:
    cookie = request.cookies.get(CSRF_COOKIE) or ctx.csrf.new_cookie()
    return cookie, ctx.csrf.token_for(cookie)


def _with_csrf_cookie(response: Response, ctx: WebContext, cookie: str) -> Response:
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", max_age=ctx.csrf.max_age_s,
                        secure=ctx.config.public_url.startswith("https://"))
    response.headers["cache-control"] = "no-store"
    return response


def _find_page(request: Request, ctx: WebContext, *, reference: str = "", error: str | None = None,
               status: int = 200) -> Response:
    cookie, token = _csrf(request, ctx)
    response = templates.TemplateResponse(request, "public/track_find.html", {
        "reference": reference, "errors": {"reference": error} if error else {}, "csrf_token": token,
        "service_url": "/track",
    }, status_code=status)
    return _with_csrf_cookie(response, ctx, cookie)


async def _look_up(request: Request, ctx: WebContext, reference: str, secret: str) -> Response:
    """The one path for a typed or linked reference and secret: same answer for every failure."""
    wait = await run_in_threadpool(ctx.store.hit, f"track:{ctx.client(request)}",
                                   ctx.config.track_rate_limit, ctx.config.track_rate_window_s)
    if wait is not None:  # before the look-up: past the limit, right and wrong answer alike
        return _find_page(request, ctx, reference=reference, status=429,
                          error=TOO_MANY.format(minutes=max(1, wait // 60)))
    ticket_id = await run_in_threadpool(tracking.find_tracked, _console(request).engine, reference, secret)
    if ticket_id is None:
        return _find_page(request, ctx, reference=reference, error=NOT_FOUND, status=404)
    response = RedirectResponse("/track/enquiry", status_code=303)
    response.set_cookie(TRACK_COOKIE, _serializer(ctx).dumps([reference.strip(), secret.strip()]),
                        httponly=True, samesite="lax", path="/track",
                        secure=ctx.config.public_url.startswith("https://"))
    response.headers["cache-control"] = "no-store"
    return response


async def _tracked(request: Request, ctx: WebContext) -> tuple[int, str] | None:
    """(ticket id, reference as given) from the signed cookie, checked again against the hash."""
    raw = request.cookies.get(TRACK_COOKIE)
    if not raw:
        return None
    try:
        reference, secret = _serializer(ctx).loads(raw)
    except (BadData, ValueError, TypeError):
        return None
    ticket_id = await run_in_threadpool(tracking.find_tracked, _console(request).engine, str(reference),
                                        str(secret))
    return (ticket_id, str(reference)) if ticket_id is not None else None


@router.get("/track", response_class=HTMLResponse)
async def track(request: Request, ref: str = "", secret: str = "",
                ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    if ref or secret:  # the acknowledgement's link
        return await _look_up(request, ctx, ref[:40], secret[:200])
    return _find_page(request, ctx)


@router.post("/track")
async def track_typed(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    form = await request.form()
    reference = str(form.get("reference") or "")[:40]
    secret = str(form.get("secret") or "")[:200]
    if not ctx.csrf.check(str(form.get("csrf_token") or ""), request.cookies.get(CSRF_COOKIE)):
        return _find_page(request, ctx, reference=reference, status=400,
                          error="The page had expired: enter your reference and code again")
    if not reference.strip() or not secret.strip():
        return _find_page(request, ctx, reference=reference, status=422,
                          error="Enter the reference number and the code from your acknowledgement")
    return await _look_up(request, ctx, reference, secret)


def _status_page(request: Request, ctx: WebContext, view: tracking.TrackingView, *,
                 errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                 status: int = 200) -> Response:
    cookie, token = _csrf(request, ctx)
    done = {"sent": "Your message is sent. It joins your enquiry in a minute or two.",
            "rated": "Thank you for your feedback."}.get(request.query_params.get("done", ""))
    response = templates.TemplateResponse(request, "public/track_status.html", {
        "t": view, "errors": errors or {}, "values": values or {}, "csrf_token": token, "done": done,
        "submission_id": uuid.uuid4().hex, "service_url": "/track",
        "max_size": size_label(ctx.config.upload_max_bytes),
        "accept": ",".join(f".{e}" for e in ALLOWED_TYPES),
        "types": ", ".join(sorted({e.upper() for e in ALLOWED_TYPES if e != "jpeg"})),
    }, status_code=status)
    return _with_csrf_cookie(response, ctx, cookie)


async def _view(request: Request, ticket_id: int) -> tracking.TrackingView | None:
    console = _console(request)
    return await run_in_threadpool(tracking.tracking_view, console.engine, ticket_id,
                                   department_name=console.department_name)


@router.get("/track/enquiry", response_class=HTMLResponse)
async def enquiry(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    found = await _tracked(request, ctx)
    view = await _view(request, found[0]) if found else None
    if view is None:
        return RedirectResponse("/track", status_code=303)
    return _status_page(request, ctx, view)


@router.post("/track/enquiry/message")
async def add_message(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    found = await _tracked(request, ctx)
    if found is None:
        return RedirectResponse("/track", status_code=303)
    ticket_id = found[0]
    form = await request.form()
    try:
        text = str(form.get("message") or "").strip()
        values = {"message": text}
        view = await _view(request, ticket_id)
        if view is None:
            return RedirectResponse("/track", status_code=303)
        if not ctx.csrf.check(str(form.get("csrf_token") or ""), request.cookies.get(CSRF_COOKIE)):
            return _status_page(request, ctx, view, values=values, status=400,
                                errors={"message": "The page had expired: send your message again"})
        photo = form.get("photo")
        upload = Upload(photo.filename or "", await photo.read()) \
            if isinstance(photo, UploadFile) and photo.filename else None
        errors: dict[str, str] = {}
        media_type = ""
        if upload is not None:
            try:
                media_type = check_upload(upload, ctx.config.upload_max_bytes)
            except ValueError as exc:
                errors["photo"] = f"{exc}. Choose the file again"
        if not text and upload is None:
            errors["message"] = "Enter a message or choose a photo"
        elif len(text) > MAX_MESSAGE:
            errors["message"] = f"The message must be {MAX_MESSAGE} characters or fewer"
        party = await run_in_threadpool(tracking.resident_party, _console(request).engine, ticket_id)
        if party is None:
            errors["message"] = "We have no address or number to link your message to: please call us"
        if errors or party is None:
            return _status_page(request, ctx, view, values=values, errors=errors, status=422)
        reference, sender = party
        submission = str(form.get("submission_id") or uuid.uuid4().hex)[:64]
        digest = fingerprint(text, upload.data if upload else b"")
        dedupe_key = webform_dedupe_key(f"track:{reference}:{submission}:{digest[:16]}")
        if await run_in_threadpool(ctx.store.get_intake, dedupe_key) is None:
            wait = await run_in_threadpool(ctx.store.hit, f"contact:{ctx.client(request)}",
                                           ctx.config.form_rate_limit, ctx.config.form_rate_window_s)
            if wait is not None:
                minutes = max(1, wait // 60)
                return _status_page(request, ctx, view, values=values, status=429, errors={
                    "message": f"Too many messages from your connection: try again in {minutes} minutes"})

        def build(intake_reference: str) -> InboundMessage:
            files = [attachment(ctx.blobs.put(upload.data, media_type), upload.filename)] if upload else []
            return InboundMessage(
                channel=Channel.WEBFORM, sender=sender, subject=f"Re: {view.subject or reference}"[:500],
                body_text=text or "(a photo)", body_trimmed=text or "(a photo)", attachments=files,
                threading=Threading(reference=reference), source=Source(form_id="track"),
                reference=intake_reference, dedupe_key=dedupe_key)

        try:
            await run_in_threadpool(ctx.intake.submit, dedupe_key, build, digest)
        except (OSError, SQLAlchemyError) as exc:
            log.error("tracking message not taken (%s): 503", exc.__class__.__name__)
            response = _status_page(request, ctx, view, values=values, status=503, errors={
                "message": "We could not send your message just now: please try again in a minute"})
            response.headers["retry-after"] = str(RETRY_AFTER_S)
            return response
        return RedirectResponse("/track/enquiry?done=sent#main-content", status_code=303)
    finally:
        await form.close()


@router.post("/track/enquiry/feedback")
async def feedback(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    found = await _tracked(request, ctx)
    if found is None:
        return RedirectResponse("/track", status_code=303)
    form = await request.form()
    view = await _view(request, found[0])
    if view is None:
        return RedirectResponse("/track", status_code=303)
    values = {"rating": str(form.get("rating") or ""), "comment": str(form.get("comment") or "")}
    if not ctx.csrf.check(str(form.get("csrf_token") or ""), request.cookies.get(CSRF_COOKIE)):
        return _status_page(request, ctx, view, values=values, status=400,
                            errors={"rating": "The page had expired: give your rating again"})
    if values["rating"] not in ("1", "2", "3", "4", "5"):
        return _status_page(request, ctx, view, values=values, status=422,
                            errors={"rating": "Choose how satisfied you are, from 1 to 5 stars"})
    try:
        await run_in_threadpool(tracking.give_feedback, _console(request).engine, found[0],
                                rating=int(values["rating"]), comment=values["comment"])
    except tracking.FeedbackError as exc:
        text = str(exc)
        return _status_page(request, ctx, view, values=values, status=422,
                            errors={"rating": text[:1].upper() + text[1:]})
    return RedirectResponse("/track/enquiry?done=rated#main-content", status_code=303)


@router.post("/track/forget")
async def forget(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    """Forget the enquiry on this device (a shared computer)."""
    response = RedirectResponse("/track", status_code=303)
    response.delete_cookie(TRACK_COOKIE, path="/track")
    return response
