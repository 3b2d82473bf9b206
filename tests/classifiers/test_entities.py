"""Entities an agent sees beside the enquiry: what must be found, and what must not."""

from __future__ import annotations

import pytest
import spacy

from classifiers.rules import find_entities, load_rules
from schemas.reference import new_reference

RULES = load_rules()


def found(text: str, label: str) -> list[str]:
    return [e.text for e in find_entities(text, RULES) if e.label == label]


@pytest.mark.parametrize(("text", "expected"), [
    ("bins missed at 23 Lark Rise, LN4 2QT", ["LN4 2QT"]),
    ("postcode sw1a1aa", ["SW1A1AA"]),
    ("I live in EC1A 1BB and work in M1 1AE", ["EC1A 1BB", "M1 1AE"]),
    ("flat 2, B33 8TH.", ["B33 8TH"]),
])
def test_postcodes_found(text: str, expected: list[str]) -> None:
    assert found(text, "POSTCODE") == expected


@pytest.mark.parametrize("text", [
    "my car AB12 CDE has been clamped",  # a registration, not a postcode
    "the LN4 bus was late", "room 12B on floor 3",
])
def test_not_postcodes(text: str) -> None:
    assert found(text, "POSTCODE") == []


@pytest.mark.parametrize(("text", "expected"), [
    ("call me on 07700 900431 after 5", ["07700 900431"]),
    ("tel: 0161 496 0000", ["0161 496 0000"]),
    ("mobile +44 7700 900123 or (01632) 960123", ["+44 7700 900123", "(01632) 960123"]),
    ("ring 020-7946-0018", ["020-7946-0018"]),
])
def test_phone_numbers_found(text: str, expected: list[str]) -> None:
    assert found(text, "PHONE") == expected


@pytest.mark.parametrize("text", [
    "I was born in 1987 and have lived here 12 years",
    "ref 12345678",  # a reference, not a phone number
    "it cost 123456 pounds",
    "call 555 1234",  # not a UK number
])
def test_not_phone_numbers(text: str) -> None:
    assert found(text, "PHONE") == []


def test_emails_found_and_not() -> None:
    assert found("write to Jo.Bloggs+bins@example.co.uk please", "EMAIL") == ["Jo.Bloggs+bins@example.co.uk"]
    assert found("meet me @ the library at 5", "EMAIL") == []


def test_references() -> None:
    ref = new_reference()
    assert found(f"my reference is {ref.lower()}", "REFERENCE") == [ref]
    assert found("ref 12345678 and case no: 2024/00123", "REFERENCE") == ["12345678", "2024/00123"]
    assert found("Reference number: PCN 88812345", "REFERENCE") == ["88812345"]
    assert found("I have 12345678 reasons to be cross", "REFERENCE") == []
    assert found("please refer me to someone", "REFERENCE") == []


def test_vehicle_registrations() -> None:
    assert found("silver Ford, reg AB12 CDE, parked for weeks", "VEHICLE_REG") == ["AB12 CDE"]
    assert found("van reg yk19abc", "VEHICLE_REG") == ["YK19ABC"]
    assert found("old Rover P123 ABC", "VEHICLE_REG") == ["P123 ABC"]
    assert found("flat b12 has the bins", "VEHICLE_REG") == []
    assert found("postcode LN4 2QT", "VEHICLE_REG") == []


def test_dates() -> None:
    assert found("missed on 16/11/2026 and again on 3rd March", "DATE") == ["16/11/2026", "3rd March"]
    assert found("since Tuesday 3 June 2025", "DATE") == ["Tuesday 3 June 2025"]
    assert found("it happened last Friday", "DATE") == ["last Friday"]
    assert found("may I ask a question", "DATE") == []
    assert found("flat 45/67 is empty", "DATE") == []


def test_entity_component_sets_doc_ents() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("frontdoor_entities")
    doc = nlp("Bins missed at LN4 2QT, call 07700 900431")
    assert [(e.label_, e.text) for e in doc.ents] == [("POSTCODE", "LN4 2QT"), ("PHONE", "07700 900431")]
