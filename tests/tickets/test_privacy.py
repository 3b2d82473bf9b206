"""Subject access export and retention erasure on a real database and a real blob store
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from schemas.blobs import FilesystemBlobStore
from schemas.reference import new_reference
from tickets.db import make_engine
from tickets.feedback import record_feedback
from tickets.models import (
    Feedback,
    FeedbackDepartment,
    Resident,
    ResidentIdentity,
    Ticket,
    TicketDepartment,
    TicketEvent,
    TicketMessage,
    TicketNote,
    TicketParticipant,
    TicketReference,
)
from tickets.outbox import outbox
from tickets.privacy import ResidentNotFoundError, erase_expired, export_resident, find_resident

CLOSED = datetime(2019, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RETENTION = timedelta(days=6 * 365)
OLD_REF, RECENT_REF = new_reference(), new_reference()


@pytest.fixture
def engine(upgraded_url: str) -> Iterator[Engine]:
    engine = make_engine(upgraded_url)
    yield engine
    engine.dispose()


def seed(engine: Engine, blobs: FilesystemBlobStore) -> dict[str, int]:
    photo = blobs.put(b"\x89PNG a photo of the damp wall", "image/png")
    leaflet = blobs.put(b"%PDF the council's own leaflet", "application/pdf")
    raw = blobs.put(b"From: anna@example.org\r\nSubject: Damp\r\n\r\nThe wall is wet.", "message/rfc822")
    with Session(engine) as s, s.begin():
        anna = Resident(name="Anna Resident", name_key="anna resident", postcode="AB12CD",
                        address="1 High St")
        s.add(anna)
        s.flush()
        s.add_all([ResidentIdentity(resident_id=anna.id, kind="email", value="anna@example.org"),
                   ResidentIdentity(resident_id=anna.id, kind="phone", value="+447700900123")])
        old = Ticket(reference=OLD_REF, status="closed", resident_id=anna.id, primary_department="housing",
                     channel="email", subject="Damp in flat", closed_at=CLOSED,
                     tracking_secret_hash="secret-hash",
                     created_at=CLOSED - timedelta(days=3), updated_at=CLOSED)
        recent = Ticket(reference=RECENT_REF, status="open", resident_id=anna.id, primary_department="waste",
                        channel="sms", subject=None, created_at=NOW - timedelta(days=2), updated_at=NOW)
        s.add_all([old, recent])
        s.flush()
        s.add_all([
            TicketReference(reference=OLD_REF, ticket_id=old.id, kind="primary",
                            dedupe_key="email:a1@example.org"),
            TicketMessage(ticket_id=old.id, dedupe_key="email:a1@example.org", message_uuid="m1",
                          channel="email",
                          received_at=CLOSED - timedelta(days=3), sender_name="Anna Resident",
                          sender_email="anna@example.org", subject="Damp in flat",
                          body_text="The wall in my bedroom at 1 High St is wet.", raw_sha256=raw.sha256,
                          attachments=[{"blob": photo.model_dump(), "filename": "wall.png"},
                                       {"blob": leaflet.model_dump(), "filename": "leaflet.pdf"}],
                          routing={"department": "housing", "confidence": 0.9, "enquiry_type": "complaint",
                                   "entities": [{"label": "POSTCODE", "text": "AB1 2CD", "start": 0,
                                                 "end": 7}],
                                   "explanation": ["wall is wet"]}),
            TicketMessage(ticket_id=recent.id, dedupe_key="sms:SM1", message_uuid="m2", channel="sms",
                          received_at=NOW - timedelta(days=2), sender_phone="+447700900123",
                          body_text="Bins missed again", attachments=[{"blob": leaflet.model_dump(),
                                                                       "filename": "leaflet.pdf"}]),
            TicketParticipant(ticket_id=old.id, kind="email", value="anna@example.org", name="Anna Resident"),
            TicketParticipant(ticket_id=recent.id, kind="phone", value="+447700900123"),
            TicketDepartment(ticket_id=old.id, department="housing", role="primary"),
            TicketDepartment(ticket_id=recent.id, department="waste", role="primary"),
            TicketNote(ticket_id=old.id, author="officer@council", body="Anna says her son has asthma"),
            TicketEvent(ticket_id=old.id, reference=old.reference, kind="threaded",
                        detail={"rule": "reference", "evidence": "anna@example.org", "reason": "joined"}),
        ])
        s.flush()
        s.execute(insert(outbox), [{
            "idempotency_key": "reply:1", "ticket_id": old.id, "reference": old.reference, "kind": "reply",
            "channel": "email", "recipient": "anna@example.org", "cc": "[]", "author": "officer@council",
            "body": "Dear Anna, a surveyor will visit 1 High St.", "context": "{}", "status": "delivered",
            "created_at": CLOSED - timedelta(days=2), "updated_at": CLOSED - timedelta(days=2)}])
        record_feedback(s, old.id, rating=2, comment="Took months, Anna", now=CLOSED + timedelta(days=1))
        return {"anna": anna.id, "old": old.id, "recent": recent.id}


def test_export_resident_writes_everything_held_with_the_files(engine: Engine, tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    ids = seed(engine, blobs)
    with Session(engine) as s:
        assert find_resident(s, phone="07700 900123") == ids["anna"]
        assert find_resident(s, email=" ANNA@example.org ") == ids["anna"]
        assert find_resident(s, reference=OLD_REF.lower().replace("-", " ")) == ids["anna"]
        with pytest.raises(ResidentNotFoundError):
            find_resident(s, email="nobody@example.org")
        result = export_resident(s, ids["anna"], blobs, tmp_path / "sar", now=NOW)
    document = json.loads(result.path.read_text(encoding="utf-8"))
    assert (result.tickets, result.messages) == (2, 2)
    assert document["resident"]["name"] == "Anna Resident"
    assert {i["value"] for i in document["identities"]} == {"anna@example.org", "+447700900123"}
    old = document["tickets"][0]
    assert old["references"] == [OLD_REF]
    assert old["messages"][0]["body_text"].startswith("The wall in my bedroom")
    assert old["internal_notes"][0]["body"] == "Anna says her son has asthma"
    assert old["feedback"]["comment"] == "Took months, Anna"
    sent = [(m["recipient"], m["body"]) for m in old["sent"]]
    assert sent == [("anna@example.org", "Dear Anna, a surveyor will visit 1 High St.")]
    assert "tracking_secret_hash" not in old["ticket"]
    # The original mail and both attachments, copied byte for byte (the shared leaflet once).
    files = {p: (tmp_path / "sar" / p).read_bytes() for p in old["messages"][0]["files"]}
    assert sorted(files.values()) == sorted([
        b"\x89PNG a photo of the damp wall", b"%PDF the council's own leaflet",
        b"From: anna@example.org\r\nSubject: Damp\r\n\r\nThe wall is wet."])
    assert document["tickets"][1]["messages"][0]["files"] == [p for p in old["messages"][0]["files"]
                                                              if p.endswith("leaflet.pdf")]
    assert len(result.files) == 3 and result.missing == []
    with Session(engine) as s, pytest.raises(FileExistsError, match="not empty"):
        export_resident(s, ids["anna"], blobs, tmp_path / "sar", now=NOW)


def test_retention_erases_personal_data_and_keeps_the_figures(engine: Engine, tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    ids = seed(engine, blobs)
    with Session(engine) as s, s.begin():
        report = erase_expired(s, now=NOW, retention=RETENTION, blobs=blobs)
    assert (report.tickets, report.messages, report.residents) == (1, 1, 0)  # Anna still has an open ticket
    assert report.blobs_deleted == 2  # the photo and the raw mail; the leaflet is still on the open ticket
    with Session(engine) as s:
        old = s.get(Ticket, ids["old"])
        assert old is not None and old.erased_at is not None and old.subject is None
        assert old.tracking_secret_hash is None
        # The anonymous figures: status, department, dates, rating, enquiry type.
        assert (old.status, old.primary_department, old.closed_at is not None) == ("closed", "housing", True)
        message = s.scalars(select(TicketMessage).where(TicketMessage.ticket_id == old.id)).one()
        erased = (message.body_text, message.sender_email, message.sender_name, message.subject)
        assert erased == ("", None, None, None)
        assert message.attachments == [] and message.raw_sha256 is None
        assert message.routing == {"department": "housing", "confidence": 0.9, "enquiry_type": "complaint"}
        assert s.scalars(select(TicketParticipant).where(TicketParticipant.ticket_id == old.id)).all() == []
        assert s.scalar(select(TicketNote.body).where(TicketNote.ticket_id == old.id)) == ""
        sent = s.execute(select(outbox.c.recipient, outbox.c.body, outbox.c.status)).one()
        assert tuple(sent) == ("", None, "delivered")
        feedback = s.get(Feedback, old.id)
        assert feedback is not None and (feedback.rating, feedback.comment) == (2, None)
        assert s.scalar(select(FeedbackDepartment.rating).where(FeedbackDepartment.ticket_id == old.id)) == 2
        department = select(TicketDepartment.department).where(TicketDepartment.ticket_id == old.id)
        assert s.scalar(department) == "housing"
        history = select(TicketEvent).where(TicketEvent.ticket_id == old.id)
        events = {e.kind: e.detail for e in s.scalars(history)}
        assert events["erased"] == {"retention_days": RETENTION.days}  # the audit line
        assert events["threaded"] == {"rule": "reference"}  # the address in the evidence is gone
        assert s.scalar(select(TicketReference.dedupe_key).where(TicketReference.ticket_id == old.id)) is None
        anna = s.get(Resident, ids["anna"])
        assert anna is not None and anna.name == "Anna Resident"  # her open enquiry still needs it
        recent = s.scalars(select(TicketMessage).where(TicketMessage.ticket_id == ids["recent"])).one()
        assert recent.body_text == "Bins missed again"
    leaflet_left = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(leaflet_left) == 1 and leaflet_left[0].read_bytes() == b"%PDF the council's own leaflet"

    with Session(engine) as s, s.begin():  # nothing more is due: a second run changes nothing
        assert erase_expired(s, now=NOW, retention=RETENTION, blobs=blobs).tickets == 0
    with Session(engine) as s, s.begin():  # years later the other ticket closed and expired too
        recent_ticket = s.get(Ticket, ids["recent"])
        assert recent_ticket is not None
        recent_ticket.status, recent_ticket.closed_at = "closed", NOW
    later = NOW + RETENTION + timedelta(days=1)
    with Session(engine) as s, s.begin():
        report = erase_expired(s, now=later, retention=RETENTION, blobs=blobs)
    assert (report.tickets, report.residents, report.blobs_deleted) == (1, 1, 1)
    with Session(engine) as s:
        anna = s.get(Resident, ids["anna"])
        assert anna is not None and anna.erased_at is not None
        assert (anna.name, anna.postcode, anna.address) == (None, None, None)
        assert s.scalar(select(func.count()).select_from(ResidentIdentity)) == 0
        assert s.scalar(select(func.count()).select_from(Ticket)) == 2  # the counts stay


def test_the_operator_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from frontdoor.cli import main
    from tickets.db import upgrade

    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", url)
    monkeypatch.setenv("FRONTDOOR_BLOB_DIR", str(tmp_path / "blobs"))

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return int(code or 0), out, err

    code, _, err = run("tickets", "retention")
    assert code == 2 and "frontdoor db upgrade" in err
    upgrade(url)
    engine = make_engine(url)
    try:
        seed(engine, FilesystemBlobStore(tmp_path / "blobs"))
    finally:
        engine.dispose()
    code, out, _ = run("tickets", "export-resident", "--phone", "07700 900123",
                       "--out", str(tmp_path / "sar"))
    summary = json.loads(out)
    assert (code, summary["tickets"], summary["messages"], summary["files"]) == (0, 2, 2, 3)
    document = json.loads((tmp_path / "sar" / "resident.json").read_text())
    assert document["resident"]["name"] == "Anna Resident"
    code, _, err = run("tickets", "export-resident", "--email", "nobody@example.org",
                       "--out", str(tmp_path / "x"))
    assert code == 2 and "no resident holds" in err
    code, _, err = run("tickets", "export-resident", "--email", "a@b.c", "--phone", "1",
                       "--out", str(tmp_path))
    assert code == 2 and "one of --email" in err
    assert json.loads(run("tickets", "retention", "--dry-run")[1])["tickets"] == 1
    erased = json.loads(run("tickets", "retention")[1])
    assert (erased["tickets"], erased["messages"], erased["residents"]) == (1, 1, 0)
    assert json.loads(run("tickets", "retention")[1])["tickets"] == 0
