"""Sign-in, sessions, CSRF, permissions and officers' scoping, through the real app over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from tests.tickets import factory
from tests.web.console_support import (
    PASSWORD,
    ConsoleFactory,
    ConsoleServer,
    hidden,
    with_attachment,
)
from tickets.accounts import ThrottlePolicy
from web.console.auth import SESSION_COOKIE, declared_permission

AGENT = "agent@council.example.gov.uk"
SUPERVISOR = "supervisor@council.example.gov.uk"
WASTE_OFFICER = "waste.officer@council.example.gov.uk"
ADMIN = "admin@council.example.gov.uk"


def seed_two_departments(server: ConsoleServer) -> tuple[str, str]:
    """A waste ticket and a housing ticket (with an attachment); their references."""
    bins = factory.email("ann@example.com", "Bin not collected", "My green bin was missed again.",
                         message_id="<bins-1@example.com>", name="Ann Example")
    damp = with_attachment(factory.email("bob@example.com", "Damp in my flat", "Black mould in the bedroom.",
                                         message_id="<damp-1@example.com>", name="Bob Example"),
                           server.blobs, b"%PDF-1.4 survey", "survey.pdf")
    server.receive(factory.routed(bins, "waste"))
    server.receive(factory.routed(damp, "housing"))
    return reference_of(server, "Bin not collected"), reference_of(server, "Damp in my flat")


def reference_of(server: ConsoleServer, subject: str) -> str:
    from sqlalchemy import select

    from tickets.models import Ticket

    with server.engine.connect() as conn:
        return str(conn.scalar(select(Ticket.reference).where(Ticket.subject == subject)))


def route_table(routes: list[Any], prefix: str = "",
                inherited: tuple[Any, ...] = ()) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(kind, path, dependency callables) for every route, into included routers too
    (FastAPI 0.16x keeps ``include_router`` as a lazy branch; its dependencies apply below)."""
    found: list[tuple[str, str, tuple[Any, ...]]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            calls = tuple(d.call for d in route.dependant.dependencies if d.call is not None)
            found.append(("api", prefix + route.path, inherited + calls))
        elif isinstance(route, Mount):
            found.append(("mount", prefix + route.path, inherited))
        elif isinstance(route, Route):
            found.append(("route", prefix + route.path, inherited))
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):
            context = route.include_context
            calls = tuple(d.dependency for d in context.dependencies if d.dependency is not None)
            found += route_table(route.original_router.routes, prefix + context.prefix, inherited + calls)
        else:
            found.append(("unknown", prefix + repr(route), inherited))
    return found


def test_every_route_declares_its_permission(console_server: ConsoleFactory) -> None:
    """Walks the app's route table: a route without ``requires(...)`` fails here."""
    server = console_server()
    table = route_table(server.app.routes)
    undeclared = [path for kind, path, calls in table
                  if kind in ("api", "unknown") and not any(declared_permission(c) for c in calls)]
    assert undeclared == []
    for kind, path, _ in table:
        if kind == "mount":
            assert path in ("/static/dist", "/metrics"), path  # public files and metrics only
        elif kind == "route":  # FastAPI's own: the OpenAPI document and its viewer
            assert path in ("/openapi.json", "/api/docs", "/docs/oauth2-redirect"), path
    paths = {path for kind, path, _ in table if kind == "api"}
    assert {"/console/tickets/{reference}", "/console/queues/{queue}", "/contact", "/api/enquiries",
            "/readyz"} <= paths
    # and the check has teeth: a route added without a permission is caught
    from fastapi import APIRouter

    stray = APIRouter()
    stray.add_api_route("/console/forgotten", lambda: None)
    assert [p for k, p, c in route_table(stray.routes) if not any(declared_permission(x) for x in c)] \
        == ["/console/forgotten"]


def test_signing_in_rotates_the_session_and_signing_out_ends_it(console_server: ConsoleFactory) -> None:
    server = console_server()
    with server.client() as browser:
        first = browser.get("/console/queues/triage")
        assert first.status_code == 303 and first.headers["location"].startswith("/console/sign-in")
        browser.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="127.0.0.1", path="/")
        signed_in = server.sign_in(browser, AGENT)
        assert signed_in.status_code == 303
        session = browser.cookies[SESSION_COOKIE]
        assert session != "planted-by-an-attacker" and len(session) >= 40
        assert browser.get("/console/queues/triage").status_code == 200
        # Signing in again gives a new id and ends the old session.
        server.sign_in(browser, AGENT)
        assert browser.cookies[SESSION_COOKIE] != session
        with server.client(cookies={SESSION_COOKIE: session}) as thief:
            assert thief.get("/console/queues/triage").status_code == 303
        token = hidden(browser.get("/console/queues/triage").text)["csrf_token"]
        assert browser.post("/console/sign-out", data={"csrf_token": token}).status_code == 303
        assert browser.get("/console/queues/triage").status_code == 303
    # The cookie is HttpOnly: a script on the page cannot read it.
    with server.client() as browser:
        answer = server.sign_in(browser, AGENT)
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie


def test_sessions_end_when_idle_and_after_the_absolute_limit(console_server: ConsoleFactory) -> None:
    from datetime import UTC, datetime, timedelta

    server = console_server()  # 30 minutes idle, 12 hours absolute
    with server.client() as browser:
        server.sign_in(browser, AGENT)
        token = browser.cookies[SESSION_COOKIE]
    now = datetime.now(UTC)
    assert server.accounts.session(token, now=now + timedelta(minutes=29)) is not None  # used: touched
    assert server.accounts.session(token, now=now + timedelta(minutes=29 + 31)) is None  # idle too long
    with server.client() as browser:
        server.sign_in(browser, AGENT)
        token = browser.cookies[SESSION_COOKIE]
        signed_in_at = at = datetime.now(UTC)
        while at + timedelta(minutes=20) < signed_in_at + timedelta(hours=11, minutes=50):  # busy all day
            at += timedelta(minutes=20)
            assert server.accounts.session(token, now=at) is not None
        assert server.accounts.session(token, now=signed_in_at + timedelta(hours=12, minutes=10)) is None
        assert browser.get("/console/queues/triage").status_code == 303  # ended for good


def test_state_changing_requests_without_the_csrf_token_are_refused(console_server: ConsoleFactory) -> None:
    server = console_server()
    waste, _ = seed_two_departments(server)
    with server.client() as browser:
        server.sign_in(browser, AGENT)
        page = browser.get(f"/console/tickets/{waste}")
        token = hidden(page.text)["csrf_token"]
        for path, data in [("notes", {"note": "called her"}), ("status", {"status": "open"}),
                           ("assign", {"assignee": AGENT}), ("copy-in", {"address": "carer@example.com"}),
                           ("move", {"department": "highways", "reason": "street", "mode": "move"}),
                           ("reply", {"reply": "Hello"}), ("link", {"other": waste})]:
            without = browser.post(f"/console/tickets/{waste}/{path}", data=data)
            forged = browser.post(f"/console/tickets/{waste}/{path}",
                                  data={**data, "csrf_token": token[:-4] + "AAAA"})
            assert without.status_code == 400 and forged.status_code == 400, path
        assert "called her" not in browser.get(f"/console/tickets/{waste}").text
        ok = browser.post(f"/console/tickets/{waste}/notes", data={"note": "called her", "csrf_token": token})
        assert ok.status_code == 303
        assert "called her" in browser.get(f"/console/tickets/{waste}").text
    # The sign-in form itself carries a token too: a cross-site post cannot sign anyone in.
    with server.client() as other_site:
        refused = other_site.post("/console/sign-in", data={"email": AGENT, "password": PASSWORD})
        assert refused.status_code == 400 and SESSION_COOKIE not in other_site.cookies


def test_a_hundred_wrong_passwords_are_slowed_then_locked(console_server: ConsoleFactory) -> None:
    policy = ThrottlePolicy(account_slow_after=3, account_lock_after=10, base_delay_s=0.05, max_delay_s=0.4)
    server = console_server(throttle=policy)
    timings: list[tuple[int, float]] = []
    with server.client() as browser:
        token = hidden(browser.get("/console/sign-in").text)["csrf_token"]
        for _ in range(100):
            started = time.monotonic()
            answer = browser.post("/console/sign-in", data={"email": AGENT, "password": "guess",
                                                            "csrf_token": token})
            timings.append((answer.status_code, time.monotonic() - started))
        statuses = [s for s, _ in timings]
        assert statuses[:9] == [401] * 9 and set(statuses[10:]) == {429}
        assert "locked" in browser.post("/console/sign-in", data={"email": AGENT, "password": "guess",
                                                                   "csrf_token": token}).text
        # slowed: the later wrong answers took longer than the first ones
        assert min(t for _, t in timings[5:9]) >= 0.1 > 0.0
        # locked: even the right password is refused now
        right = browser.post("/console/sign-in",
                             data={"email": AGENT, "password": PASSWORD, "csrf_token": token})
        assert right.status_code == 429 and SESSION_COOKIE not in browser.cookies
    # another account is not locked by this one's attacker (the address limit is higher)
    with server.client() as colleague:
        assert server.sign_in(colleague, SUPERVISOR).status_code == 303


def test_an_officer_sees_only_their_departments_even_by_guessing_urls(console_server: ConsoleFactory) -> None:
    server = console_server()
    waste, housing = seed_two_departments(server)
    with server.client() as officer:
        server.sign_in(officer, WASTE_OFFICER)
        assert officer.get(f"/console/tickets/{waste}").status_code == 200
        page = officer.get(f"/console/tickets/{housing}")
        assert page.status_code == 403 and "Damp" not in page.text and "mould" not in page.text
        assert officer.get(f"/console/tickets/{housing}/messages/1/attachments/0").status_code == 403
        assert officer.get(f"/console/tickets/{housing}/messages/2/attachments/0").status_code == 403
        # the housing message's attachment asked for under the waste ticket's reference
        assert officer.get(f"/console/tickets/{waste}/messages/2/attachments/0").status_code in (403, 404)
        assert officer.get("/console/queues/department:housing").status_code == 403
        token = hidden(officer.get(f"/console/tickets/{waste}").text)["csrf_token"]
        assert officer.post(f"/console/tickets/{housing}/notes",
                            data={"note": "x", "csrf_token": token}).status_code == 403
        search = officer.get("/console/search", params={"q": "bob@example.com"})
        assert "Damp" not in search.text
        assert housing not in officer.get("/console/queues/department:waste").text
    with server.client() as agent:
        server.sign_in(agent, AGENT)
        page = agent.get(f"/console/tickets/{housing}")
        assert page.status_code == 200 and "Black mould" in page.text
        download = agent.get(f"/console/tickets/{housing}/messages/2/attachments/0")
        assert download.status_code == 200 and download.content == b"%PDF-1.4 survey"
        assert download.headers["content-disposition"].startswith("attachment")
    with server.client() as admin:  # administers users, reads no tickets
        server.sign_in(admin, ADMIN)
        assert admin.get(f"/console/tickets/{waste}").status_code == 403


def test_every_page_has_the_security_headers(console_server: ConsoleFactory) -> None:
    server = console_server()
    with server.client() as browser:
        pages = [browser.get("/contact"), browser.get("/console/sign-in"), browser.get("/healthz")]
        server.sign_in(browser, AGENT)
        pages.append(browser.get("/console/queues/triage"))
    for page in pages:
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"]


def test_health_and_readiness(console_server: ConsoleFactory) -> None:
    server = console_server()
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


@pytest.mark.parametrize("path", ["/console/queues/triage", "/console/search?q=x",
                                  "/console/tickets/FD-AAAA-AAAA"])
def test_pages_need_sign_in(console_server: ConsoleFactory, path: str) -> None:
    server = console_server()
    with server.client() as anonymous:
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in?next=")
