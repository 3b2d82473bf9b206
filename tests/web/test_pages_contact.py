"""Issue 9's page rows: the contact form on GOV.UK Frontend keeps what the resident typed when
they chose too many files, and every page is sent with the security headers."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import ServerFactory, form_tokens

pytestmark = pytest.mark.kafka

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_too_many_files_come_back_with_an_error_summary_and_the_answers(web_server: ServerFactory) -> None:
    server = web_server(upload_max_files=5)
    typed = {"name": "Priya Shah", "email": "priya@example.com", "postcode": "LS1 4AP",
             "message": "Fly-tipping behind the shops on Mill Lane: photos attached."}
    with server.client() as browser:
        hidden = form_tokens(browser.get("/contact").text)
        files = [("attachments", (f"photo{i}.png", PNG, "image/png")) for i in range(6)]
        page = browser.post("/contact", data={**hidden, **typed}, files=files)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert re.search(r"<title>\s*Error: ", page.text)
    summary = page.text.split('id="error-summary"')[1].split("</div>")[0]
    assert "govuk-error-summary" in page.text and 'href="#attachments"' in summary
    assert "Select up to 5 files: you chose 6" in summary
    for name, value in typed.items():
        assert f'value="{value}"' in page.text or f">{value}</textarea>" in page.text, name
    assert 'class="govuk-file-upload' in page.text
    assert server.messages(timeout_s=2) == []


def test_public_pages_cannot_be_framed_or_run_inline_script(web_server: ServerFactory) -> None:
    server = web_server()
    with server.client() as browser:
        pages = [browser.get("/contact"), browser.get("/static/dist/app.css"),
                 browser.post("/contact", data={"message": "no token"})]
    for page in pages:
        policy = page.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in directives["style-src"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    # no inline script anywhere in the page: GOV.UK Frontend's one line comes from a file
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", pages[0].text) == []
