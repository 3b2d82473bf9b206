"""What every route needs, built once per app from the settings (explicit wiring, no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from connectors.base import Publisher
from frontdoor.settings import Settings
from schemas.blobs import BlobStore
from web.intake import IntakeService
from web.media import MediaFetcher
from web.security import AgentTokens, CsrfGuard, TwilioSignatureCheck
from web.store import IntakeStore

RETRY_AFTER_S = 10


@dataclass
class WebContext:
    settings: Settings
    store: IntakeStore
    publisher: Publisher
    blobs: BlobStore
    intake: IntakeService
    twilio: TwilioSignatureCheck
    csrf: CsrfGuard
    agents: AgentTokens
    media: MediaFetcher


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def problem(status: int, message: str, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The one error shape of the JSON API: ``{"message": …, "errors": {field: message}}``."""
    body: dict[str, Any] = {"message": message, **extra}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def unavailable(reason: str = "") -> JSONResponse:
    return problem(503, "The service cannot take enquiries just now: try again shortly."
                   + (f" ({reason})" if reason else ""),
                   headers={"Retry-After": str(RETRY_AFTER_S)})
