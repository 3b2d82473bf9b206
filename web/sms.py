"""Twilio webhooks: incoming SMS/MMS and outbound delivery status.

The TwiML answer goes back as soon as the message is committed in the intake outbox; the relay
puts it on the stream, at once or when the broker is back. For an enquiry the answer is empty:
the resident's one acknowledgement (the reference and the tracking link) is sent by the outbound
stage when the message opens a ticket, and a follow-up that joins their open ticket gets none, so
nobody receives two texts for one message or a new reference for every text. Twilio does not
retry an SMS webhook after a 5xx, so a broker outage never turns into one. A retried MessageSid
adds nothing.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from connectors.twilio_sms import (
    HELP_TEXT,
    OPT_IN_TEXT,
    Keyword,
    SmsPayloadError,
    parse_status,
    parse_webhook,
    to_inbound,
    twiml,
)
from outbound.status import record_twilio_status
from web.context import WebContext, context

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks/twilio", tags=["twilio"], include_in_schema=False)
XML = "application/xml"


class SignatureRefusedError(Exception):
    pass


async def signed_form(request: Request, ctx: WebContext) -> dict[str, str]:
    """The webhook's fields, only if Twilio signed exactly these for exactly this URL."""
    form: FormData = await request.form(max_files=0)
    if any(not isinstance(v, str) for _, v in form.multi_items()):
        raise SignatureRefusedError("file upload in a Twilio webhook")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not ctx.twilio.valid(request.url.path, request.url.query, form, signature):
        raise SignatureRefusedError("bad or missing X-Twilio-Signature")
    return {k: str(v) for k, v in form.items()}


def _refused(reason: str) -> Response:
    log.warning("Twilio webhook refused: %s", reason)
    return Response("signature check failed\n", status_code=403, media_type="text/plain")


@router.post("/sms")
async def incoming_sms(request: Request, background: BackgroundTasks,
                       ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    try:
        fields = await signed_form(request, ctx)
    except SignatureRefusedError as exc:
        return _refused(str(exc))
    try:
        sms = parse_webhook(fields)
    except SmsPayloadError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain")
    store = ctx.store
    keyword = sms.keyword
    word = sms.body.strip()[:32]
    if keyword is Keyword.OPT_OUT:
        await run_in_threadpool(store.set_opt_out, sms.from_number, True, word, sms.message_sid)
        log.info("opt-out recorded for a number (MessageSid %s)", sms.message_sid)
        return Response(twiml(None), media_type=XML)  # Twilio confirms the opt-out itself
    if keyword is Keyword.OPT_IN:
        await run_in_threadpool(store.set_opt_out, sms.from_number, False, word, sms.message_sid)
        return Response(twiml(OPT_IN_TEXT), media_type=XML)
    opted_out = await run_in_threadpool(store.is_opted_out, sms.from_number)
    if keyword is Keyword.HELP:
        return Response(twiml(None if opted_out else HELP_TEXT), media_type=XML)
    receipt = await run_in_threadpool(
        ctx.intake.submit, sms.dedupe_key, lambda ref: to_inbound(sms, ref, opted_out=opted_out))
    if sms.media:
        await run_in_threadpool(store.add_media, sms.message_sid,
                                [(m.url, m.content_type) for m in sms.media])
        background.add_task(ctx.media.fetch_message, sms.message_sid)
    log.debug("SMS %s taken as %s", sms.message_sid, receipt.reference)
    return Response(twiml(None), media_type=XML)  # acknowledged by the outbound stage, once per ticket


@router.post("/status")
async def delivery_status(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    try:
        fields = await signed_form(request, ctx)
    except SignatureRefusedError as exc:
        return _refused(str(exc))
    try:
        status = parse_status(fields)
    except SmsPayloadError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain")
    await run_in_threadpool(ctx.store.record_delivery, status.message_sid, status.status,
                            status.to_number, status.error_code)
    # the acknowledgement or reply it reports on (same database): delivered, or failed and why
    await run_in_threadpool(record_twilio_status, ctx.store.engine, status.message_sid, status.status,
                            status.error_code)
    return Response(status_code=204)
