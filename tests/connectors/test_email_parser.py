"""MIME → InboundMessage on real-world mail (the mikel/mail fixtures) and crafted edge cases."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import tracemalloc
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email_parser import EmailParseError, parse_email
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Automation, InboundMessage
from schemas.reference import new_reference
from tests.conftest import frontdoor

CORPUS = Path("/work/shared/corpora/email/mikel-mail")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="mikel-mail corpus not present")


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []


def parse_file(relative: str, blobs: FilesystemBlobStore) -> InboundMessage:
    return parse_email((CORPUS / relative).read_bytes(), blobs=blobs)


def mail(*headers: str, body: str | bytes = "Hello.\n") -> bytes:
    head = "\r\n".join(headers).encode("utf-8")
    payload = body if isinstance(body, bytes) else body.encode("utf-8")
    return head + b"\r\n\r\n" + payload


# ------------------------------------------------------------------------------ real corpus


@needs_corpus
def test_every_corpus_message_is_a_canonical_message_or_a_typed_error(
        blob_store: FilesystemBlobStore) -> None:
    files = corpus_files()
    assert len(files) > 90
    outcomes: dict[str, str] = {}
    for path in files:
        raw = path.read_bytes()
        try:
            message = parse_email(raw, blobs=blob_store, mailbox="waste@council.example.gov.uk")
        except EmailParseError as exc:
            outcomes[path.name] = exc.reason
            continue
        # survives the wire: JSON out and back is the same message
        assert InboundMessage.model_validate_json(message.model_dump_json()) == message
        assert message.sender.email and "@" in message.sender.email
        assert message.raw is not None and blob_store.exists(message.raw)
        assert message.dedupe_key.startswith("email:")
        assert message.source.mailboxes == ["waste@council.example.gov.uk"]
        if b"\xef\xbf\xbd" not in raw:  # (one fixture carries U+FFFD itself)
            assert "\ufffd" not in (message.subject or ""), path.name
        for attachment in message.attachments:
            assert blob_store.exists(attachment.blob)
        outcomes[path.name] = "ok"
    # the one message without any sender address is refused with a reason, not a crash
    assert outcomes["bad_encoded_subject.eml"] == "no_sender"
    assert sum(1 for v in outcomes.values() if v == "ok") >= len(files) - 3


@needs_corpus
@pytest.mark.parametrize(("relative", "field", "expected"), [
    ("multi_charset/japanese_shift_jis.eml", "body_text", "このメールはテスト用のメールです"),
    ("multi_charset/japanese_iso_2022.eml", "body_text", "すみません"),
    ("multi_charset/japanese_iso_2022.eml", "subject", "まみむめも"),
    ("plain_emails/raw_email.eml", "body_text", "제 이름은 Jamis입니다"),
    ("plain_emails/raw_email.eml", "subject", "한국말로 하는 것"),
    ("error_emails/invalid_subject_characters.eml", "subject", "Formação FrenetikPolis"),
    ("attachment_emails/attachment_with_quoted_filename.eml", "subject", "Eelanalüüsi päring"),
    ("rfc6532/utf8_headers.eml", "subject", "Säying Hello"),
    ("mime_emails/raw_email_with_illegal_boundary.eml", "body_text", "This is an outlook test"),
])
def test_non_utf8_mail_decodes_to_the_right_words(blob_store: FilesystemBlobStore, relative: str,
                                                  field: str, expected: str) -> None:
    message = parse_file(relative, blob_store)
    assert expected in (getattr(message, field) or "")


@needs_corpus
def test_corpus_bounces_are_flagged_and_their_report_kept(blob_store: FilesystemBlobStore) -> None:
    for path in sorted((CORPUS / "multipart_report_emails").glob("*.eml")):
        message = parse_email(path.read_bytes(), blobs=blob_store)
        assert message.automation == Automation.BOUNCE, path.name
        assert message.attachments, path.name  # delivery-status and the returned message


@needs_corpus
def test_obsolete_header_syntax_and_stray_header_lines_still_find_the_sender(
        blob_store: FilesystemBlobStore) -> None:
    assert parse_file("rfc2822/example13.eml", blob_store).sender.email == "jdoe@machine.example"
    message = parse_file("plain_emails/raw_email_incorrect_header.eml", blob_store)
    assert message.sender.email == "xxx@xxx.xxx"
    assert message.subject == "Stop adware/spyware once and for all."


@needs_corpus
def test_parse_email_command_prints_one_json_line_per_file(tmp_path: Path) -> None:
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path)}
    good = CORPUS / "plain_emails/basic_email.eml"
    bad = CORPUS / "error_emails/bad_encoded_subject.eml"
    missing = tmp_path / "nope.eml"
    result = frontdoor("parse-email", str(good), str(bad), str(missing), env=env)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert len(lines) == 3
    assert InboundMessage.model_validate(lines[0]).subject == "Testing 123"
    assert lines[1] == {"file": str(bad), "error": "no_sender",
                        "detail": "no From, Sender, Return-Path or envelope sender address"}
    assert lines[2]["file"] == str(missing) and lines[2]["error"] == "unreadable"
    assert (tmp_path / "blobs").is_dir()  # raw MIME went to the blob store


# ------------------------------------------------------------------------------ crafted edge cases


def test_utf8_declared_as_latin1_reads_as_utf8(blob_store: FilesystemBlobStore) -> None:
    raw = mail("From: a@example.org", "Subject: bins", "Content-Type: text/plain; charset=iso-8859-1",
               body="Grüße aus Köln, the bin on Straße was missed.\n")
    assert "Grüße aus Köln" in parse_email(raw, blobs=blob_store).body_text


def test_unknown_charset_falls_back_to_detection(blob_store: FilesystemBlobStore) -> None:
    body = "Le café est fermé; the crème brûlée stall blocks the pavement on Rue Saint-André.\n"
    raw = mail("From: a@example.org", "Subject: =?x-unknown?Q?caf=E9_stall?=",
               "Content-Type: text/plain; charset=x-made-up-charset",
               body=body.encode("cp1252"))
    message = parse_email(raw, blobs=blob_store)
    assert "café est fermé" in message.body_text
    assert "crème brûlée" in message.body_text
    assert message.subject == "café stall"


def test_undeclared_8bit_header_is_decoded(blob_store: FilesystemBlobStore) -> None:
    raw = "From: Zoë Brontë <zoe@example.org>\r\nSubject: Broken paving on Café Row\r\n\r\nhi\r\n"
    message = parse_email(raw.encode("cp1252"), blobs=blob_store)
    assert message.subject == "Broken paving on Café Row"
    assert message.sender.name == "Zoë Brontë"


def test_rfc2047_subject_and_names(blob_store: FilesystemBlobStore) -> None:
    raw = mail("From: =?utf-8?B?U2nDom4gTyfDgnNhaXIsIEpy?= <sian@example.org>",
               "To: =?iso-8859-1?Q?Service_Cl=E9ment?= <waste@council.example.gov.uk>",
               "Subject: =?utf-8?Q?Bin_not_emptied_=E2=80=93_Fl=C3=A4t_3?= =?iso-8859-1?Q?_caf=E9?=")
    message = parse_email(raw, blobs=blob_store)
    assert message.subject == "Bin not emptied – Flät 3 café"
    assert message.sender.name == "Siân O'Âsair, Jr"  # an encoded comma does not split the address
    assert message.sender.email == "sian@example.org"
    assert message.to[0].name == "Service Clément"


def test_html_only_mail_becomes_readable_text_and_keeps_the_html(blob_store: FilesystemBlobStore) -> None:
    html = ("<html><head><style>p {color: red}</style></head><body><p>The <b>street light</b> outside "
            "<a href='https://example.org/x'>number 12</a> is out.</p><ul><li>since Monday</li></ul>"
            "</body></html>")
    raw = mail("From: a@example.org", "Subject: light", "Content-Type: text/html; charset=utf-8", body=html)
    message = parse_email(raw, blobs=blob_store)
    assert "street light" in message.body_text and "since Monday" in message.body_text
    assert "<b>" not in message.body_text and "color: red" not in message.body_text
    assert message.body_html == html


def test_alternative_prefers_the_plain_part_and_keeps_the_html(blob_store: FilesystemBlobStore) -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "pothole"
    msg.set_content("Plain words about the pothole.\n")
    msg.add_alternative("<p>HTML words about the pothole.</p>", subtype="html")
    message = parse_email(msg.as_bytes(), blobs=blob_store)
    assert message.body_text.strip() == "Plain words about the pothole."
    assert "HTML words" in (message.body_html or "")


def test_quoted_reply_and_signature_are_trimmed_but_kept_in_full_text(
        blob_store: FilesystemBlobStore) -> None:
    body = ("Still no collection, please send someone.\n\n-- \nJo Bloggs\n07700 900123\n\n"
            "On Tue, 3 Jun 2025 at 10:02, Waste Team <waste@council.example.gov.uk> wrote:\n"
            "> Thank you for your enquiry.\n")
    message = parse_email(mail("From: jo@example.org", "Subject: Re: bins", body=body), blobs=blob_store)
    assert message.body_trimmed == "Still no collection, please send someone."
    assert "Thank you for your enquiry" in message.body_text


def test_attachments_and_inline_images_go_to_the_blob_store(blob_store: FilesystemBlobStore) -> None:
    pdf = b"%PDF-1.4 fake " + os.urandom(5000)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "fly-tipping photos"
    msg.set_content("See the photo.\n")
    msg.add_alternative("<p>See <img src='cid:photo1@x'></p>", subtype="html")
    msg.get_payload()[1].add_related(png, "image", "png", cid="<photo1@x>")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="Rapport d’été.pdf")
    message = parse_email(msg.as_bytes(), blobs=blob_store)
    by_type = {a.blob.media_type: a for a in message.attachments}
    assert blob_store.read(by_type["application/pdf"].blob) == pdf
    assert by_type["application/pdf"].filename == "Rapport d’été.pdf"
    assert by_type["application/pdf"].blob.sha256 == hashlib.sha256(pdf).hexdigest()
    image = by_type["image/png"]
    assert image.content_id == "photo1@x" and image.inline
    assert blob_store.read(image.blob) == png
    assert message.raw is not None and blob_store.read(message.raw) == msg.as_bytes()


def test_forwarded_message_is_attached_and_its_words_kept_out_of_the_trimmed_body(
        blob_store: FilesystemBlobStore) -> None:
    inner = EmailMessage()
    inner["From"] = "Landlord <landlord@example.com>"
    inner["Subject"] = "Your tenancy"
    inner["Date"] = "Mon, 2 Nov 2026 09:00:00 +0000"
    inner.set_content("Your rent is going up by 40% next month.\n")
    outer = EmailMessage()
    outer["From"] = "tenant@example.org"
    outer["Subject"] = "Fwd: Your tenancy"
    outer.set_content("Is this allowed? See below.\n")
    outer.add_attachment(inner)
    message = parse_email(outer.as_bytes(), blobs=blob_store)
    assert "rent is going up" in message.body_text
    assert message.body_trimmed == "Is this allowed? See below."
    forwarded = [a for a in message.attachments if a.blob.media_type == "message/rfc822"]
    assert len(forwarded) == 1 and forwarded[0].filename == "Your tenancy.eml"
    assert b"rent is going up" in blob_store.read(forwarded[0].blob)


@pytest.mark.parametrize(("headers", "expected"), [
    (("Auto-Submitted: auto-replied",), Automation.AUTO_REPLY),
    (("X-Autoreply: yes",), Automation.AUTO_REPLY),
    (("X-Autorespond: Out of office",), Automation.AUTO_REPLY),
    (("Subject: Automatic reply: bins",), Automation.AUTO_REPLY),
    (("Precedence: bulk",), Automation.BULK),
    (("List-Id: <news.example.org>",), Automation.BULK),
    (("Auto-Submitted: no",), Automation.NONE),
    (("Subject: Out of office hours noise from the pub",), Automation.NONE),
    ((), Automation.NONE),
])
def test_automation_flags(blob_store: FilesystemBlobStore, headers: tuple[str, ...],
                          expected: Automation) -> None:
    has_subject = any(h.startswith("Subject") for h in headers)
    base = ["From: a@example.org"] + ([] if has_subject else ["Subject: hi"])
    assert parse_email(mail(*base, *headers), blobs=blob_store).automation == expected


def test_delivery_status_report_is_a_bounce(blob_store: FilesystemBlobStore) -> None:
    raw = mail(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>",
        "Subject: Undelivered Mail Returned to Sender",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
        body=("--b1\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n"
              "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
              "Reporting-MTA: dns; mx.example.net\r\n\r\n"
              "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
              "--b1--\r\n"),
    )
    message = parse_email(raw, blobs=blob_store)
    assert message.automation == Automation.BOUNCE
    assert "could not deliver" in message.body_text


def test_threading_hints_and_quoted_reference(blob_store: FilesystemBlobStore) -> None:
    ref = new_reference()
    raw = mail("From: a@example.org", f"Subject: Re: your enquiry {ref.lower().replace('-', ' ')}",
               "Message-ID: <abc@mail.example.org>", "In-Reply-To: <ack-1@council.example.gov.uk>",
               "References: <first@mail.example.org>\r\n <ack-1@council.example.gov.uk>")
    message = parse_email(raw, blobs=blob_store)
    assert message.threading.message_id == "<abc@mail.example.org>"
    assert message.threading.in_reply_to == "<ack-1@council.example.gov.uk>"
    assert message.threading.references == ["<first@mail.example.org>", "<ack-1@council.example.gov.uk>"]
    assert message.threading.reference == ref
    assert message.dedupe_key.startswith("email:<abc@mail.example.org>#")


def test_a_reused_message_id_with_other_content_is_another_message(blob_store: FilesystemBlobStore) -> None:
    first = mail("From: a@example.org", "Subject: bins", "Message-ID: <same@broken-mailer.example>",
                 body="My bin was not emptied on Tuesday.\r\n")
    copy = mail("Received: from mx2 by imap2; Tue, 24 Nov 2026 10:00:09 +0000", "Delivered-To: housing@c",
                "From: a@example.org", "Subject: bins", "Message-ID: <same@broken-mailer.example>",
                body="My bin was not emptied on Tuesday.\n")
    other = mail("From: b@example.org", "Subject: noise", "Message-ID: <same@broken-mailer.example>",
                 body="Loud music every night next door.\r\n")
    key = parse_email(first, blobs=blob_store).dedupe_key
    assert key.startswith("email:<same@broken-mailer.example>#")
    assert parse_email(copy, blobs=blob_store).dedupe_key == key  # one mail, two deliveries
    again = parse_email(other, blobs=blob_store)
    assert again.dedupe_key != key  # not dropped as a duplicate downstream
    assert again.threading.message_id == "<same@broken-mailer.example>"


def test_without_message_id_the_dedupe_key_is_a_content_hash_stable_across_mailboxes(
        blob_store: FilesystemBlobStore) -> None:
    common = ("From: a@example.org", "To: waste@council.example.gov.uk, housing@council.example.gov.uk",
              "Date: Tue, 24 Nov 2026 10:00:00 +0000", "Subject: damp")
    copy_a = mail("Received: from mx1 by imap1; Tue, 24 Nov 2026 10:00:01 +0000", "Delivered-To: waste@c",
                  *common, body="Black mould in the bedroom.\r\n")
    copy_b = mail("Received: from mx2 by imap2; Tue, 24 Nov 2026 10:00:09 +0000", "Delivered-To: housing@c",
                  *common, body="Black mould in the bedroom.\n")
    other = mail(*common, body="Black mould in the kitchen.\r\n")
    key_a = parse_email(copy_a, blobs=blob_store).dedupe_key
    assert key_a.startswith("email:sha256:")
    assert parse_email(copy_b, blobs=blob_store).dedupe_key == key_a
    assert parse_email(other, blobs=blob_store).dedupe_key != key_a


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty"),
    (b"  \r\n\r\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary junk", "not_email"),
    (b"Subject: nobody sent this\r\n\r\nbody\r\n", "no_sender"),
])
def test_unusable_mail_raises_a_typed_error(blob_store: FilesystemBlobStore, raw: bytes, reason: str) -> None:
    with pytest.raises(EmailParseError) as caught:
        parse_email(raw, blobs=blob_store)
    assert caught.value.reason == reason


def test_hostile_nesting_is_a_typed_error_not_a_crash(blob_store: FilesystemBlobStore) -> None:
    depth = 60
    body = "".join(f'--b{i}\r\nContent-Type: multipart/mixed; boundary="b{i + 1}"\r\n\r\n'
                   for i in range(depth))
    body += "--b60\r\nContent-Type: text/plain\r\n\r\ndeep\r\n"
    body += "".join(f"--b{i}--\r\n" for i in reversed(range(depth + 1)))
    raw = mail("From: a@example.org", 'Content-Type: multipart/mixed; boundary="b0"', body=body)
    with pytest.raises(EmailParseError) as caught:
        parse_email(raw, blobs=blob_store)
    assert caught.value.reason == "unparseable"


def test_envelope_sender_is_the_last_resort_and_mailboxes_are_merged(
        blob_store: FilesystemBlobStore) -> None:
    message = parse_email(b"Subject: no from header\r\n\r\nhello\r\n", blobs=blob_store,
                          mailbox="waste@c", mailboxes=["housing@c", "waste@c"],
                          envelope_from="x@example.org", department_hint="waste")
    assert message.sender.email == "x@example.org"
    assert message.source.mailboxes == ["waste@c", "housing@c"]
    assert message.source.department_hint == "waste"


def test_a_25mb_attachment_is_streamed_not_held_three_times(blob_store: FilesystemBlobStore) -> None:
    size = 25 * 1024 * 1024
    data = os.urandom(size)
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "plans"
    msg.set_content("Drawings attached.\n")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename="plans.pdf")
    raw = msg.as_bytes()
    digest = hashlib.sha256(data).hexdigest()
    del data, msg
    tracemalloc.start()
    try:
        message = parse_email(raw, blobs=blob_store)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.attachments[0].blob.sha256 == digest
    assert message.body_text.strip() == "Drawings attached."
    assert peak < size, f"parse peak {peak} bytes for a {size}-byte attachment"


# ------------------------------------------------------------------------------ unseen mail


def _mutations(raw: bytes, rng: random.Random) -> list[bytes]:
    cut = rng.randrange(1, max(len(raw), 2))
    flipped = bytearray(raw)
    for _ in range(8):
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    return [
        raw[:cut],  # truncated mid-transfer
        bytes(flipped),  # line noise
        raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r"),  # old Mac line endings
        raw.replace(b"boundary=", b"boundary=x"),  # boundaries that never match
        raw.replace(b"base64", b"quoted-printable"),  # lying transfer encodings
        raw.replace(b"charset=", b"charset=x-"),  # charsets nobody knows
        b"\n".join(raw.split(b"\n")[::-1]),  # nonsense order
    ]


@needs_corpus
def test_damaged_real_mail_never_crashes_the_parser(blob_store: FilesystemBlobStore) -> None:
    rng = random.Random(20261126)
    tried = 0
    for path in corpus_files():
        for variant in _mutations(path.read_bytes(), rng):
            tried += 1
            try:
                message = parse_email(variant, blobs=blob_store)
            except EmailParseError:
                continue
            InboundMessage.model_validate_json(message.model_dump_json())
    assert tried > 600


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000) | st.text(max_size=2000).map(lambda t: ("From: a@b.c\r\n" + t).encode()))
def test_arbitrary_bytes_are_a_message_or_a_typed_error(blob_store: FilesystemBlobStore, raw: bytes) -> None:
    try:
        parse_email(raw, blobs=blob_store)
    except EmailParseError as exc:
        assert exc.reason in {"empty", "not_email", "no_sender", "unparseable"}


def test_a_large_forwarded_message_keeps_its_streamed_attachment_intact(
        blob_store: FilesystemBlobStore) -> None:
    data = os.urandom(2_000_000)
    inner = EmailMessage()
    inner["From"] = "architect@example.com"
    inner["Subject"] = "Site plans"
    inner.set_content("Plans attached.\n")
    inner.add_attachment(data, maintype="application", subtype="pdf", filename="plans.pdf")
    outer = EmailMessage()
    outer["From"] = "resident@example.org"
    outer["Subject"] = "Fwd: Site plans"
    outer.set_content("For my application.\n")
    outer.add_attachment(inner)
    message = parse_email(outer.as_bytes(), blobs=blob_store)
    pdf = next(a for a in message.attachments if a.blob.media_type == "application/pdf")
    assert blob_store.read(pdf.blob) == data
    forwarded = next(a for a in message.attachments if a.blob.media_type == "message/rfc822")
    reparsed = parse_email(blob_store.read(forwarded.blob), blobs=blob_store)
    assert [a.blob.sha256 for a in reparsed.attachments] == [hashlib.sha256(data).hexdigest()]


def test_control_characters_never_reach_the_stream(blob_store: FilesystemBlobStore) -> None:
    raw = (b"From: Eve \x01Smith <eve\x00@example.org>\r\nTo: waste@council.example.gov.uk\r\n"
           b"Subject: =?utf-8?q?bins=00_again?= \x7f\r\nMessage-ID: <nul@example.org>\r\n\r\nHello.\r\n")
    message = parse_email(raw, blobs=blob_store, envelope_from="eve\x00@example.org")
    assert message.sender.email == "eve@example.org" and message.sender.name == "Eve Smith"
    assert message.subject == "bins again"
    wire = message.model_dump_json()
    assert not any(f"\\u00{c:02x}" in wire for c in [*range(0, 9), 11, 12, *range(14, 32), 127])
    assert message.defects == ["control_characters"]


def test_clean_mail_carries_no_defects_field(blob_store: FilesystemBlobStore) -> None:
    message = parse_email(mail("From: a@example.org", "Subject: bins"), blobs=blob_store)
    assert message.defects is None
    assert "defects" not in message.model_dump_json(exclude_none=True)


def test_invalid_base64_keeps_the_part_and_the_text_that_decodes(blob_store: FilesystemBlobStore) -> None:
    good = base64.b64encode(b"The street light outside number 12 is out. ").decode()
    broken = good + "!!@@ this is not base64 at all ###\r\n"
    raw = mail("From: a@example.org", "Subject: light", "MIME-Version: 1.0",
               "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64",
               body=broken)
    message = parse_email(raw, blobs=blob_store)
    assert message.body_text.startswith("The street light outside number 12 is out.")
    assert "\ufffd" not in message.body_text
    (kept,) = message.attachments
    assert blob_store.read(kept.blob) == broken.encode()  # the part as received: nothing lost
    assert message.defects == ["undecodable_part"]


def test_multipart_without_boundary_is_read_as_text(blob_store: FilesystemBlobStore) -> None:
    raw = mail("From: a@example.org", "Subject: tree", "MIME-Version: 1.0", "Content-Type: multipart/mixed",
               body="A tree has fallen across the path in Victoria Park.\r\n")
    message = parse_email(raw, blobs=blob_store)
    assert message.body_text.strip() == "A tree has fallen across the path in Victoria Park."
    assert message.attachments == []
    assert message.defects == ["missing_boundary"]


def test_multipart_without_boundary_parameter_finds_its_delimiters(blob_store: FilesystemBlobStore) -> None:
    body = ("--XyZ123\r\nContent-Type: text/plain\r\n\r\nPothole on Mill Lane, see photo.\r\n"
            "--XyZ123\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=hole.png\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x89PNG fake").decode() + "\r\n"
            "--XyZ123--\r\n")
    raw = mail("From: a@example.org", "Subject: pothole", "MIME-Version: 1.0",
               "Content-Type: multipart/mixed", body=body)
    message = parse_email(raw, blobs=blob_store)
    assert message.body_text.strip() == "Pothole on Mill Lane, see photo."
    (photo,) = message.attachments
    assert photo.filename == "hole.png" and blob_store.read(photo.blob) == b"\x89PNG fake"
    assert message.defects == ["missing_boundary"]


def test_outlook_thread_index_is_kept_for_threading(blob_store: FilesystemBlobStore) -> None:
    """The ticket stage threads on Thread-Index where a gateway rewrote In-Reply-To/References."""
    mail = EmailMessage()
    mail["From"] = "resident@example.org"
    mail["To"] = "waste@council.example.gov.uk"
    mail["Subject"] = "RE: bin not emptied"
    mail["Thread-Index"] = "AdkLm0T1xYtQ3zYJRkWlmQ4Y1x9k8gAAB3Qw"
    mail.set_content("Still not emptied.")
    message = parse_email(mail.as_bytes(), blobs=blob_store)
    assert message.source.extra["thread_index"] == "AdkLm0T1xYtQ3zYJRkWlmQ4Y1x9k8gAAB3Qw"

    plain = EmailMessage()
    plain["From"] = "resident@example.org"
    plain["To"] = "waste@council.example.gov.uk"
    plain.set_content("no thread index here")
    assert "thread_index" not in parse_email(plain.as_bytes(), blobs=blob_store).source.extra
