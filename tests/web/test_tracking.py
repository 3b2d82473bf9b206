"""Residents' tracking through the real app over HTTP: the link, the typed form, what the page
shows and never shows, a message with a photo through the intake into the ticket, the rating,
and answers that reveal nothing to someone guessing references or secrets."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from schemas.inbound import InboundMessage
from tests.tickets import factory
from tests.web.console_support import (
    ConsoleFactory,
    ConsoleServer,
    hidden,
)
from tickets import casework, outbox
from tickets.models import FeedbackDepartment, Ticket, TicketMessage
from tickets.outbox import OutboxPolicy
from tickets.service import issue_tracking_secret
from web.tracking import TRACK_COOKIE

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def open_ticket(server: ConsoleServer, sender: str, subject: str, body: str, *, department: str = "waste",
                cc: list[str] | None = None) -> tuple[int, str, str]:
    """A ticket written by the ticket stage, and its tracking secret (as the acknowledgement has it)."""
    message = factory.email(sender, subject, body, message_id=f"<{subject.replace(' ', '-')}@example.com>",
                            name="Ann Example", cc=cc)
    server.receive(factory.routed(message, department))
    with server.engine.begin() as conn:
        ticket_id, reference = conn.execute(select(Ticket.id, Ticket.reference)
                                            .where(Ticket.subject == subject)).one()
        secret = issue_tracking_secret(conn, ticket_id)
    return ticket_id, reference, secret


def follow_link(client: httpx.Client, reference: str, secret: str) -> httpx.Response:
    return client.get("/track", params={"ref": reference, "secret": secret})


def normalised(page: httpx.Response) -> str:
    """The page without its per-response CSRF token."""
    return re.sub(r'name="csrf_token" value="[^"]*"', "", page.text)


def test_the_link_opens_the_status_and_timeline_but_never_notes_or_others(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    ticket_id, reference, secret = open_ticket(
        server, "ann@example.com", "Bin not collected", "My green bin was missed again on Elm Road.",
        cc=["carer@example.org"])
    casework.add_note(server.engine, ticket_id, author="agent@council.example.gov.uk",
                      body="INTERNAL: resident is on the assisted collections list")
    casework.change_status(server.engine, ticket_id, actor="agent@council.example.gov.uk", status="open")
    # Someone copied in writes too: their words are not the resident's to see here.
    carer = factory.email("carer@example.org", "Re: Bin not collected",
                          "PRIVATE: the carer's own phone is 07700",
                          message_id="<carer-1@example.org>", in_reply_to="<Bin-not-collected@example.com>",
                          at=factory.later(30))
    server.receive(factory.routed(carer, "waste"))

    with server.client() as browser:
        answer = follow_link(browser, reference, secret)
        assert answer.status_code == 303 and answer.headers["location"] == "/track/enquiry"
        assert TRACK_COOKIE in browser.cookies  # the secret leaves the address bar at once
        page = browser.get("/track/enquiry")
    assert page.status_code == 200
    assert f"Reference {reference}" in page.text
    assert "Being dealt with" in page.text and "Waste and recycling" in page.text
    assert "My green bin was missed again on Elm Road." in page.text
    assert "INTERNAL" not in page.text and "assisted collections" not in page.text
    assert "PRIVATE" not in page.text and "carer@example.org" not in page.text
    assert "model" not in page.text.lower() and "confidence" not in page.text.lower()
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_a_typed_reference_and_code_work_and_the_form_needs_its_csrf_token(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    _, reference, secret = open_ticket(server, "ann@example.com", "Pothole", "A deep pothole on Mill Lane.",
                                       department="highways")
    with server.client() as browser:
        form = browser.get("/track")
        token = hidden(form.text)["csrf_token"]
        forged = browser.post("/track", data={"reference": reference, "secret": secret, "csrf_token": "x"})
        assert forged.status_code == 400 and TRACK_COOKIE not in browser.cookies
        typed = browser.post("/track", data={"reference": f" {reference.lower()} ", "secret": secret,
                                             "csrf_token": token})
        assert typed.status_code == 303
        assert "A deep pothole on Mill Lane." in browser.get("/track/enquiry").text


def test_wrong_secrets_and_a_thousand_guessed_references_answer_alike(console_server: ConsoleFactory) -> None:
    server = console_server()
    _, reference, secret = open_ticket(server, "ann@example.com", "Noise", "Loud music every night.",
                                       department="environmental_health")
    _, other_reference, other_secret = open_ticket(server, "bob@example.com", "Rats", "Rats in the yard.",
                                                   department="environmental_health")
    with server.client() as browser:
        wrong = follow_link(browser, reference, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
        crossed = follow_link(browser, reference, other_secret)
        unknown = follow_link(browser, "FD-2222-2222", secret)
        assert wrong.status_code == crossed.status_code == unknown.status_code == 404
        assert normalised(wrong) == normalised(crossed)
        assert normalised(unknown).replace("FD-2222-2222", reference) == normalised(wrong)
        assert "Noise" not in wrong.text and "Rats" not in crossed.text
        assert other_reference not in crossed.text
        guesses = [follow_link(browser, f"FD-{n:04d}-{n:04d}".replace("0", "A"), other_secret)
                   for n in range(1000)]
        statuses = {g.status_code for g in guesses}
        assert statuses == {404, 429}  # alike, then refused once the address used its tries
        limited = [normalised(g) for g in guesses if g.status_code == 429]
        assert len(limited) > 950 and all("Too many tries" in text for text in limited)
        # Past the limit the right pair is refused in the same words: no oracle left.
        right = follow_link(browser, reference, secret)
        assert right.status_code == 429 and TRACK_COOKIE not in browser.cookies
        def bare(text: str) -> str:  # the typed reference and the minutes left differ, nothing else
            return re.sub(r'value="FD-[^"]*"|try again in \d+ minutes', "", text)

        assert all(bare(limited[0]) == bare(text) for text in [*limited[:3], normalised(right)])
        assert "Noise" not in right.text


def test_a_message_with_a_photo_goes_through_the_intake_and_joins_the_ticket(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    ticket_id, reference, secret = open_ticket(server, "ann@example.com", "Fly-tipping",
                                               "Mattresses dumped in the alley behind Oak Street.")
    store = server.app.state.ctx.store
    with server.client() as browser:
        follow_link(browser, reference, secret)
        page = browser.get("/track/enquiry")
        fields = hidden(page.text)
        empty = browser.post("/track/enquiry/message", data=fields, files={"photo": ("", b"")})
        assert empty.status_code == 422 and "Enter a message or choose a photo" in empty.text
        sent = browser.post("/track/enquiry/message", data={**fields, "message": "Here is a photo of it."},
                            files={"photo": ("alley.png", PNG, "image/png")})
        assert sent.status_code == 303
        again = browser.post("/track/enquiry/message", data={**fields, "message": "Here is a photo of it."},
                             files={"photo": ("alley.png", PNG, "image/png")})
        assert again.status_code == 303  # a double click: one message
        assert "Your message is sent" in browser.get(sent.headers["location"]).text
    [row] = [r for r in store.unpublished(100)]
    message = InboundMessage.model_validate_json(row.message_json)
    assert message.threading.reference == reference and message.sender.email == "ann@example.com"
    assert message.source.form_id == "track" and message.attachments[0].filename == "alley.png"

    server.receive(factory.routed(message, "waste"))  # as the relay, router and ticket stage would
    with server.engine.connect() as conn:
        joined = conn.execute(select(TicketMessage.ticket_id, TicketMessage.thread_rule)
                              .where(TicketMessage.dedupe_key == message.dedupe_key)).one()
    assert joined == (ticket_id, "reference")
    with server.client() as browser:
        follow_link(browser, reference, secret)
        timeline = browser.get("/track/enquiry").text
    assert "Here is a photo of it." in timeline and "Attached: alley.png" in timeline


def test_after_closure_the_resident_rates_every_department_that_handled_it(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    ticket_id, reference, secret = open_ticket(server, "ann@example.com", "Abandoned car",
                                               "A car with no plates outside number 4.", department="waste")
    with server.client() as browser:
        follow_link(browser, reference, secret)
        page = browser.get("/track/enquiry")
        assert "How did we do?" not in page.text
        early = browser.post("/track/enquiry/feedback", data={**hidden(page.text), "rating": "5"})
        assert early.status_code == 422 and "once the enquiry is resolved or closed" in early.text
        casework.move(server.engine, ticket_id, actor="agent@council.example.gov.uk", to="parking",
                      reason="abandoned vehicles are parking's")
        casework.change_status(server.engine, ticket_id, actor="agent@council.example.gov.uk",
                               status="closed", policy=OutboxPolicy(public_url="https://enquiries.example.gov.uk"))
        with server.engine.connect() as conn:  # the closing message invites the rating, by email
            [invitation] = [r for r in outbox.for_ticket(conn, ticket_id) if r.body and "rate our" in r.body]
        assert invitation.recipient == "ann@example.com" and invitation.channel.value == "email"
        assert "https://enquiries.example.gov.uk/track" in invitation.body and reference in invitation.body
        page = browser.get("/track/enquiry")
        assert "How did we do?" in page.text
        rated = browser.post("/track/enquiry/feedback", data={**hidden(page.text), "rating": "2",
                                                               "comment": "Took three weeks to move it."})
        assert rated.status_code == 303
        page = browser.get("/track/enquiry")
        assert "You gave 2 out of 5 stars" in page.text and "Change your rating" in page.text
        browser.post("/track/enquiry/feedback", data={**hidden(page.text), "rating": "1",
                                                       "comment": "Still there."})
    with server.engine.connect() as conn:
        rows = dict(conn.execute(select(FeedbackDepartment.department, FeedbackDepartment.rating)
                                 .where(FeedbackDepartment.ticket_id == ticket_id)).all())
    assert rows == {"parking": 1, "waste": 1}
