"""Status transitions from the one table, and moves between departments as labelled corrections."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tickets.status import (
    TRANSITIONS,
    Correction,
    InvalidTransitionError,
    TicketStatus,
    allowed,
    check_transition,
    correction_for_move,
    on_resident_reply,
    write_corrections_csv,
)

S = TicketStatus
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(TicketStatus)


@pytest.mark.parametrize(("current", "target"), [
    (S.NEW, S.OPEN), (S.OPEN, S.AWAITING_RESIDENT), (S.AWAITING_RESIDENT, S.OPEN), (S.OPEN, S.RESOLVED),
    (S.RESOLVED, S.CLOSED), (S.RESOLVED, S.REOPENED), (S.CLOSED, S.REOPENED), (S.REOPENED, S.RESOLVED),
    (S.OPEN, S.MERGED), (S.CLOSED, S.MERGED),
])
def test_allowed_transitions(current: TicketStatus, target: TicketStatus) -> None:
    assert check_transition(current, target) is target


@pytest.mark.parametrize(("current", "target", "hint"), [
    (S.CLOSED, S.OPEN, "allowed: merged, reopened"),
    (S.RESOLVED, S.AWAITING_RESIDENT, "allowed: closed, merged, reopened"),
    (S.MERGED, S.OPEN, "unmerge restores it"),
    (S.OPEN, S.NEW, "allowed"),
    (S.OPEN, S.OPEN, "allowed"),
])
def test_refused_transitions_say_what_is_allowed(current: TicketStatus, target: TicketStatus,
                                                 hint: str) -> None:
    assert not allowed(current, target)
    with pytest.raises(InvalidTransitionError, match=hint):
        check_transition(current, target)


def test_a_residents_reply() -> None:
    assert on_resident_reply("awaiting_resident") is S.OPEN
    assert on_resident_reply("closed") is S.REOPENED
    assert on_resident_reply("resolved") is S.REOPENED
    assert on_resident_reply("new") is S.NEW


def _move(ticket: str, primary: str, to: str, at: datetime, text: str = "Pothole outside number 4",
          departments: tuple[str, ...] = ()) -> Correction:
    correction, _ = correction_for_move(ticket=ticket, departments=departments or (primary,), primary=primary,
                                        to=to, model_version="2026-03-01", confidence=0.58, channel="email",
                                        who="agent@council", reason="it is a road defect", at=at, text=text)
    return correction


def test_a_move_is_a_labelled_correction_and_keeps_the_other_departments() -> None:
    correction, after = correction_for_move(
        ticket="FD-1", departments=("waste", "parks"), primary="waste", to="highways",
        model_version="2026-03-01", confidence=0.58, channel="sms", who="agent@council",
        reason="a road defect", at=T0, text="Pothole")
    assert after == ("highways", "waste", "parks")
    assert (correction.from_department, correction.to_department, correction.model_version,
            correction.confidence, correction.channel, correction.who, correction.reason) == (
        "waste", "highways", "2026-03-01", 0.58, "sms", "agent@council", "a road defect")
    with pytest.raises(InvalidTransitionError, match="already with"):
        _move("FD-1", "waste", "waste", T0)


def test_corrections_csv_teaches_the_final_department_once_per_ticket() -> None:
    corrections = [
        _move("FD-1", "waste", "parks", T0),
        _move("FD-1", "parks", "highways", T0 + timedelta(hours=1)),  # A → B → C teaches C
        _move("FD-2", "housing", "council_tax", T0, text="Single person discount"),
        _move("FD-3", "parking", "highways", T0),
        _move("FD-3", "highways", "parking", T0 + timedelta(hours=1)),  # back where it was: nothing
        _move("FD-4", "waste", "parks", T0, text="  "),  # no text: nothing to learn
    ]
    out = io.StringIO()
    assert write_corrections_csv(corrections, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows == [
        {"text": "Pothole outside number 4", "from_department": "waste", "to_department": "highways"},
        {"text": "Single person discount", "from_department": "housing", "to_department": "council_tax"},
    ]


def test_corrections_from_the_database_train_the_router(upgraded_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy.orm import Session

    from frontdoor.cli import main
    from tickets.db import make_engine
    from tickets.models import Correction as CorrectionRow
    from tickets.models import Ticket, TicketMessage
    from tickets.status import corrections_from_database

    engine = make_engine(upgraded_url)
    try:
        with Session(engine) as s, s.begin():
            ticket = Ticket(reference="FD-1234-5678", status="open", primary_department="highways",
                            channel="sms")
            s.add(ticket)
            s.flush()
            first = TicketMessage(ticket_id=ticket.id, dedupe_key="sms:SM1", message_uuid="u1", channel="sms",
                                  received_at=T0, body_text="There is a pothole by the school",
                                  body_trimmed="There is a pothole by the school")
            s.add(first)
            s.flush()
            s.add(CorrectionRow(ticket_id=ticket.id, message_id=None, from_department="waste",
                                to_department="highways", model_version="m7", confidence=0.44, channel="sms",
                                actor="agent@council", reason="a pothole is the road's",
                                at=T0 + timedelta(hours=1)))
        with Session(engine) as s:
            [correction] = corrections_from_database(s)
    finally:
        engine.dispose()
    assert (correction.ticket, correction.from_department, correction.to_department, correction.model_version,
            correction.confidence, correction.who) == ("FD-1234-5678", "waste", "highways", "m7", 0.44,
                                                       "agent@council")
    assert correction.text == "There is a pothole by the school"
    assert correction.reason == "a pothole is the road's"
    if not upgraded_url.startswith("sqlite"):
        return
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", upgraded_url)
    try:
        main(["tickets", "corrections", "--out", str(tmp_path / "c" / "corrections.csv")])
    except SystemExit as exc:
        assert not exc.code
    assert json.loads(capsys.readouterr().out)["rows"] == 1
    assert (tmp_path / "c" / "corrections.csv").read_text() == (
        "text,from_department,to_department\nThere is a pothole by the school,waste,highways\n")
