"""The contact form (``GET/POST /contact``) and its JSON twin (``POST /api/enquiries``).

Both answer once the enquiry is durably committed in the intake outbox (the relay puts it on
the stream, at once or when the broker is back): the JSON API with 202 and the reference, the
form with a confirmation page quoting it. Only when the commit itself fails (database away,
blob store full) do they answer 503 (the form keeps what the resident typed). The same submission twice (a
double click, a client's retry with the same ``Idempotency-Key``) gets the same reference
and reaches the stream once.
"""

from __future__ import annotations

import logging
import uuid
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import FormParser, MultiPartException

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
from ingest.intake import IdempotencyConflictError, Receipt, fingerprint
from ingest.intake_store import RateLimitedError, dumps
from schemas.inbound import Attachment
from web.context import RETRY_AFTER_S, WebContext, context, problem
from web.limits import LimitedMultiPartParser
from web.pages import templates
from web.security import CSRF_COOKIE

log = logging.getLogger(__name__)

router = APIRouter()

FIELDS = ("name", "email", "phone", "address", "postcode", "message", "cc", "topic")
HONEYPOT = "website"
TOO_MANY_FILES_SLACK = 20


class ReceiptOut(BaseModel):
    reference: str
    duplicate: bool = False


class ProblemOut(BaseModel):
    message: str
    errors: dict[str, str] | None = None


API_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": ReceiptOut, "description": "taken (durably committed; the relay puts it on the stream)"},
    400: {"model": ProblemOut, "description": "not JSON, or a bad header"},
    409: {"model": ProblemOut, "description": "the Idempotency-Key was used for a different request"},
    413: {"model": ProblemOut, "description": "the body is too large"},
    422: {"model": ProblemOut, "description": "what is wrong, one message per field"},
    429: {"model": ProblemOut, "description": "too many new enquiries from this address: see Retry-After"},
    503: {"model": ProblemOut, "description": "not committed: retry, same Idempotency-Key"},
}


# -- JSON -----------------------------------------------------------------------------------

@router.post("/api/enquiries", status_code=202, response_model=ReceiptOut, responses=API_RESPONSES,
             tags=["enquiries"], summary="Submit an enquiry (as the contact form does)")
async def api_enquiry(payload: EnquiryForm, request: Request, ctx: WebContext = Depends(context),  # noqa: B008
                      idempotency_key: str | None = Header(default=None)) -> Response:
    """Takes the enquiry (committed durably; it reaches the stream even if the broker is away
    just now) and answers its reference.

    At least one of ``email`` and ``phone`` is needed. Send an ``Idempotency-Key`` header
    (8–200 of ``A-Z a-z 0-9 . _ : -``) and retry with the same key after a 503 or a lost
    answer: the enquiry is taken once and the same reference comes back. New enquiries are
    rate-limited per client address (429 with Retry-After); a retry of a taken key is not counted.
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
    bucket = f"api:{ctx.client(request)}"

    def take() -> Receipt | int:
        """One trip to the thread pool and one transaction: the rate limit (a retry of a taken key
        is free) and the commit; the seconds to wait when over the limit."""
        gate = None
        if ctx.store.get_intake(dedupe_key) is None:
            gate = partial(ctx.store.count_hit, bucket=bucket, limit=ctx.config.api_rate_limit,
                           window_s=ctx.config.api_rate_window_s)
        try:
            return ctx.intake.submit(dedupe_key, lambda ref: to_inbound(form, ref, dedupe_key, form_id="api"),
                                     fingerprint(dumps(form.model_dump())), gate=gate)
        except RateLimitedError as exc:
            return exc.retry_after_s

    try:
        receipt = await run_in_threadpool(take)
    except IdempotencyConflictError as exc:
        return problem(409, str(exc))
    if isinstance(receipt, int):
        return problem(429, f"Too many enquiries from this address: try again in {receipt} seconds",
                       headers={"Retry-After": str(receipt)})
    return JSONResponse({"reference": receipt.reference, "duplicate": receipt.duplicate}, status_code=202)


# -- the HTML form ----------------------------------------------------------------------------

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
    response = templates.TemplateResponse(request, "public/contact.html", {
        "values": values,
        "errors": errors or {},
        "csrf_token": ctx.csrf.token_for(cookie),
        "submission_id": submission_id or uuid.uuid4().hex,
        "topic": topic,
        "max_files": ctx.config.upload_max_files,
        "max_size": size_label(ctx.config.upload_max_bytes),
        "accept": ",".join(f".{e}" for e in ALLOWED_TYPES),
        "types": ", ".join(sorted({e.upper() for e in ALLOWED_TYPES if e != "jpeg"})),
    }, status_code=status, headers=headers)
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", max_age=ctx.csrf.max_age_s,
                        secure=ctx.config.public_url.startswith("https://"))
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
    settings = ctx.config
    if int(request.headers.get("content-length") or 0) > settings.form_max_body:
        return _render(request, ctx, errors={"attachments": "The files are too large to send together"},
                       status=413)
    try:
        # Read past the file limit (the bytes are bounded above, files spool to disk) so a form
        # with one file too many comes back with what the resident typed and an error, not a 400.
        form = await _read_form(request, settings.upload_max_files + TOO_MANY_FILES_SLACK,
                                settings.upload_max_bytes)
    except StarletteHTTPException as exc:
        if exc.status_code == 413:  # the body passed its limit while streaming (chunked, no Content-Length)
            return _render(request, ctx, errors={"attachments": "The files are too large to send together"},
                           status=413)
        return _render(request, ctx, errors={"attachments": f"The form could not be read: {exc.detail}"},
                       status=400)
    except MultiPartException as exc:
        return _render(request, ctx, errors={"attachments": f"The form could not be read: {exc.message}"},
                       status=400)
    try:
        return await _submit(request, ctx, form)
    finally:
        await form.close()


async def _read_form(request: Request, max_files: int, max_file_bytes: int) -> FormData:
    """The form, each file cut just past ``max_file_bytes`` while it streams and spooled to disk."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        parser = LimitedMultiPartParser(request.headers, request.stream(), max_files=max_files, max_fields=40,
                                        max_file_size=max_file_bytes)
        return await parser.parse()
    if content_type.startswith("application/x-www-form-urlencoded"):
        return await FormParser(request.headers, request.stream()).parse()
    return FormData()


async def _submit(request: Request, ctx: WebContext, form: FormData) -> Response:
    settings = ctx.config
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
        log.info("contact form: honeypot filled from %s; not taken", ctx.client(request))
        return again({"form": "The form could not be sent"}, 400)

    errors: dict[str, str] = {}
    uploads: list[Upload] = []
    chosen = [item for item in form.getlist("attachments") if isinstance(item, UploadFile) and item.filename]
    if len(chosen) > settings.upload_max_files:
        errors["attachments"] = (f"Select up to {settings.upload_max_files} files: you chose {len(chosen)}. "
                                 "Choose the files again")
        chosen = []
    for item in chosen:
        uploads.append(Upload(item.filename or "", await item.read()))
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
    if await run_in_threadpool(ctx.store.get_intake, dedupe_key) is None:
        wait = await run_in_threadpool(ctx.store.hit, f"contact:{ctx.client(request)}",
                                       settings.form_rate_limit, settings.form_rate_window_s)
        if wait is not None:
            minutes = max(1, wait // 60)
            return again({"form": f"Too many enquiries from your connection: try again in {minutes} minutes"},
                         429, {"Retry-After": str(wait)})

    def stored_attachments() -> list[Attachment]:
        return [attachment(ctx.blobs.put(u.data, t), u.filename) for u, t in zip(uploads, media_types,
                                                                                 strict=True)]

    try:
        attachments = await run_in_threadpool(stored_attachments)
        receipt = await run_in_threadpool(
            ctx.intake.submit, dedupe_key,
            lambda ref: to_inbound(enquiry, ref, dedupe_key, attachments=attachments), digest)
    except (OSError, SQLAlchemyError) as exc:  # blob store full or unwritable, database away
        log.error("contact form not taken (%s: %s): 503", exc.__class__.__name__, exc)
        return again({"form": "We could not send your enquiry just now. Your answers are kept: "
                              "please try again in a minute"}, 503, {"Retry-After": str(RETRY_AFTER_S)})
    if wants_json:
        return JSONResponse({"reference": receipt.reference, "duplicate": receipt.duplicate}, status_code=202)
    return templates.TemplateResponse(request, "public/confirmation.html", {
        "reference": receipt.reference, "email": enquiry.email, "phone": enquiry.phone})
