"""The HTTP app: Twilio webhooks, the contact form, the JSON API (OpenAPI at /openapi.json).

``create_app`` takes everything explicitly (a :class:`WebConfig`, the intake store, the blob
store, and optionally the relay's publisher and a reference allocator); ``frontdoor/`` builds
them from the settings, tests build their own. web/ is HTTP only: every channel answers once
its message is committed in the intake store, and the relay (:mod:`ingest.intake_relay`, a
thread of this app when a publisher is given) puts it on the stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.webform import describe_error
from ingest.bus import KafkaPublisher
from ingest.intake import IntakeService, ReferenceAllocator
from ingest.intake_relay import IntakeRelay, export_backlog
from ingest.intake_store import IntakeStore
from schemas.blobs import BlobStore
from tickets.accounts import Permission
from web import contacts, enquiries, notify, sms, tracking
from web.config import WebConfig
from web.console import ConsoleContext
from web.console import mount as mount_console
from web.console.auth import requires
from web.context import WebContext, problem, unavailable
from web.limits import BodyLimits
from web.media import MediaFetcher
from web.pages import BUILT
from web.security import AgentTokens, CsrfGuard, TwilioSignatureCheck
from web.security_headers import SecurityHeadersMiddleware

log = logging.getLogger(__name__)

TWILIO_MAX_BODY = 256 * 1024  # an SMS of ten segments and ten media URLs is a few KB


def create_app(config: WebConfig, *, store: IntakeStore, blobs: BlobStore,
               publisher: KafkaPublisher | None = None, allocator: ReferenceAllocator | None = None,
               relay: IntakeRelay | None = None, media_backoff_s: float = 1.0,
               console: ConsoleContext | None = None) -> FastAPI:
    """The app. With ``publisher`` (or a ready ``relay``) it runs the intake relay in a thread
    from start-up to shutdown; without, another process (``frontdoor relay``) must."""
    if relay is None and publisher is not None:
        relay = IntakeRelay(store, publisher)
    ctx = WebContext(
        config=config,
        store=store,
        blobs=blobs,
        intake=IntakeService(store, allocator, on_commit=relay.wake if relay else None),
        twilio=TwilioSignatureCheck(config.twilio_auth_token, config.public_url),
        csrf=CsrfGuard(config.web_secret),
        agents=AgentTokens(config.agent_tokens),
        media=MediaFetcher(store, blobs, account_sid=config.twilio_account_sid,
                           auth_token=config.twilio_auth_token, backoff_s=media_backoff_s),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=_retry_media, args=(ctx.media,), name="mms-media", daemon=True).start()
        if relay is not None:
            relay.start()
        try:
            yield
        finally:
            if relay is not None:
                relay.stop()

    app = FastAPI(
        title="Frontdoor",
        summary="One front door for every enquiry a resident sends to the council",
        version="1",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.relay = relay
    public = [requires(Permission.PUBLIC)]  # every route declares its permission (the console's own)
    app.include_router(sms.router, dependencies=public)
    app.include_router(notify.router, dependencies=public)  # its bearer token is checked inside
    app.include_router(enquiries.router, dependencies=public)
    app.include_router(contacts.router, dependencies=public)  # its bearer token is checked inside
    if console is not None:
        mount_console(app, console)
        app.include_router(tracking.router, dependencies=public)  # residents' tracking reads the tickets db
    app.mount("/static/dist", StaticFiles(directory=BUILT, check_dir=False), name="static")
    app.mount("/metrics", _metrics(store))
    app.add_middleware(BodyLimits, limits={
        "/api/": config.api_max_body,
        "/contact": config.form_max_body,
        "/track/": config.upload_max_bytes + 1024 * 1024,  # one photo and a message
        "/webhooks/twilio/": TWILIO_MAX_BODY,
        "/webhooks/notify/": notify.MAX_BODY,
    })

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
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 413:
            limit = config.api_max_body if request.url.path.startswith("/api/") else None
            return problem(413, f"The body must be at most {limit // 1024} KB" if limit
                           else "The body is too large")
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyError)
    async def store_away(_request: Request, exc: SQLAlchemyError) -> Response:
        log.error("the intake store did not commit (%s): 503, nothing taken", exc.__class__.__name__)
        return unavailable()

    app.add_middleware(SecurityHeadersMiddleware)  # last added, so outermost: every response
    return app


def _metrics(store: IntakeStore) -> ASGIApp:
    """Prometheus' exposition, with the intake backlog read from the store at each scrape."""
    exposition = make_asgi_app()

    async def metrics(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await run_in_threadpool(export_backlog, store)
        await exposition(scope, receive, send)

    return metrics


def _retry_media(fetcher: MediaFetcher) -> None:
    """Media a previous process recorded but did not fetch (it stopped, or the host was down)."""
    try:
        fetcher.fetch_pending()
    except Exception:  # a background nicety: never take the app down
        log.exception("retrying pending MMS media failed")
