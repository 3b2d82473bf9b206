"""The console in Debian's chromium (Playwright): the journeys of issue 13, axe-core on every
page, hostile payloads that must never run, and keyboard-only use.

Set FRONTDOOR_SCREENSHOTS=DIR to keep a full-page screenshot of every page visited.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from schemas.inbound import Channel, InboundMessage, Party
from tests.tickets import factory
from tests.web.console_support import PASSWORD, ConsoleFactory, ConsoleServer
from tickets.models import Correction, Ticket, TicketEvent

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
AGENT = "agent@council.example.gov.uk"
SUPERVISOR = "supervisor@council.example.gov.uk"

HOSTILE = [
    "<script>alert('email-script')</script>",
    "<img src=x onerror=\"alert('email-onerror')\">",
    "<a href=\"javascript:alert('email-js')\">click me</a>",
    "<svg onload=\"alert('svg')\"></svg>",
]


class Watched:
    """A page whose dialogs (alert, confirm) and console errors are recorded: none may happen."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dismiss)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        shots = os.environ.get("FRONTDOOR_SCREENSHOTS")
        self.shots = Path(shots) if shots else None

    def _dismiss(self, dialog: Any) -> None:
        """A script that opened a dialog ran: record it (the payload tests assert none did)."""
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def check(self, name: str) -> None:
        """axe-core finds no serious or critical violation; a screenshot when asked for."""
        self.page.wait_for_load_state("networkidle")
        # the components have started (GOV.UK Frontend adds its buttons) and the fonts are in
        self.page.wait_for_function("document.readyState === 'complete' && window.htmx !== undefined")
        self.page.evaluate("document.fonts.ready.then(() => new Promise("
                           "r => requestAnimationFrame(() => r(true))))")
        result = self.page.evaluate(  # axe is added by an init script: not subject to the page's CSP
            "axe.run(document, {resultTypes: ['violations'], runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})")
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
        assert bad == [], f"{name}: {json.dumps(bad)}"
        h1 = self.page.locator("h1")
        assert h1.count() == 1, name
        assert (h1.text_content() or "").strip().split()[0] in self.page.title(), name
        if self.shots:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run npm ci")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def watched(browser: Any) -> Watched:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(path=str(AXE))
    return Watched(context.new_page())


def sign_in(w: Watched, server: ConsoleServer, email: str) -> None:
    w.page.goto(f"{server.base_url}/console/sign-in")
    w.check("sign-in")
    w.page.get_by_label("Email address").fill(email)
    w.page.get_by_label("Password", exact=True).fill(PASSWORD)
    w.page.get_by_role("button", name="Sign in").click()
    w.page.wait_for_url("**/console/queues/**")


def seed(server: ConsoleServer) -> None:
    html = ("<h1>Pothole</h1><p>There is a deep <b>pothole</b> outside 12 Mill Lane, LS1 4AP.</p>"
            "<img src='https://tracker.example/pixel.gif' alt='tracker'>" + "".join(HOSTILE))
    pothole = factory.email("priya@example.com", "Hole in the road <script>alert('subject')</script>",
                            "There is a deep pothole outside 12 Mill Lane.",
                            message_id="<pothole-1@example.com>",
                            name="Priya Shah <img src=x onerror=alert('name')>")
    pothole = pothole.model_copy(update={"body_html": html})
    server.receive(factory.routed(pothole, "waste", departments=[], triage=True, confidence=0.41))
    sms = factory.sms("+447700900123", "javascript:alert('sms') the street light on Mill Lane is out",
                      sid="SM" + "1" * 32)
    server.receive(factory.routed(sms, "highways", confidence=0.93))
    first = factory.form("sam@example.com", None, "My bin was not emptied on Monday.", key="k1",
                         reference=None,
                         name="Sam Jones", subject="Missed bin")
    second = factory.form("sam@example.com", None, "Still not emptied, same bin.", key="k2", reference=None,
                          name="Sam Jones", subject="Missed bin again", at=factory.later(60 * 24 * 30))
    server.receive(factory.routed(first, "waste"))
    server.receive(factory.routed(second, "waste"))
    note = InboundMessage(channel=Channel.PHONE, sender=Party(name="<b onmouseover=alert('caller')>Dee</b>",
                                                              phone="+447911123457"),
                          subject="Call: <svg/onload=alert('note')>", received_at=factory.T0,
                          body_text="<script>alert('call-note')</script> wants a bulky waste collection",
                          dedupe_key="note:demo-1")
    server.receive(factory.routed(note, "waste"))


def reference(server: ConsoleServer, subject_start: str) -> str:
    with server.engine.connect() as conn:
        return str(conn.scalar(select(Ticket.reference).where(Ticket.subject.startswith(subject_start))))


def test_an_agent_works_a_triaged_email_end_to_end(console_server: ConsoleFactory, browser: Any) -> None:
    server = console_server()
    seed(server)
    pothole = reference(server, "Hole in the road")
    w = watched(browser)
    sign_in(w, server, AGENT)
    page = w.page
    assert "Triage (1)" in page.text_content(".moj-sub-navigation")
    w.check("queue-triage")
    page.get_by_role("link", name=pothole).click()
    page.wait_for_url(f"**/console/tickets/{pothole}")
    w.check("ticket")
    body = page.locator(".fd-email-html")
    assert "deep pothole outside 12 Mill Lane" in body.text_content()
    assert body.locator("script, form, svg, [onerror], [onload]").count() == 0
    assert body.locator("a").get_attribute("href") is None  # the javascript: link lost its href
    assert "remote images were blocked" in page.text_content("main")
    assert page.locator("img[src*='tracker.example']").count() == 0
    page.get_by_text("Why it is here").first.click()
    assert "41% confident" in page.text_content(".fd-why")

    page.get_by_label("Move to or add department").select_option("highways")
    page.get_by_label("Reason").fill("A pothole is a highways matter")
    page.get_by_role("button", name="Move or add department").click()
    page.wait_for_url("**done=move**")
    assert "the correction is recorded" in page.text_content(".govuk-notification-banner")
    w.check("ticket-moved")

    page.get_by_label("Reply to the resident").fill("Thank you: our highways team will inspect it this week.")
    page.get_by_role("button", name="Send reply").click()
    page.wait_for_url("**done=reply**")
    page.get_by_label("Internal note").fill("Checked: no earlier reports at this address.")
    page.get_by_role("button", name="Add note").click()
    page.wait_for_url("**done=note**")
    assert "no earlier reports" in page.text_content(".moj-timeline")
    assert w.dialogs == [] and w.errors == []

    with server.engine.connect() as conn:
        ticket = conn.execute(select(Ticket).where(Ticket.reference == pothole)).one()
        assert ticket.primary_department == "highways" and not ticket.triage
        [correction] = conn.execute(select(Correction).where(Correction.ticket_id == ticket.id)).all()
        assert (correction.from_department, correction.to_department) == ("waste", "highways")
        kinds = [k for (k,) in conn.execute(
            select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id))]
        assert "corrected" in kinds and "reply_queued" in kinds and "note_added" in kinds
        outbox = conn.exec_driver_sql("SELECT recipient, body, status FROM outbox WHERE ticket_id = ?",
                                      (ticket.id,)).all()
        assert outbox == [("priya@example.com", "Thank you: our highways team will inspect it this week.",
                           "created")]


def test_a_supervisor_merges_two_tickets_of_one_resident_and_undoes_it(console_server: ConsoleFactory,
                                                                       browser: Any) -> None:
    server = console_server()
    seed(server)
    first, second = reference(server, "Missed bin"), reference(server, "Missed bin again")
    assert first != second
    w = watched(browser)
    sign_in(w, server, SUPERVISOR)
    page = w.page
    page.goto(f"{server.base_url}/console/tickets/{second}")
    # the resident's other ticket is on the timeline
    assert "Missed bin" in page.text_content(".moj-timeline")
    page.get_by_label("Merge into another ticket").fill(first)
    page.get_by_role("button", name="Merge…").click()
    page.wait_for_url("**/merge?into=**")
    w.check("merge-confirm")
    page.get_by_role("button", name="Merge tickets").click()
    page.wait_for_url(f"**/console/tickets/{first}?done=merge**")
    assert "Tickets merged" in page.text_content(".govuk-notification-banner")
    with server.engine.connect() as conn:
        assert conn.scalar(select(Ticket.status).where(Ticket.reference == second)) == "merged"
    page.get_by_role("button", name=f"Undo merge of {second} into {first}").click()
    page.wait_for_url("**done=unmerge**")
    with server.engine.connect() as conn:
        assert conn.scalar(select(Ticket.status).where(Ticket.reference == second)) != "merged"
    assert w.dialogs == [] and w.errors == []


def test_pages_pass_axe_and_payloads_never_run(console_server: ConsoleFactory, browser: Any) -> None:
    server = console_server()
    seed(server)
    w = watched(browser)
    sign_in(w, server, SUPERVISOR)
    page = w.page
    for queue in ("mine", "breached", "department:highways"):
        page.goto(f"{server.base_url}/console/queues/{queue}")
        w.check(f"queue-{queue.replace(':', '-')}")
    page.goto(f"{server.base_url}/console/tickets/{reference(server, 'Call:')}")
    assert "<script>alert('call-note')</script>" in page.text_content(".moj-timeline")  # shown as text
    w.check("ticket-call-note")
    page.goto(f"{server.base_url}/console/queues/department:waste?sort=reference&order=asc&channel=webform")
    assert page.locator("tbody tr").count() == 2
    w.check("queue-filtered")
    page.get_by_label("Search enquiries").fill("+447700900123")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/search?q=**")
    assert page.locator("tbody tr").count() == 1
    w.check("search")
    pothole = reference(server, "Hole in the road")
    page.goto(f"{server.base_url}/console/tickets/{pothole}")
    assert page.locator("img[src*='tracker.example']").count() == 0
    page.get_by_role("link", name="Show images in this message").click()
    page.wait_for_url("**images=**")
    # asked for: the https image is shown (its host does not exist here, so its load fails)
    assert page.locator(".fd-email-html img[src='https://tracker.example/pixel.gif']").count() == 1
    w.errors = [e for e in w.errors if "ERR_NAME_NOT_RESOLVED" not in e]
    page.goto(f"{server.base_url}/contact")
    w.check("contact")
    assert w.dialogs == [], w.dialogs
    assert w.errors == [], w.errors


def test_new_work_appears_without_a_reload_and_the_keyboard_reaches_it(console_server: ConsoleFactory,
                                                                       browser: Any) -> None:
    server = console_server()
    w = watched(browser)
    sign_in(w, server, AGENT)
    page = w.page
    page.goto(f"{server.base_url}/console/queues/department:highways")
    assert page.locator("tbody tr").count() == 0
    page.evaluate("document.getElementById('queue-table').setAttribute('hx-trigger', 'every 1s');"
                  "htmx.process(document.getElementById('queue-table'))")
    light = factory.sms("+447700900555", "Street light out on Park Row", sid="SM" + "2" * 32)
    server.receive(factory.routed(light, "highways"))
    page.wait_for_selector("tbody tr", timeout=30_000)  # polled every second; generous for a busy machine
    # keyboard only: tab to the new ticket's link and open it
    link = page.locator("tbody tr a").first
    for _ in range(100):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.closest('tbody') !== null"):
            break
    assert page.evaluate("document.activeElement.textContent") == link.text_content()
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/tickets/FD-**")
    assert "Street light out on Park Row" in page.text_content(".moj-timeline")
    assert w.dialogs == [] and w.errors == []
