"""Channel rules without a server: keywords, postcodes, phones, the CSV export's rows."""

from __future__ import annotations

import pytest

from connectors.call_notes import BadRow, CallRow, CsvFormatError, read_calls
from connectors.twilio_sms import Keyword, classify_keyword, parse_webhook, twiml
from connectors.webform import EnquiryInvalidError, Upload, check_postcode, check_upload, parse_enquiry


@pytest.mark.parametrize(("body", "keyword"), [
    ("STOP", Keyword.OPT_OUT), (" stop. ", Keyword.OPT_OUT), ("Unsubscribe", Keyword.OPT_OUT),
    ("STOPALL", Keyword.OPT_OUT), ("end", Keyword.OPT_OUT), ("Quit!", Keyword.OPT_OUT),
    ("cancel", Keyword.OPT_OUT), ("START", Keyword.OPT_IN), ("yes", Keyword.OPT_IN),
    ("UNSTOP", Keyword.OPT_IN), ("help", Keyword.HELP), ("info", Keyword.HELP),
    ("Please stop the noise", Keyword.NONE), ("yes the bin is still there", Keyword.NONE), ("", Keyword.NONE),
])
def test_twilio_keywords_match_the_whole_message_only(body: str, keyword: Keyword) -> None:
    assert classify_keyword(body) is keyword


def test_mms_fields_and_an_empty_twiml_answer() -> None:
    sms = parse_webhook({"MessageSid": "MM1", "From": "07911 123456", "To": "+441632960000", "Body": "",
                         "NumMedia": "2", "MediaUrl0": "https://api.twilio.com/m/0",
                         "MediaContentType0": "image/jpeg", "MediaUrl1": "https://api.twilio.com/m/1"})
    assert sms.from_number == "+447911123456"
    assert [(m.url, m.content_type) for m in sms.media] == [("https://api.twilio.com/m/0", "image/jpeg"),
                                                             ("https://api.twilio.com/m/1", None)]
    assert "<Message" not in twiml(None)


@pytest.mark.parametrize(("typed", "canonical"), [
    ("sw1a1aa", "SW1A 1AA"), ("EC1A 1BB", "EC1A 1BB"), ("m1 1ae", "M1 1AE"), ("B33 8TH", "B33 8TH"),
    ("cr2 6xh", "CR2 6XH"), ("DN55 1PT", "DN55 1PT"), ("GIR 0AA", "GIR 0AA"),
])
def test_uk_postcodes_are_normalised(typed: str, canonical: str) -> None:
    assert check_postcode(typed) == canonical


@pytest.mark.parametrize("typed", ["12345", "SW1A", "SW1A 1AAA", "QQ1 1AA", "W1 1CI", "hello"])
def test_non_postcodes_are_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="Enter a real postcode"):
        check_postcode(typed)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(EnquiryInvalidError) as caught:
        parse_enquiry({"email": "nope", "phone": "12", "postcode": "x", "message": " ", "cc": ["a@b"]})
    assert list(caught.value.errors) == ["email", "phone", "postcode", "message", "cc"]


def test_uploads_are_sniffed_not_trusted() -> None:
    assert check_upload(Upload("Scan.PDF", b"%PDF-1.7 ..."), 1000) == "application/pdf"
    assert check_upload(Upload("notes.txt", "Café".encode()), 1000) == "text/plain"
    with pytest.raises(ValueError, match="not really a JPG"):
        check_upload(Upload("evil.jpg", b"<script>"), 1000)
    with pytest.raises(ValueError, match="must be a"):
        check_upload(Upload("virus.exe", b"MZ"), 1000)


def test_csv_rows_keep_their_line_numbers_across_quoted_newlines() -> None:
    rows = list(read_calls(
        "\ufeffCall_ID,Caller_Name,Summary,Notes\n"
        'c1,Jo,Bins,"line one\nline two"\n'
        "\n"
        "c2,Al,,no summary\n"
        "c3,Mo,Too,many,fields\n"
        "c4,Ed,Trees,Overhanging branch\n"))
    assert [(type(r).__name__, r.line) for r in rows] == [
        ("CallRow", 2), ("BadRow", 5), ("BadRow", 6), ("CallRow", 7)]
    bad = [r for r in rows if isinstance(r, BadRow)]
    assert "summary: Enter a summary" in bad[0].reason
    assert "has 5 fields, the header has 4" in bad[1].reason
    good = [r for r in rows if isinstance(r, CallRow)]
    assert good[0].dedupe_key == "phone:call:c1" and good[0].note.note == "line one\nline two"


def test_a_row_without_a_call_id_is_keyed_by_its_content() -> None:
    text = "caller_name,summary,notes\nJo,Bins,Missed\n"
    [first] = list(read_calls(text))
    [again] = list(read_calls(text))
    assert isinstance(first, CallRow) and isinstance(again, CallRow)
    assert first.dedupe_key == again.dedupe_key and first.dedupe_key.startswith("phone:sha256:")


def test_a_file_that_is_not_an_export_is_refused_whole() -> None:
    with pytest.raises(CsvFormatError, match="summary, notes"):
        list(read_calls("name,comment\nJo,hi\n"))
    with pytest.raises(CsvFormatError, match="empty"):
        list(read_calls(""))
