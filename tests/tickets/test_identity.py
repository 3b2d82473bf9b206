"""Identities: one canonical form per address and number, and a submission never merges two
existing residents on its own."""

from __future__ import annotations

import pytest

from tickets.identity import (
    Identity,
    IdentityKind,
    ResolutionKind,
    email_identity,
    identities_of,
    normalise_email,
    normalise_phone,
    phone_identity,
    resolve_identities,
)


@pytest.mark.parametrize(("raw", "expected"), [
    (" Anna.Resident@Example.ORG ", "anna.resident@example.org"),
    ("<anna@example.org>", "anna@example.org"),
    ("anna@example.org.", "anna@example.org"),
    ("not an address", None),
    ("@example.org", None),
    ("", None),
])
def test_emails_are_normalised(raw: str, expected: str | None) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("07700 900123", "+447700900123"),
    ("+44 (0)7700 900123", "+447700900123"),
    ("0044 7700 900123", "+447700900123"),
    ("020 7946 0018", "+442079460018"),
    ("+33 1 23 45 67 89", "+33123456789"),
    ("12", None),
    ("call me", None),
])
def test_phone_numbers_are_e164_with_gb_as_the_default_region(raw: str, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


def test_identity_keys_round_trip() -> None:
    ident = phone_identity("07700 900123")
    assert ident is not None and str(ident) == "phone:+447700900123"
    assert Identity.parse(str(ident)) == ident
    assert identities_of("A@B.example", "07700900123") == (Identity(IdentityKind.EMAIL, "a@b.example"), ident)


EMAIL = Identity(IdentityKind.EMAIL, "anna@example.org")
PHONE = Identity(IdentityKind.PHONE, "+447700900123")


def test_the_helpers_give_these_identities() -> None:
    assert (email_identity("Anna@Example.org"), phone_identity("07700 900123")) == (EMAIL, PHONE)


def test_a_new_person_gets_a_new_resident_holding_both() -> None:
    resolution = resolve_identities([EMAIL, PHONE], {})
    assert (resolution.kind, resolution.resident_id) == (ResolutionKind.NEW, None)
    assert resolution.link == (EMAIL, PHONE)


def test_a_known_address_with_a_new_number_links_the_number() -> None:
    resolution = resolve_identities([EMAIL, PHONE], {EMAIL: "r1"})
    assert (resolution.kind, resolution.resident_id) == (ResolutionKind.EXISTING, "r1")
    assert resolution.link == (PHONE,)
    assert resolution.suggested_merge == ()


def test_two_existing_residents_are_never_merged_by_a_submission() -> None:
    # The form gave Anna's address and a number another resident texted from.
    resolution = resolve_identities([EMAIL, PHONE], {EMAIL: "r1", PHONE: "r2"})
    assert resolution.kind is ResolutionKind.AMBIGUOUS
    assert (resolution.resident_id, resolution.link, resolution.suggested_merge) == ("r1", (), ("r2",))
    assert "a person decides" in resolution.reason


def test_the_channel_it_came_by_decides_the_resident() -> None:
    # An SMS: the number comes first, so the number's resident holds the message.
    resolution = resolve_identities([PHONE, EMAIL], {EMAIL: "r1", PHONE: "r2"})
    assert (resolution.resident_id, resolution.suggested_merge) == ("r2", ("r1",))


def test_an_anonymous_message_is_a_new_resident_without_identities() -> None:
    resolution = resolve_identities([], {})
    assert (resolution.kind, resolution.link, resolution.reason) == (ResolutionKind.NEW, (), "anonymous")
