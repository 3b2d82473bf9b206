"""Who wrote: residents, the addresses and numbers they hold, and when two are the same person.

Identities are compared in one canonical form: emails trimmed and lower-cased (the domain is
case-insensitive and every council system we meet treats the local part so too), phone numbers
in E.164 (``phonenumbers``, region GB, so ``07700 900123`` and ``+44 7700 900123`` are one
number). A resident holds several of each.

The rule that matters: a submission that gives an email and a number links them for a *new*
resident, or adds the new one to the resident who holds the other; it never merges two residents
who already exist. A person decides that, so the decision here is a suggested merge an agent
sees, and :mod:`tickets.merging` does the merge when they agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

DEFAULT_REGION = "GB"


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True, order=True)
class Identity:
    """One address or number, canonical. ``str()`` is ``kind:value``, the key stores use."""

    kind: IdentityKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.value}"

    @classmethod
    def parse(cls, key: str) -> Identity:
        kind, _, value = key.partition(":")
        return cls(IdentityKind(kind), value)


def normalise_email(raw: str | None) -> str | None:
    """The canonical form of an email address, or None when it is not one."""
    if not raw:
        return None
    value = raw.strip().strip("<>").strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or " " in value:
        return None
    return f"{local}@{domain.rstrip('.')}"


def normalise_phone(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164 (``+447700900123``), or None when it cannot be a phone number.

    Possible rather than valid: Ofcom's drama ranges (``07700 900xxx``) and new allocations
    that the library's metadata does not know yet are still the resident's number.
    """
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_identity(raw: str | None) -> Identity | None:
    value = normalise_email(raw)
    return Identity(IdentityKind.EMAIL, value) if value else None


def phone_identity(raw: str | None, region: str = DEFAULT_REGION) -> Identity | None:
    value = normalise_phone(raw, region)
    return Identity(IdentityKind.PHONE, value) if value else None


def identities_of(email: str | None, phone: str | None, region: str = DEFAULT_REGION) -> tuple[Identity, ...]:
    """The canonical identities one party gave (email first), without repeats."""
    found = [i for i in (email_identity(email), phone_identity(phone, region)) if i is not None]
    return tuple(dict.fromkeys(found))


class ResolutionKind(StrEnum):
    NEW = "new"  # nobody holds any of them: a new resident holding them all
    EXISTING = "existing"  # one resident holds some: theirs, and the others are added to them
    AMBIGUOUS = "ambiguous"  # two or more residents hold them: the first, and a suggested merge


@dataclass(frozen=True)
class IdentityResolution:
    """What to do with the identities one submission gave.

    ``resident_id`` is None for a new resident. ``link`` are the identities to attach to that
    resident (those nobody holds yet). ``suggested_merge`` lists the other residents who hold
    one of the identities: never merged here, shown to an agent.
    """

    kind: ResolutionKind
    resident_id: str | None
    link: tuple[Identity, ...]
    suggested_merge: tuple[str, ...] = ()
    reason: str = ""


def resolve_identities(given: Iterable[Identity], holders: Mapping[Identity, str]) -> IdentityResolution:
    """Decide which resident a submission belongs to.

    ``given`` are the submission's identities in the order it gave them (the sender's email or
    number first); ``holders`` maps each of them that a resident already holds to that
    resident's id (what the repository loaded). The resident holding the *first* given identity
    wins: it is the channel the message came by, so the one the conversation continues on.
    """
    identities = tuple(dict.fromkeys(given))
    owners = list(dict.fromkeys(holders[i] for i in identities if i in holders))
    unheld = tuple(i for i in identities if i not in holders)
    if not owners:
        reason = f"no resident holds {_names(identities)}" if identities else "anonymous"
        return IdentityResolution(ResolutionKind.NEW, None, unheld, reason=reason)
    first = next(holders[i] for i in identities if i in holders)
    others = tuple(o for o in owners if o != first)
    if not others:
        reason = f"{_names(i for i in identities if i in holders)} held by the resident"
        if unheld:
            reason += f"; {_names(unheld)} added"
        return IdentityResolution(ResolutionKind.EXISTING, first, unheld, reason=reason)
    clash = ", ".join(f"{i} held by {holders[i]}" for i in identities if i in holders)
    return IdentityResolution(ResolutionKind.AMBIGUOUS, first, unheld, suggested_merge=others,
                              reason=f"two residents: {clash}; a person decides whether to merge them")


def _names(identities: Iterable[Identity]) -> str:
    return ", ".join(str(i) for i in identities)
