"""The HTTP app: Twilio webhooks, the contact form, the JSON API (OpenAPI at /openapi.json).

``create_app`` wires everything from one :class:`Settings`; tests pass their own
publisher (a topic of their own) and store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.base import Publisher
from connectors.webform import describe_error
from frontdoor.settings import Settings
from schemas.blobs import BlobStore, FilesystemBlobStore
from web import contacts, enquiries, sms
from web.context import WebContext, problem
from web.intake import IntakeService
from web.media import MediaFetcher
from web.security import AgentTokens, CsrfGuard, TwilioSignatureCheck
from web.store import IntakeStore

log = logging.getLogger(__name__)

MAX_API_BODY = 1024 * 1024


def create_app(settings: Settings, *, publisher: Publisher | None = None, store: IntakeStore | None = None,
               blobs: BlobStore | None = None, media_backoff_s: float = 1.0) -> FastAPI:
    owned_publisher = publisher is None
    if publisher is None:
        from frontdoor.wiring import publisher as make_publisher  # only here: tests bring their own

        publisher = make_publisher(settings)
    store = store or IntakeStore.from_url(settings.effective_database_url)
    blobs = blobs or FilesystemBlobStore(settings.blobs_path)
    token = settings.twilio_auth_token.get_secret_value()
    ctx = WebContext(
        settings=settings,
        store=store,
        publisher=publisher,
        blobs=blobs,
        intake=IntakeService(store, publisher),
        twilio=TwilioSignatureCheck(token, settings.public_url),
        csrf=CsrfGuard(settings.web_secret.get_secret_value()),
        agents=AgentTokens(settings.agent_tokens.get_secret_value()),
        media=MediaFetcher(store, blobs, account_sid=settings.twilio_account_sid, auth_token=token,
                           backoff_s=media_backoff_s),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=_retry_media, args=(ctx.media,), name="mms-media", daemon=True).start()
        yield
        close = getattr(ctx.publisher, "close", None)
        if owned_publisher and callable(close):
            close()

    app = FastAPI(
        title="Frontdoor",
        summary="One front door for every enquiry a resident sends to the council",
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.include_router(sms.router)
    app.include_router(enquiries.router)
    app.include_router(contacts.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.middleware("http")
    async def limit_api_body(request: Request,
                             call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/api/"):
            try:
                length = int(request.headers.get("content-length") or 0)
            except ValueError:
                return problem(400, "Content-Length is not a number")
            if length > MAX_API_BODY:
                return problem(413, f"The body must be at most {MAX_API_BODY // 1024} KB")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        errors: dict[str, str] = {}
        status = 422
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ()) if p != "body"]
            if error.get("type") == "json_invalid":
                status = 400
                errors.setdefault("body", "The body is not valid JSON")
                continue
            if loc[:1] == ["header"]:
                loc = loc[1:]
            name = ".".join(loc[:2]) if loc[:1] == ["resident"] else (loc[0] if loc else "body")
            leaf = loc[1] if loc[:1] == ["resident"] and len(loc) > 1 else name
            errors.setdefault(name, describe_error(error, leaf))
        return problem(status, "The request is not valid: see errors", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    return app


def _retry_media(fetcher: MediaFetcher) -> None:
    """Media a previous process recorded but did not fetch (it stopped, or the host was down)."""
    try:
        fetcher.fetch_pending()
    except Exception:  # a background nicety: never take the app down
        log.exception("retrying pending MMS media failed")
