"""The contact form and the JSON API through a real HTTP server, publishing to a real broker."""

from __future__ import annotations

import html
import re
import uuid

import httpx
import pytest

from tests.web.conftest import REFERENCE, ServerFactory, WebServer, form_tokens

pytestmark = pytest.mark.kafka

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def shown_value(page: str, name: str) -> str:
    """What the browser shows in the named input or textarea."""
    found = (re.search(rf'<input[^>]*\bname="{name}"[^>]*\bvalue="([^"]*)"', page)
             or re.search(rf'<textarea[^>]*\bname="{name}"[^>]*>([^<]*)</textarea>', page))
    assert found, name
    return html.unescape(found.group(1))


def open_form(client: httpx.Client, path: str = "/contact") -> dict[str, str]:
    page = client.get(path)
    assert page.status_code == 200
    return form_tokens(page.text)


def test_form_submission_shows_a_reference_that_is_on_the_stream(web_server: ServerFactory) -> None:
    server = web_server()
    with server.client() as browser:
        hidden = open_form(browser, "/contact?topic=bins")
        assert hidden["topic"] == "bins"
        fields = {**hidden, "name": "Jo Bloggs", "email": "Jo@Example.com", "postcode": "sw1a 1aa",
                  "address": "1 Acacia Avenue", "message": "My green bin was not collected.",
                  "cc": "carer@example.com, cllr.smith@council.example.gov.uk", "website": ""}
        page = browser.post("/contact", data=fields, files=[("attachments", ("bin.png", PNG, "image/png"))])
        assert page.status_code == 200, page.text
        reference = REFERENCE.search(page.text)
        assert reference and "Enquiry sent" in page.text
        again = browser.post("/contact", data=fields, files=[("attachments", ("bin.png", PNG, "image/png"))])
        assert REFERENCE.search(again.text).group(0) == reference.group(0)  # type: ignore[union-attr]
    [message] = server.messages()
    assert message.reference == reference.group(0)
    assert message.channel == "webform"
    assert message.sender.email == "jo@example.com" and message.sender.postcode == "SW1A 1AA"
    assert [p.email for p in message.cc] == ["carer@example.com", "cllr.smith@council.example.gov.uk"]
    assert message.source.topic_hint == "bins"
    [attached] = message.attachments
    assert attached.filename == "bin.png" and attached.blob.media_type == "image/png"
    assert server.blobs.read(attached.blob) == PNG


def test_mistakes_are_explained_per_field_and_what_was_typed_is_kept(web_server: ServerFactory) -> None:
    server = web_server()
    with server.client() as browser:
        hidden = open_form(browser)
        typed = {"name": "Ann <O'Neil>", "email": "ann@", "postcode": "NOT A POSTCODE",
                 "message": "Overgrown tree & broken swing in the park", "cc": "friend@example.com, oops"}
        page = browser.post("/contact", data={**hidden, **typed})
    assert page.status_code == 422
    summary = page.text.split('id="error-summary"')[1].split("</div>")[0]
    assert 'href="#email"' in summary and 'href="#postcode"' in summary and 'href="#cc"' in summary
    assert "Enter a real postcode, like SW1A 1AA" in page.text
    assert "Enter an email address in the correct format" in page.text
    for name, value in typed.items():
        assert shown_value(page.text, name) == value
    assert 'aria-describedby="email-error"' in page.text
    assert server.messages(timeout_s=2) == []


def test_one_way_to_reply_is_needed(web_server: ServerFactory) -> None:
    server = web_server()
    with server.client() as browser:
        page = browser.post("/contact", data={**open_form(browser), "message": "Hello"})
    assert page.status_code == 422
    assert "Enter an email address or a telephone number" in page.text


def test_forged_requests_bots_and_floods_are_turned_away(web_server: ServerFactory) -> None:
    server = web_server(form_rate_limit=2)
    fields = {"email": "a@example.com", "message": "Noise from next door every night"}
    with server.client() as browser:
        hidden = open_form(browser)
        assert browser.post("/contact", data=fields).status_code == 400  # no CSRF token
        token = hidden["csrf_token"]
        # Change a character inside the signature: the last base64 character only partly counts,
        # so editing the tail could leave the decoded signature unchanged.
        forged = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
        tampered = {**hidden, "csrf_token": forged}
        assert browser.post("/contact", data={**tampered, **fields}).status_code == 400
        bot = browser.post("/contact", data={**hidden, **fields, "website": "http://spam.example"})
        assert bot.status_code == 400
        for i in range(2):
            ok = browser.post("/contact", data={**open_form(browser), **fields, "message": f"Noise {i}"})
            assert ok.status_code == 200
        flood = browser.post("/contact", data={**open_form(browser), **fields, "message": "Noise 3"})
        assert flood.status_code == 429 and int(flood.headers["Retry-After"]) > 0
        assert "Too many enquiries" in flood.text
    with httpx.Client(base_url=server.base_url) as other_site:  # no cookie: a cross-site post
        assert other_site.post("/contact", data={**hidden, **fields}).status_code == 400
    assert len(server.messages()) == 2


def test_attachments_are_checked_for_type_and_size(web_server: ServerFactory) -> None:
    server = web_server(upload_max_bytes=1024)
    with server.client() as browser:
        fields = {"email": "a@example.com", "message": "See attached"}
        fake = browser.post("/contact", data={**open_form(browser), **fields},
                            files=[("attachments", ("photo.png", b"MZ\x90\x00 not a png", "image/png"))])
        assert fake.status_code == 422 and "photo.png is not really a PNG file" in fake.text
        exe = browser.post("/contact", data={**open_form(browser), **fields},
                           files=[("attachments", ("run.exe", b"MZ", "application/octet-stream"))])
        assert exe.status_code == 422 and "run.exe must be a" in exe.text
        big = browser.post("/contact", data={**open_form(browser), **fields},
                           files=[("attachments", ("big.pdf", b"%PDF-" + b"0" * 2048, "application/pdf"))])
        assert big.status_code == 422 and "big.pdf must be smaller than 1 KB" in big.text
        assert "each smaller than 1 KB" in big.text  # the hint states the same limit
    assert server.messages(timeout_s=2) == []


def post_api(server: WebServer, payload: object, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with server.client() as client:
        return client.post("/api/enquiries", json=payload, headers=headers)


def test_json_api_answers_202_with_a_reference_once_per_idempotency_key(web_server: ServerFactory) -> None:
    server = web_server()
    key = f"key-{uuid.uuid4().hex}"
    payload = {"name": "Sam", "phone": "07911 123456", "message": "Council tax bill is wrong",
               "topic": "council-tax", "cc": ["partner@example.com"]}
    first = post_api(server, payload, key)
    again = post_api(server, payload, key)
    assert first.status_code == again.status_code == 202
    assert first.json()["reference"] == again.json()["reference"]
    assert again.json()["duplicate"] is True
    conflict = post_api(server, {**payload, "message": "Something else"}, key)
    assert conflict.status_code == 409 and "different request" in conflict.json()["message"]
    [message] = server.messages()
    assert message.reference == first.json()["reference"]
    assert message.sender.phone == "+447911123456"
    assert message.dedupe_key == f"webform:api:{key}"


@pytest.mark.parametrize(("payload", "field", "status"), [
    ({"message": "x"}, "email", 422),
    ({"message": "x", "email": "nope"}, "email", 422),
    ({"message": "x", "email": "a@example.com", "postcode": "12345"}, "postcode", 422),
    ({"message": "", "email": "a@example.com"}, "message", 422),
    ({"message": "x", "email": "a@example.com", "cc": ["a@example.com", "bad"]}, "cc", 422),
    ({"message": "x", "email": "a@example.com", "colour": "red"}, "colour", 422),
    ({"message": 5, "email": "a@example.com"}, "message", 422),
    (["not", "an", "object"], "body", 422),
])
def test_json_api_says_what_is_wrong(web_server: ServerFactory, payload: object, field: str,
                                     status: int) -> None:
    server = web_server()
    response = post_api(server, payload)
    assert response.status_code == status
    body = response.json()
    assert body["message"] and body["errors"][field]


def test_openapi_describes_the_json_endpoints(web_server: ServerFactory) -> None:
    server = web_server()
    with server.client() as client:
        spec = client.get("/openapi.json").json()
    enquiries = spec["paths"]["/api/enquiries"]["post"]
    assert {"202", "422", "503"} <= set(enquiries["responses"])
    schema_ref = enquiries["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    fields = {"name", "email", "phone", "postcode", "address", "message", "cc", "topic"}
    assert fields <= set(schema["properties"])
    contacts = spec["paths"]["/api/contacts"]["post"]
    assert "401" in contacts["responses"] and contacts["security"]
