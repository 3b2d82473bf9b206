"""The contact form (``GET/POST /contact``) and its JSON twin (``POST /api/enquiries``).

Both answer only after Kafka acknowledged the enquiry: the JSON API with 202 and the
reference, the form with a confirmation page quoting it. While the broker is away both
answer 503 (the form keeps what the resident typed). The same submission twice (a
double click, a client's retry with the same ``Idempotency-Key``) gets the same reference
and reaches the stream once.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException
from starlette.templating import Jinja2Templates

from connectors.base import PublishError
from connectors.webform import (
    ALLOWED_TYPES,
    EnquiryForm,
    EnquiryInvalidError,
    Upload,
    attachment,
    check_idempotency_key,
    check_upload,
    parse_enquiry,
    size_label,
    to_inbound,
    webform_dedupe_key,
)
from schemas.inbound import Attachment
from web.context import RETRY_AFTER_S, WebContext, context, problem, unavailable
from web.intake import IdempotencyConflictError, fingerprint
from web.security import CSRF_COOKIE
from web.store import dumps

log = logging.getLogger(__name__)

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

FIELDS = ("name", "email", "phone", "address", "postcode", "message", "cc", "topic")
HONEYPOT = "website"


class ReceiptOut(BaseModel):
    reference: str
    duplicate: bool = False


class ProblemOut(BaseModel):
    message: str
    errors: dict[str, str] | None = None


API_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": ReceiptOut, "description": "on the stream (Kafka acknowledged it); quote the reference"},
    400: {"model": ProblemOut, "description": "not JSON, or a bad header"},
    409: {"model": ProblemOut, "description": "the Idempotency-Key was used for a different request"},
    413: {"model": ProblemOut, "description": "the body is too large"},
    422: {"model": ProblemOut, "description": "what is wrong, one message per field"},
    503: {"model": ProblemOut, "description": "the broker is away: retry (same Idempotency-Key) later"},
}


# -- JSON -----------------------------------------------------------------------------------

@router.post("/api/enquiries", status_code=202, response_model=ReceiptOut, responses=API_RESPONSES,
             tags=["enquiries"], summary="Submit an enquiry (as the contact form does)")
async def api_enquiry(payload: EnquiryForm, ctx: WebContext = Depends(context),  # noqa: B008
                      idempotency_key: str | None = Header(default=None)) -> Response:
    """Puts the enquiry on the stream and answers its reference.

    At least one of ``email`` and ``phone`` is needed. Send an ``Idempotency-Key`` header
    (8–200 of ``A-Z a-z 0-9 . _ : -``) and retry with the same key after a 503 or a lost
    answer: the enquiry is taken once and the same reference comes back.
    """
    try:
        form = parse_enquiry(payload.model_dump())
    except EnquiryInvalidError as exc:
        return problem(422, "The enquiry is not complete: see errors", exc.errors)
    if idempotency_key is None:
        key = uuid.uuid4().hex
    else:
        try:
            key = check_idempotency_key(idempotency_key.strip())
        except ValueError as exc:
            return problem(400, str(exc), {"Idempotency-Key": str(exc)})
    dedupe_key = webform_dedupe_key(f"api:{key}")
    try:
        receipt = await run_in_threadpool(
            ctx.intake.submit, dedupe_key, lambda ref: to_inbound(form, ref, dedupe_key, form_id="api"),
            fingerprint(dumps(form.model_dump())))
    except IdempotencyConflictError as exc:
        return problem(409, str(exc))
    except PublishError as exc:
        log.warning("enquiry not taken (%s): 503", exc)
        return unavailable()
    return JSONResponse({"reference": receipt.reference, "duplicate": receipt.duplicate}, status_code=202)


# -- the HTML form ----------------------------------------------------------------------------

def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _render(request: Request, ctx: WebContext, *, values: dict[str, str] | None = None,
            errors: dict[str, str] | None = None, status: int = 200,
            submission_id: str | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    cookie = request.cookies.get(CSRF_COOKIE) or ctx.csrf.new_cookie()
    values = values or {}
    topic = values.get("topic") or request.query_params.get("topic") or ""
    try:
        topic = parse_topic(topic)
    except ValueError:
        topic = ""
    response = templates.TemplateResponse(request, "contact.html", {
        "values": values,
        "errors": errors or {},
        "csrf_token": ctx.csrf.token_for(cookie),
        "submission_id": submission_id or uuid.uuid4().hex,
        "topic": topic,
        "max_files": ctx.settings.upload_max_files,
        "max_size": size_label(ctx.settings.upload_max_bytes),
        "accept": ",".join(f".{e}" for e in ALLOWED_TYPES),
        "types": ", ".join(sorted({e.upper() for e in ALLOWED_TYPES if e != "jpeg"})),
    }, status_code=status, headers=headers)
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", max_age=ctx.csrf.max_age_s,
                        secure=ctx.settings.public_url.startswith("https://"))
    return response


def parse_topic(value: str) -> str:
    if not value:
        return ""
    form = EnquiryForm.model_validate({"message": "-", "email": "a@b.co", "topic": value})
    return form.topic or ""


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/contact", status_code=303)


@router.get("/contact", response_class=HTMLResponse, include_in_schema=False)
async def contact_form(request: Request, ctx: WebContext = Depends(context)) -> HTMLResponse:  # noqa: B008
    return _render(request, ctx)


@router.post("/contact", include_in_schema=False)
async def contact_submit(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    settings = ctx.settings
    limit = settings.upload_max_files * settings.upload_max_bytes + 1024 * 1024
    if int(request.headers.get("content-length") or 0) > limit:
        return _render(request, ctx, errors={"attachments": "The files are too large to send together"},
                       status=413)
    try:
        form = await request.form(max_files=settings.upload_max_files, max_fields=40)
    except MultiPartException as exc:
        return _render(request, ctx, errors={"attachments": f"The form could not be read: {exc.message}"},
                       status=400)
    try:
        return await _submit(request, ctx, form)
    finally:
        await form.close()


async def _submit(request: Request, ctx: WebContext, form: FormData) -> Response:
    settings = ctx.settings
    values = {f: str(form.get(f) or "") for f in FIELDS}
    submission_id = str(form.get("submission_id") or "")
    try:
        check_idempotency_key(submission_id)
    except ValueError:
        submission_id = uuid.uuid4().hex
    wants_json = "application/json" in request.headers.get("accept", "")

    def again(errors: dict[str, str], status: int, headers: dict[str, str] | None = None) -> Response:
        if wants_json:
            return problem(status, next(iter(errors.values())), errors, headers=headers)
        return _render(request, ctx, values=values, errors=errors, status=status,
                       submission_id=submission_id, headers=headers)

    if not ctx.csrf.check(str(form.get("csrf_token") or ""), request.cookies.get(CSRF_COOKIE)):
        return again({"form": "The form had expired. Your answers are kept: check them and send again"}, 400)
    if str(form.get(HONEYPOT) or "").strip():
        log.info("contact form: honeypot filled from %s; not taken", _client_address(request))
        return again({"form": "The form could not be sent"}, 400)

    errors: dict[str, str] = {}
    uploads: list[Upload] = []
    for item in form.getlist("attachments"):
        if isinstance(item, UploadFile) and item.filename:
            uploads.append(Upload(item.filename, await item.read()))
    media_types: list[str] = []
    for upload in uploads:
        try:
            media_types.append(check_upload(upload, settings.upload_max_bytes))
        except ValueError as exc:
            errors.setdefault("attachments", f"{exc}. Choose the files again")
    try:
        enquiry = parse_enquiry(values)
    except EnquiryInvalidError as exc:
        errors = {**exc.errors, **errors}
    if errors:
        if uploads and "attachments" not in errors:
            errors["attachments"] = "Choose your files again: for your security they are not kept"
        return again(errors, 422)

    digest = fingerprint(dumps(enquiry.model_dump()), *(u.data for u in uploads))
    # The same form sent twice (double click, refresh) is one enquiry; edited and sent again, a new one.
    dedupe_key = webform_dedupe_key(f"form:{submission_id}:{digest[:16]}")
    existing = await run_in_threadpool(ctx.store.get_intake, dedupe_key)
    if existing is None or not existing.published:
        wait = await run_in_threadpool(ctx.store.hit, f"contact:{_client_address(request)}",
                                       settings.form_rate_limit, settings.form_rate_window_s)
        if wait is not None:
            minutes = max(1, wait // 60)
            return again({"form": f"Too many enquiries from your connection: try again in {minutes} minutes"},
                         429, {"Retry-After": str(wait)})

    def stored_attachments() -> list[Attachment]:
        return [attachment(ctx.blobs.put(u.data, t), u.filename) for u, t in zip(uploads, media_types,
                                                                                 strict=True)]

    attachments = await run_in_threadpool(stored_attachments)
    try:
        receipt = await run_in_threadpool(
            ctx.intake.submit, dedupe_key,
            lambda ref: to_inbound(enquiry, ref, dedupe_key, attachments=attachments), digest)
    except PublishError as exc:
        log.warning("contact form not taken (%s): 503", exc)
        return again({"form": "We could not send your enquiry just now. Your answers are kept: "
                              "please try again in a minute"}, 503, {"Retry-After": str(RETRY_AFTER_S)})
    if wants_json:
        return JSONResponse({"reference": receipt.reference, "duplicate": receipt.duplicate}, status_code=202)
    return templates.TemplateResponse(request, "confirmation.html", {
        "reference": receipt.reference, "email": enquiry.email, "phone": enquiry.phone})
