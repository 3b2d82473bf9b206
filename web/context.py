"""What every route needs, built once per app from its :class:`WebConfig` (explicit wiring, no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ingest.intake import IntakeService
from ingest.intake_store import IntakeStore
from schemas.blobs import BlobStore
from web.config import WebConfig
from web.limits import client_address
from web.media import MediaFetcher
from web.security import AgentTokens, CsrfGuard, TwilioSignatureCheck

RETRY_AFTER_S = 10


@dataclass
class WebContext:
    config: WebConfig
    store: IntakeStore
    blobs: BlobStore
    intake: IntakeService
    twilio: TwilioSignatureCheck
    csrf: CsrfGuard
    agents: AgentTokens
    media: MediaFetcher

    def client(self, request: Request) -> str:
        """The client's address (X-Forwarded-For believed only from trusted proxies)."""
        return client_address(request, self.config.trusted_proxies)


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
    """The intake store could not commit (database away, disk full): nothing was taken."""
    return problem(503, "The service cannot take enquiries just now: try again shortly."
                   + (f" ({reason})" if reason else ""),
                   headers={"Retry-After": str(RETRY_AFTER_S)})
