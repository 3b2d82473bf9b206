"""The residents pages through the real app over HTTP: one resident's whole history, and the
possible duplicates a supervisor merges (then undoes) or rejects. One browser journey with
axe-core over both pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.tickets import factory
from tests.web.console_support import ConsoleFactory, ConsoleServer, hidden
from tests.web.test_console_browser import browser, watched  # noqa: F401  (the browser fixture)
from tickets.models import Merge, Resident, ResidentIdentity, SuggestedMerge, Ticket

AGENT = "agent@council.example.gov.uk"
SUPERVISOR = "supervisor@council.example.gov.uk"
WASTE_OFFICER = "waste.officer@council.example.gov.uk"


def seed(server: ConsoleServer) -> tuple[int, int]:
    """Ann writes by email (waste, then housing); a texter writes from a number (housing); then
    a web form gives Ann's email and the texter's number, so the stage suggests merging them.
    Returns (Ann's resident id, the texter's)."""
    server.receive(factory.routed(factory.email(
        "ann@example.com", "Bin not collected", "My green bin was missed again.",
        message_id="<bins-1@example.com>", name="Ann Example"), "waste"))
    server.receive(factory.routed(factory.email(
        "ann@example.com", "Damp in my flat", "Black mould in the bedroom.",
        message_id="<damp-1@example.com>", name="Ann Example", at=factory.later(5)), "housing"))
    server.receive(factory.routed(factory.sms(
        "07700 900123", "The boiler has broken again", sid="SM" + "2" * 32, at=factory.later(10)), "housing"))
    server.receive(factory.routed(factory.form(
        "ann@example.com", "07700 900123", "Still no collection, please call me", key="k-ann",
        reference=None, name="Ann Example", subject="Missed bin again", at=factory.later(20)), "waste"))
    with server.engine.connect() as conn:
        holder = select(ResidentIdentity.resident_id)
        ann = conn.scalar(holder.where(ResidentIdentity.value == "ann@example.com"))
        texter = conn.scalar(holder.where(ResidentIdentity.value == "+447700900123"))
    assert ann is not None and texter is not None and ann != texter
    return int(ann), int(texter)


def state(server: ConsoleServer) -> dict[str, Any]:
    """Who holds each ticket, address and number, and the suggestions: what a merge changes."""
    with server.engine.connect() as conn:
        return {
            "tickets": dict(conn.execute(select(Ticket.reference, Ticket.resident_id)).all()),
            "identities": dict(conn.execute(select(ResidentIdentity.value,
                                                   ResidentIdentity.resident_id)).all()),
            "residents": {r.id: (r.name, r.merged_into_id) for r in conn.execute(select(Resident)).all()},
            "suggestions": [(s.resident_a_id, s.resident_b_id, s.resolution, s.resolved_by, s.resolved_at)
                            for s in conn.execute(select(SuggestedMerge)).all()],
        }


def suggestion_id(server: ConsoleServer) -> int:
    with server.engine.connect() as conn:
        return int(conn.scalar(select(SuggestedMerge.id)) or 0)


@contextmanager
def signed_in(server: ConsoleServer, email: str) -> Iterator[httpx.Client]:
    with server.client() as client:
        assert server.sign_in(client, email).status_code == 303
        yield client


def token(client: httpx.Client, path: str = "/console/queues/triage") -> str:
    return hidden(client.get(path).text)["csrf_token"]


def test_a_residents_page_shows_every_address_number_and_ticket_newest_first(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    ann, _ = seed(server)
    with signed_in(server, AGENT) as agent:
        page = agent.get(f"/console/residents/{ann}")
        assert page.status_code == 200
        assert "Ann Example" in page.text and "ann@example.com" in page.text
        table = page.text.split("<h2 class=\"govuk-heading-m\">Enquiries</h2>", 1)[1]
        subjects = re.findall(r"Missed bin again|Damp in my flat|Bin not collected", table)
        assert subjects == ["Missed bin again", "Damp in my flat", "Bin not collected"]  # newest first
        assert "Housing" in table and "Waste and recycling" in table and "Web form" in table
        assert "Undo" not in page.text  # no merges yet, and an agent may not merge anyway
        # reached from the ticket page's identity bar and from search results
        reference = re.findall(r"FD-[0-9A-Z]{4}-[0-9A-Z]{4}", table)[0]
        assert f'href="/console/residents/{ann}"' in agent.get(f"/console/tickets/{reference}").text
        assert f'href="/console/residents/{ann}"' in agent.get("/console/search",
                                                               params={"q": "ann@example.com"}).text
        assert agent.get("/console/residents/999999").status_code == 404


def test_agents_cannot_merge_and_officers_see_only_their_departments(console_server: ConsoleFactory) -> None:
    server = console_server()
    ann, texter = seed(server)
    before = state(server)
    sid = suggestion_id(server)
    with signed_in(server, AGENT) as agent:
        csrf = token(agent)
        assert agent.get("/console/residents/duplicates").status_code == 403
        assert agent.get(f"/console/residents/duplicates/{sid}/merge").status_code == 403
        assert agent.post(f"/console/residents/duplicates/{sid}/merge",
                          data={"csrf_token": csrf, "confirm": "yes"}).status_code == 403
        assert agent.post(f"/console/residents/duplicates/{sid}/reject",
                          data={"csrf_token": csrf}).status_code == 403
        assert "Possible duplicates" not in agent.get("/console/queues/triage").text
    with signed_in(server, WASTE_OFFICER) as officer:
        mine = officer.get(f"/console/residents/{ann}")
        assert mine.status_code == 200
        assert "Bin not collected" in mine.text and "Missed bin again" in mine.text
        assert "Damp" not in mine.text  # Ann's housing ticket is not theirs
        theirs = officer.get(f"/console/residents/{texter}")  # only housing tickets
        assert theirs.status_code == 403 and "boiler" not in theirs.text
        assert officer.get("/console/residents/999999").status_code == 403  # as a guessed ticket
        assert officer.get("/console/residents/duplicates").status_code == 403
    assert state(server) == before


def test_merge_then_undo_restores_the_exact_prior_state(database_url: str,
                                                        console_server: ConsoleFactory) -> None:
    server = console_server(database_url=database_url)
    ann, texter = seed(server)
    before = state(server)
    sid = suggestion_id(server)
    with signed_in(server, SUPERVISOR) as supervisor:
        queue = supervisor.get("/console/queues/triage")
        assert "Possible duplicates (1)" in queue.text
        listing = supervisor.get("/console/residents/duplicates")
        assert listing.status_code == 200
        assert "+447700900123" in listing.text and "ann@example.com" in listing.text
        assert f"/console/residents/duplicates/{sid}/merge" in listing.text
        confirm = supervisor.get(f"/console/residents/duplicates/{sid}/merge")
        assert confirm.status_code == 200
        assert f"The older record, Ann Example (resident {ann}), is kept" in confirm.text
        assert state(server) == before  # the confirm step changes nothing
        # without the confirm step's field nothing happens either
        csrf = hidden(confirm.text)["csrf_token"]
        unconfirmed = supervisor.post(f"/console/residents/duplicates/{sid}/merge", data={"csrf_token": csrf})
        assert unconfirmed.status_code == 422 and state(server) == before
        merged = supervisor.post(f"/console/residents/duplicates/{sid}/merge",
                                 data={"csrf_token": csrf, "confirm": "yes", "reason": "same person, phoned"})
        assert merged.status_code == 303
        assert merged.headers["location"].startswith(f"/console/residents/{ann}")
        after = state(server)
        assert set(after["tickets"].values()) == {ann}  # the texter's ticket is under Ann now
        assert after["identities"]["+447700900123"] == ann
        assert after["suggestions"][0][2:4] == ("merged", SUPERVISOR)
        page = supervisor.get(merged.headers["location"])
        assert "Residents merged" in page.text and "boiler" not in page.text  # subjects only, not bodies
        assert "same person, phoned" in page.text and "+447700900123" in page.text
        # the merged-away record's page leads to the one that stayed
        gone = supervisor.get(f"/console/residents/{texter}")
        assert gone.headers["location"] == f"/console/residents/{ann}"
        assert "Possible duplicates (0)" in supervisor.get("/console/queues/triage").text
        with server.engine.connect() as conn:
            merge_id = int(conn.scalar(select(Merge.id).where(Merge.kind == "resident")) or 0)
        assert f"/console/residents/merges/{merge_id}/undo" in page.text
        csrf = hidden(page.text)["csrf_token"]
        undone = supervisor.post(f"/console/residents/merges/{merge_id}/undo",
                                 data={"csrf_token": csrf, "resident": str(ann)})
        assert undone.status_code == 303
        assert state(server) == before  # tickets, numbers and the open suggestion, exactly as before
        page = supervisor.get(undone.headers["location"])
        assert "Merge undone" in page.text and f"/console/residents/merges/{merge_id}/undo" not in page.text
        assert "Undone</strong> by " + SUPERVISOR in page.text
        again = supervisor.post(f"/console/residents/merges/{merge_id}/undo",
                                data={"csrf_token": csrf, "resident": str(ann)})
        assert again.status_code == 422 and "already undone" in again.text
        assert "Possible duplicates (1)" in supervisor.get("/console/queues/triage").text


def test_not_the_same_person_resolves_the_suggestion_and_it_leaves_the_queue(
        console_server: ConsoleFactory) -> None:
    server = console_server()
    ann, texter = seed(server)
    sid = suggestion_id(server)
    before = state(server)
    with signed_in(server, SUPERVISOR) as supervisor:
        listing = supervisor.get("/console/residents/duplicates")
        csrf = hidden(listing.text)["csrf_token"]
        # every state-changing request without the session's token is refused and changes nothing
        for path in (f"duplicates/{sid}/reject", f"duplicates/{sid}/merge", "merges/1/undo"):
            forged = {"confirm": "yes", "csrf_token": csrf[:-4] + "AAAA"}
            assert supervisor.post(f"/console/residents/{path}", data={"confirm": "yes"}).status_code == 400
            assert supervisor.post(f"/console/residents/{path}", data=forged).status_code == 400
        assert state(server) == before
        rejected = supervisor.post(f"/console/residents/duplicates/{sid}/reject", data={"csrf_token": csrf})
        assert rejected.status_code == 303
        after = state(server)
        a, b, resolution, by, at = after["suggestions"][0]
        assert (resolution, by) == ("rejected", SUPERVISOR) and at is not None
        assert after["tickets"] == before["tickets"] and after["identities"] == before["identities"]
        listing = supervisor.get(rejected.headers["location"])
        assert "not the same person" in listing.text and "0</strong> pairs wait" in listing.text
        assert f"/console/residents/duplicates/{sid}/merge" not in listing.text
        assert "Possible duplicates (0)" in supervisor.get("/console/queues/triage").text
        # deciding twice is refused: the first decision stands
        twice = supervisor.post(f"/console/residents/duplicates/{sid}/merge",
                                data={"csrf_token": csrf, "confirm": "yes"})
        assert twice.status_code == 422 and "already resolved" in twice.text
    assert state(server)["residents"][texter] == (None, None) and ann != texter


def test_a_pair_whose_resident_was_merged_since_is_decided_as_it_stands_now(
        console_server: ConsoleFactory) -> None:
    """Two suggestions share the texter: once the texter is merged into Ann, the second pair
    (texter and Bea) shows Ann and Bea, and merging it keeps Ann, the oldest."""
    server = console_server()
    ann, texter = seed(server)
    server.receive(factory.routed(factory.email(
        "bea@example.com", "Parking permit", "Renewal please.", message_id="<bea-1@example.com>",
        name="Bea Example", at=factory.later(15)), "parking"))
    server.receive(factory.routed(factory.form(
        "bea@example.com", "07700 900123", "Permit still not here", key="k-bea", reference=None,
        name="Bea Example", subject="Permit again", at=factory.later(30)), "parking"))
    with server.engine.connect() as conn:
        pairs = dict(conn.execute(select(SuggestedMerge.resident_b_id, SuggestedMerge.id)).all())
        bea = int(conn.scalar(select(ResidentIdentity.resident_id).where(
            ResidentIdentity.value == "bea@example.com")) or 0)
    first, second = pairs[texter], pairs[bea]  # (ann, texter) and (texter, bea)
    with signed_in(server, SUPERVISOR) as supervisor:
        csrf = token(supervisor)
        assert supervisor.post(f"/console/residents/duplicates/{first}/merge",
                               data={"csrf_token": csrf, "confirm": "yes"}).status_code == 303
        confirm = supervisor.get(f"/console/residents/duplicates/{second}/merge")
        assert f"The older record, Ann Example (resident {ann}), is kept" in confirm.text
        assert "Bea Example (resident" in confirm.text
        merged = supervisor.post(f"/console/residents/duplicates/{second}/merge",
                                 data={"csrf_token": csrf, "confirm": "yes"})
        assert merged.headers["location"].startswith(f"/console/residents/{ann}")
    after = state(server)
    assert set(after["tickets"].values()) == {ann}
    assert [s[2] for s in after["suggestions"]] == ["merged", "merged"]


def journey(w: Any, server: ConsoleServer) -> None:
    """A supervisor finds the pair from the queues, merges it, undoes it, then rejects it;
    axe-core checks every page on the way (``w`` is test_console_browser's ``Watched``)."""
    from tests.web.test_console_browser import sign_in

    ann, _ = seed(server)
    page = w.page
    sign_in(w, server, SUPERVISOR)
    w.check("queue-with-duplicates-link")
    page.get_by_role("link", name="Possible duplicates (1)").click()
    page.wait_for_url("**/console/residents/duplicates")
    w.check("residents-duplicates")
    page.get_by_role("link", name=re.compile(r"^Merge Ann Example")).click()
    w.check("residents-merge-confirm")
    page.get_by_label("Reason (optional)").fill("Same person: confirmed on the phone")
    page.get_by_role("button", name="Merge residents").click()
    page.wait_for_url(f"**/console/residents/{ann}**")
    assert page.get_by_text("Residents merged").is_visible()
    assert page.locator("tbody tr").filter(has_text="FD-").count() == 4  # the texter's ticket joined
    w.check("resident")
    page.get_by_role("button", name=re.compile("^Undo")).press("Enter")  # from the keyboard
    page.wait_for_selector("text=Merge undone")
    assert page.locator("tbody tr").filter(has_text="FD-").count() == 3
    w.check("resident-after-undo")
    page.goto(f"{server.base_url}/console/residents/duplicates")
    page.get_by_role("button", name=re.compile("^Not the same person")).click()
    page.wait_for_selector("text=they are not the same person")
    w.check("residents-duplicates-empty")
    assert w.dialogs == [] and w.errors == []


@pytest.mark.browser
def test_a_supervisor_merges_undoes_and_rejects_in_the_browser(
        console_server: ConsoleFactory, browser: Any) -> None:  # noqa: F811  (the imported fixture)
    journey(watched(browser), console_server())
