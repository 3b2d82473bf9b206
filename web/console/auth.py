"""Who may do what in the console: every route names its permission with :func:`requires`.

``requires(P)`` is the one dependency every route carries (a test walks the app's route table
and fails for a route without one). For the console it loads the server-side session from its
cookie (sign-in page if there is none), refuses an account without ``P`` (403 page), and on
every state-changing request checks the session's CSRF token from the form. Public routes
(contact form, webhooks, API) declare ``requires(Permission.PUBLIC)`` on their router.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tickets.accounts import Permission, SignedIn
from web.console.context import ConsoleContext, console_context
from web.pages import templates
from web.security import CSRF_COOKIE

SESSION_COOKIE = "fd_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

router = APIRouter(prefix="/console", include_in_schema=False)


class SignInRequiredError(Exception):
    """No live session: the handler sends the browser to the sign-in page (then back)."""

    def __init__(self, path: str) -> None:
        self.path = path


class ForbiddenError(Exception):
    """Signed in, but not allowed: a 403 page (the same for "not yours" and "not there")."""


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token: refused (400)."""


def requires(permission: Permission) -> Any:
    """The dependency that declares and enforces ``permission`` on a route.

    Returns the :class:`SignedIn` session (``None`` for :attr:`Permission.PUBLIC`)."""

    async def check(request: Request) -> SignedIn | None:
        if permission is Permission.PUBLIC:
            return None
        console = console_context(request)
        who = await run_in_threadpool(console.accounts.session, request.cookies.get(SESSION_COOKIE))
        if who is None:
            query = f"?{request.url.query}" if request.url.query else ""
            raise SignInRequiredError(request.url.path + query)
        request.state.signed_in = who
        if not who.account.may(permission):
            raise ForbiddenError()
        if request.method not in SAFE_METHODS:
            form = await request.form()
            token = str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")
            if not _same(token, who.csrf_token):
                raise CsrfError()
        return who

    check.permission = permission  # type: ignore[attr-defined]  # read by the route-table test
    return Depends(check)


def declared_permission(dependency: Callable[..., Any]) -> Permission | None:
    value = getattr(dependency, "permission", None)
    return value if isinstance(value, Permission) else None


def _same(a: str, b: str) -> bool:
    import hmac

    return bool(a) and hmac.compare_digest(a.encode(), b.encode())


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if not value:
        return "/console"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/console") or value.startswith("//"):
        return "/console"
    return value


# -- sign in / out --------------------------------------------------------------------------------

def _sign_in_page(request: Request, console: ConsoleContext, *, email: str = "", error: str | None = None,
                  status: int = 200, next_path: str = "/console") -> HTMLResponse:
    cookie = request.cookies.get(CSRF_COOKIE) or console.csrf.new_cookie()
    response = templates.TemplateResponse(request, "console/sign_in.html", {
        "email": email, "errors": {"email": error} if error else {}, "next": next_path,
        "csrf_token": console.csrf.token_for(cookie), "service_name": "Frontdoor console",
        "service_url": "/console",
    }, status_code=status)
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="lax", max_age=console.csrf.max_age_s,
                        secure=console.secure_cookies)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None,  # noqa: A002
                       _: None = requires(Permission.PUBLIC),
                       console: ConsoleContext = Depends(console_context)) -> HTMLResponse:  # noqa: B008
    return _sign_in_page(request, console, next_path=_safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request, _: None = requires(Permission.PUBLIC),
                  console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    form = await request.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    next_path = _safe_next(str(form.get("next") or ""))
    if not console.csrf.check(str(form.get("csrf_token") or ""), request.cookies.get(CSRF_COOKIE)):
        return _sign_in_page(request, console, email=email, status=400, next_path=next_path,
                             error="The page had expired: sign in again")
    if not email or not password:
        return _sign_in_page(request, console, email=email, status=422, next_path=next_path,
                             error="Enter your email address and password")
    address = console.client(request)
    result = await run_in_threadpool(console.accounts.sign_in, email, password, address)
    if result.locked:
        return _sign_in_page(request, console, email=email, status=429, next_path=next_path,
                             error="Too many failed sign-ins: this account is locked for 15 minutes. "
                                   "Ask an administrator if you need it sooner")
    if result.signed_in is None:
        await asyncio.sleep(result.delay_s)  # slows a guesser; a person barely notices
        return _sign_in_page(request, console, email=email, status=401, next_path=next_path,
                             error="Enter a correct email address and password")
    # A new session every time (the old cookie, if any, is ended): the id changes at sign-in.
    await run_in_threadpool(console.accounts.sign_out, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, result.signed_in.token, httponly=True, samesite="lax", path="/",
                        secure=console.secure_cookies)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, who: SignedIn = requires(Permission.SIGNED_IN),  # noqa: B008
                   console: ConsoleContext = Depends(console_context)) -> Response:  # noqa: B008
    await run_in_threadpool(console.accounts.sign_out, who.token)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def error_handlers() -> dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]]:
    async def sign_in_required(_request: Request, exc: SignInRequiredError) -> Response:
        if _request.headers.get("hx-request"):  # htmx polling after the session ended: reload fully
            return Response(status_code=204, headers={"HX-Redirect": "/console/sign-in"})
        return RedirectResponse(f"/console/sign-in?next={quote(exc.path, safe='/?=&')}", status_code=303)

    async def forbidden(request: Request, _exc: ForbiddenError) -> Response:
        return templates.TemplateResponse(request, "console/error.html", {
            "title": "You cannot open this page",
            "text": "Your account does not give access to it. If you need it, ask your supervisor.",
            "who": getattr(request.state, "signed_in", None),
        }, status_code=403)

    async def csrf(request: Request, _exc: CsrfError) -> Response:
        return templates.TemplateResponse(request, "console/error.html", {
            "title": "The page had expired",
            "text": "Go back, reload the page and try again.",
            "who": None,
        }, status_code=400)

    async def not_found(request: Request, _exc: Exception) -> Response:
        return templates.TemplateResponse(request, "console/error.html", {
            "title": "Page not found",
            "text": "Check the reference: it may have been mistyped.",
            "who": getattr(request.state, "signed_in", None),
        }, status_code=404)

    from web.console.tickets import NotFoundError

    return {SignInRequiredError: sign_in_required, ForbiddenError: forbidden, CsrfError: csrf,
            NotFoundError: not_found}
