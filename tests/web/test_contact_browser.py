"""The contact form in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import REFERENCE, ServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def page() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_a_resident_corrects_a_mistake_and_gets_a_reference(web_server: ServerFactory, page: Any) -> None:
    server = web_server()
    page.goto(f"{server.base_url}/contact?topic=parking")
    assert "about: parking" in page.text_content("main")
    page.get_by_label("Your name (optional)").fill("Priya Shah")
    page.get_by_label("Email address").fill("priya@example")
    page.get_by_label("Postcode").fill("LS1 4AP")
    page.get_by_label("Your message").fill("A car has been abandoned outside 4 Park Row for three weeks.")
    page.get_by_role("button", name="Send enquiry").click()

    summary = page.locator("#error-summary")
    assert summary.is_visible()
    assert "There is a problem" in summary.text_content()
    assert page.title().startswith("Error:")
    # What the resident typed is still there, and the error points at the field.
    assert page.get_by_label("Your name (optional)").input_value() == "Priya Shah"
    assert page.get_by_label("Email address").input_value() == "priya@example"
    assert page.get_by_label("Postcode").input_value() == "LS1 4AP"
    assert "abandoned outside 4 Park Row" in page.get_by_label("Your message").input_value()
    assert page.get_by_label("Email address").get_attribute("aria-invalid") == "true"
    summary.get_by_role("link", name="Enter an email address in the correct format").click()
    assert page.evaluate("document.activeElement.id") == "email"

    page.get_by_label("Email address").fill("priya@example.com")
    page.get_by_role("button", name="Send enquiry").click()
    page.wait_for_selector("#reference")
    assert page.title().startswith("Enquiry sent")
    reference = page.text_content("#reference") or ""
    assert REFERENCE.fullmatch(reference)
    [message] = server.messages(expect=1)
    assert message.reference == reference
    assert message.source.topic_hint == "parking"
    assert message.sender.name == "Priya Shah" and message.sender.postcode == "LS1 4AP"
