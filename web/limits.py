"""Limits that hold while the bytes stream in, and who the client is.

- :class:`BodyLimits` counts every request body as it arrives (chunked ones too, where no
  Content-Length warns us), one limit per area of the app: reading stops and the answer is 413
  as soon as the count passes it, so no request makes the process hold more than its limit.
  (Starlette's own ``RequestBodyLimitMiddleware`` counts the same way but replaces every answer
  to an over-declared body with its plain-text 413, so the form could not come back.)
- :class:`LimitedMultiPartParser` is Starlette's multipart parser (files spooled to disk past
  1 MB) that also stops a file the moment it passes the per-file limit, not after reading it.
- :func:`client_address` believes ``X-Forwarded-For`` only from configured trusted proxies.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.config import Network

DEFAULT_MAX_BODY = 64 * 1024  # pages, status callbacks: nothing legitimate is bigger


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body must be at most {limit // 1024} KB")
        self.limit = limit


class BodyLimits:
    """Per path prefix (longest wins), the most bytes a request body may have.

    The count is taken on the ``http.request`` messages as they arrive, so a chunked body with
    no Content-Length is stopped at the limit too; a declared Content-Length over the limit is
    refused before a byte is read. The reader (FastAPI's body, the form parser) gets a
    413 :class:`HTTPException`, which the route or the app's handler answers in its own words
    (the contact form re-rendered, the API's problem JSON)."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))
        self.default = default

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = Headers(scope=scope).get("content-length")
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise BodyTooLargeError(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLargeError as exc:  # a reader that let it through: answer it here
            if started:
                raise
            await PlainTextResponse(str(exc.detail), status_code=413)(scope, receive, send)


class LimitedMultiPartParser(MultiPartParser):
    """Keeps at most ``max_file_size`` + 1 bytes of each file and drops the rest as it streams
    (the one byte over is how the form's own check says "must be smaller than …"), spooling
    files to disk past 1 MB (Starlette's ``SpooledTemporaryFile``). The fields after a file
    too large are still read, so the form comes back with what the resident typed."""

    def __init__(self, *args: object, max_file_size: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.max_file_size = max_file_size
        self._file_size = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_size = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            room = self.max_file_size + 1 - self._file_size
            if room <= 0:
                return
            end = min(end, start + room)
            self._file_size += end - start
        super().on_part_data(data, start, end)


def client_address(request: Request, trusted: Sequence[Network]) -> str:
    """The address that sent the request: the peer, unless the peer is a trusted proxy, then the
    right-most address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
