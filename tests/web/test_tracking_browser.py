"""Tracking and the dashboard in a real browser (Debian's chromium driven by Playwright): a
resident follows the acknowledgement's link, sees the status, adds a photo, rates the service
once it is closed, and the rating shows on the dashboard for each department that handled it;
an agent moves a ticket and the dashboard's accuracy and confusion matrix change. axe-core
checks every page for serious or critical violations. Screenshots land in
``$FRONTDOOR_SCREENSHOTS`` when it is set (to look at the pages)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from schemas.inbound import InboundMessage
from tests.tickets import factory
from tests.web.console_support import PASSWORD, ConsoleFactory, ConsoleServer
from tickets import casework
from tickets.models import Ticket
from tickets.outbox import OutboxPolicy, tracking_url
from tickets.service import issue_tracking_secret

pytestmark = [pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SUPERVISOR = "supervisor@council.example.gov.uk"
AGENT = "agent@council.example.gov.uk"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
            for v in result["violations"] if v.get("impact") in ("serious", "critical")]


def look(page: Any, name: str) -> None:
    """Check the page with axe and keep a screenshot of it when asked to."""
    assert serious_violations(page) == [], name
    folder = os.environ.get("FRONTDOOR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_in(page: Any, server: ConsoleServer, email: str) -> None:
    page.goto(f"{server.base_url}/console/sign-in")
    page.get_by_label("Email address").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_a_resident_tracks_adds_a_photo_and_rates_and_the_dashboard_shows_it(
        console_server: ConsoleFactory, browser: Any, tmp_path: Path) -> None:
    server = console_server()
    car = factory.email("ann@example.com", "Abandoned car", "A silver car with no plates outside 4 Elm Road.",
                        message_id="<car-1@example.com>", name="Ann Example")
    server.receive(factory.routed(car, "waste"))
    with server.engine.begin() as conn:
        ticket_id, reference = conn.execute(select(Ticket.id, Ticket.reference)).one()
        secret = issue_tracking_secret(conn, ticket_id)
    casework.add_note(server.engine, ticket_id, author=AGENT, body="INTERNAL: owner known to us")
    link = tracking_url(OutboxPolicy(public_url=server.base_url), reference, secret)

    resident = browser.new_page()
    resident.goto(link)
    assert resident.url.endswith("/track/enquiry")  # the secret left the address bar
    assert resident.locator("#summary").get_by_text("Received").is_visible()
    assert "Waste and recycling" in resident.text_content("#summary")
    assert "INTERNAL" not in resident.content()
    look(resident, "track-status")

    photo = tmp_path / "car.png"
    photo.write_bytes(PNG)
    resident.get_by_label("Your message").fill("Here is a photo of the car.")
    resident.get_by_label("A photo or document (optional)").set_input_files(str(photo))
    resident.get_by_role("button", name="Send", exact=True).click()
    assert "Your message is sent" in resident.text_content(".govuk-notification-banner")
    look(resident, "track-sent")
    [row] = server.app.state.ctx.store.unpublished(10)
    server.receive(factory.routed(InboundMessage.model_validate_json(row.message_json), "waste"))

    agent = browser.new_page()
    sign_in(agent, server, AGENT)
    agent.goto(f"{server.base_url}/console/tickets/{reference}")
    agent.locator("#department").select_option("parking")
    agent.locator("#reason").fill("Abandoned vehicles are parking's")
    agent.get_by_role("button", name="Move or add department").click()
    agent.wait_for_load_state()
    casework.change_status(server.engine, ticket_id, actor=AGENT, status="closed")

    resident.reload()
    assert "Attached: car.png" in resident.text_content("#timeline")
    assert "Parking" in resident.text_content("#summary")
    resident.get_by_label("2 stars: dissatisfied").check()
    resident.get_by_label("Tell us why (optional)").fill("It took three weeks to tow it away.")
    look(resident, "track-rating-form")
    resident.get_by_role("button", name="Send feedback").click()
    assert "You gave 2 out of 5 stars" in resident.text_content("#your-rating")
    look(resident, "track-rated")

    resident.goto(f"{server.base_url}/track")
    look(resident, "track-find")

    supervisor = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(supervisor, server, SUPERVISOR)
    supervisor.goto(f"{server.base_url}/console/dashboard/satisfaction")
    table = supervisor.locator("#satisfaction-table")
    for department in ("Parking", "Waste and recycling"):
        row = table.locator("tr", has=supervisor.locator("th", has_text=department))
        assert row.locator("td").first.text_content() == "2.00"
    assert "It took three weeks to tow it away." in supervisor.text_content("#low-ratings-table")
    supervisor.wait_for_function("document.querySelector('#satisfaction canvas').width > 0")
    look(supervisor, "dashboard-satisfaction")


def test_an_agents_correction_changes_the_dashboards_accuracy_and_confusion_matrix(
        console_server: ConsoleFactory, browser: Any) -> None:
    server = console_server()
    for n, (subject, department) in enumerate([("Car dumped on the verge", "waste"), ("Damp", "housing"),
                                               ("Pothole", "highways"), ("Bins", "waste")]):
        message = factory.email(f"r{n}@example.com", subject, f"{subject}: please help.",
                                message_id=f"<m{n}@example.com>", at=factory.later(n))
        server.receive(factory.routed(message, department))
    with server.engine.connect() as conn:
        car = conn.scalar(select(Ticket.reference).where(Ticket.subject == "Car dumped on the verge"))
    ops = browser.new_page(viewport={"width": 1280, "height": 900})
    server.accounts.add_user("ops@council.example.gov.uk", PASSWORD, "ops", ())
    sign_in(ops, server, "ops@council.example.gov.uk")
    ops.goto(f"{server.base_url}/console/dashboard/routing")
    assert ops.text_content("#accuracy") == "100.0%"
    ops.wait_for_function("document.querySelector('#routing-weekly canvas').width > 0")
    look(ops, "dashboard-routing-before")

    agent = browser.new_page()
    sign_in(agent, server, AGENT)
    agent.goto(f"{server.base_url}/console/tickets/{car}")
    agent.locator("#department").select_option("parking")
    agent.locator("#reason").fill("Abandoned vehicles are parking's")
    agent.get_by_role("button", name="Move or add department").click()
    agent.wait_for_load_state()

    ops.reload()
    assert ops.text_content("#accuracy") == "75.0%"
    header = [c.strip() for c in ops.locator("#confusion-table thead th").all_text_contents()]
    assert "Parking" in header
    waste = ops.locator("#confusion-table tbody tr", has=ops.locator("th", has_text="Waste and recycling"))
    cells = [c.strip() for c in waste.locator("td").all_text_contents()]
    assert cells[header.index("Parking") - 1] == "1" and cells[header.index("Waste and recycling") - 1] == "1"
    look(ops, "dashboard-routing-after")
    for section in ("deadlines", "ingest"):
        ops.goto(f"{server.base_url}/console/dashboard/{section}")
        look(ops, f"dashboard-{section}")
    ops.goto(f"{server.base_url}/console/report?month=2026-11")
    look(ops, "report-page")
