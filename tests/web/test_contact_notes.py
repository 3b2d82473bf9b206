"""Contact-centre notes: the agents' JSON API and the telephony CSV import."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest.bus import read_topic
from schemas.inbound import InboundMessage
from schemas.topics import INBOUND
from tests.conftest import frontdoor
from tests.web.conftest import AGENT_TOKEN, REFERENCE, ServerFactory

pytestmark = pytest.mark.kafka


def test_agents_need_a_token(web_server: ServerFactory) -> None:
    server = web_server()
    note = {"resident": {"name": "Mrs Patel", "phone": "07911 123456"}, "summary": "Missed bin",
            "note": "Caller says the blue bin was missed twice."}
    with server.client() as client:
        assert client.post("/api/contacts", json=note).status_code == 401
        wrong = client.post("/api/contacts", json=note, headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        junk = client.post("/api/contacts", json={"x": 1}, headers={"Authorization": "Bearer guess"})
        assert junk.status_code == 401  # the body is not even looked at
    assert server.messages(timeout_s=2) == []


def test_a_note_becomes_a_message_once_and_links_to_an_existing_enquiry(web_server: ServerFactory) -> None:
    server = web_server()
    auth = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    with server.client() as client:
        first = client.post("/api/enquiries", json={"email": "p@example.com", "message": "Missed bin"})
        existing = first.json()["reference"]
        note = {"resident": {"name": "Mrs Patel", "email": "p@example.com", "postcode": "le1 5ww"},
                "summary": "Chasing missed bin", "note": "Second call about the same bin.",
                "channel": "face_to_face", "reference": existing.lower(), "note_id": "crm-4711"}
        taken = client.post("/api/contacts", json=note, headers=auth)
        again = client.post("/api/contacts", json=note, headers=auth)
        bad = client.post("/api/contacts", json={**note, "note_id": "crm-4712", "channel": "email",
                                                 "resident": {"phone": "12"}}, headers=auth)
    assert taken.status_code == again.status_code == 202
    assert taken.json()["reference"] == again.json()["reference"] != existing
    assert taken.json()["thread_reference"] == existing
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"channel", "resident.phone"}
    messages = server.messages()
    [message] = [m for m in messages if m.channel == "face_to_face"]
    assert len(messages) == 2
    assert message.source.agent == "sam"  # named by the token
    assert message.threading.reference == existing
    assert message.subject == "Chasing missed bin"
    assert message.sender.postcode == "LE1 5WW"


CSV = """call_id,started_at,agent,caller_name,caller_phone,caller_email,caller_postcode,summary,notes
{a},2026-11-25T09:12:00Z,Sam,Mr Jones,01234 567890,,LE1 5WW,Pothole,"Deep pothole on London Road,
near the bus stop"
{b},2026-11-25T09:30:00Z,Sam,,,,,No caller,Nothing to identify the caller
{c},yesterday,Ali,Ms Green,,green@example.com,,Noise,Dog barking all night
{d},2026-11-25T10:02:00+00:00,Ali,Ms Green,07911 123456,,NOTAPOSTCODE,Noise,Still barking
,2026-11-25T11:00:00Z,Ali,Mr Brown,,brown@example.com,,Council tax,Wants a single person discount
"""


def test_import_calls_reports_bad_rows_by_line_and_never_imports_twice(kafka: Any, tmp_path: Path) -> None:
    ids = [f"call-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    export = tmp_path / "calls.csv"
    export.write_text(CSV.format(a=ids[0], b=ids[1], c=ids[2], d=ids[3]), encoding="utf-8")
    env = {**kafka.env, "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "FRONTDOOR_DATABASE_URL": f"sqlite:///{tmp_path / 'fd.db'}",
           "FRONTDOOR_BLOB_DIR": str(tmp_path / "blobs")}
    frontdoor("db", "upgrade", env=env)  # the references come from the tickets database's allocator
    first = frontdoor("import-calls", str(export), env=env, check=False)
    assert first.returncode == 1, first.stderr
    assert '"ingested": 2' in first.stdout and '"rejected": 3' in first.stdout
    errors = [line for line in first.stderr.splitlines() if ": line " in line]
    assert len(errors) == 3
    assert "line 4: caller_name/caller_phone/caller_email" in errors[0]  # line 2-3 is one quoted row
    assert "line 5: started_at:" in errors[1]
    assert "line 6: caller_postcode: Enter a real postcode" in errors[2]

    again = frontdoor("import-calls", str(export), env=env, check=False)
    assert '"ingested": 0' in again.stdout and '"already_imported": 2' in again.stdout

    ours = [InboundMessage.model_validate_json(r.value or b"") for r in read_topic(kafka.bootstrap, INBOUND)]
    ours = [m for m in ours if m.source.extra.get("import_file") == "calls.csv"
            and (m.source.extra.get("call_id") in ids or m.sender.email == "brown@example.com")]
    keys = sorted(m.dedupe_key for m in ours)
    assert len(keys) == len(set(keys))
    assert f"phone:call:{ids[0]}" in keys
    pothole = next(m for m in ours if m.dedupe_key == f"phone:call:{ids[0]}")
    assert pothole.body_text == "Deep pothole on London Road,\nnear the bus stop"
    assert pothole.sender.phone == "+441234567890" and pothole.source.agent == "Sam"
    assert REFERENCE.fullmatch(pothole.reference or "")
    assert pothole.received_at.isoformat().startswith("2026-11-25T09:12")


def test_import_calls_refuses_a_file_that_is_not_an_export(kafka: Any, tmp_path: Path) -> None:
    export = tmp_path / "wrong.csv"
    export.write_text("name,comment\nJo,hello\n", encoding="utf-8")
    env = {**kafka.env, "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "FRONTDOOR_DATABASE_URL": f"sqlite:///{tmp_path / 'fd.db'}"}
    result = frontdoor("import-calls", str(export), env=env, check=False)
    assert result.returncode == 2
    assert "the header lacks summary, notes" in result.stderr
    assert "Traceback" not in result.stderr
