"""GOV.UK Notify's delivery receipts: the callback URL a council registers on Notify's API
integration page (``{FRONTDOOR_PUBLIC_URL}/webhooks/notify/receipts``).

Notify posts one JSON object per final status with the bearer token the council typed in beside
the URL; it retries a 5xx (and a refused connection) for a while, never a 4xx. So a wrong token
or a body that is not a receipt answers 4xx, and a database that cannot take the update 503.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from outbound.status import record_notify_receipt
from web.context import WebContext, context

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks/notify", tags=["notify"], include_in_schema=False)
MAX_BODY = 64 * 1024  # a receipt is a few hundred bytes


class NotifyReceipt(BaseModel):
    """The fields of Notify's delivery receipt this app reads (it sends more: to, created_at,
    completed_at, sent_at, template_id, template_version)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    reference: str | None = None
    status: str
    notification_type: str | None = None


def bearer_token_matches(header: str, expected: str) -> bool:
    """``Authorization: Bearer <token>`` against the configured token, in constant time."""
    scheme, _, token = header.strip().partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


@router.post("/receipts")
async def delivery_receipt(request: Request, ctx: WebContext = Depends(context)) -> Response:  # noqa: B008
    expected = ctx.config.notify_callback_token
    if not expected:
        log.warning("Notify receipt refused: FRONTDOOR_NOTIFY_CALLBACK_TOKEN is unset")
        return Response("receipts are not configured\n", status_code=403, media_type="text/plain")
    if not bearer_token_matches(request.headers.get("Authorization", ""), expected):
        log.warning("Notify receipt refused: bad or missing bearer token")
        return Response("bad or missing bearer token\n", status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": "Bearer"})
    try:
        receipt = NotifyReceipt.model_validate_json(await request.body())
    except ValidationError as exc:
        return Response(f"not a Notify delivery receipt: {exc.error_count()} error(s)\n", status_code=400,
                        media_type="text/plain")
    try:
        row = await run_in_threadpool(record_notify_receipt, ctx.store.engine, receipt.id, receipt.reference,
                                      receipt.status)
    except SQLAlchemyError as exc:  # Notify retries a 5xx: the receipt is not lost to a database blip
        log.warning("Notify receipt %s not recorded: %s", receipt.id, exc.__class__.__name__)
        return Response("database unavailable\n", status_code=503, media_type="text/plain")
    if row is None:
        log.info("Notify receipt %s (%s) names no outbound message of ours", receipt.id, receipt.status)
    return Response(status_code=204)
