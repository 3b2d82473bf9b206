"""Reference numbers residents quote: short, readable on a phone, hard to guess.

Format ``FD-XXXX-XXXX``: eight symbols of Crockford's base32 (no I, L, O or U, so nothing
is misread over the phone), the last one a check symbol. Seven random symbols drawn from
30 of the 32 (see below) give 34 bits: ~22 billion values, so walking the space to find
another resident's ticket is not practical, and a typo is caught by the check symbol
before any lookup.

The check is a position-weighted sum modulo the prime 31 (weights 1..7, so any single
substitution and any swap of two symbols changes it, as long as the two symbol values
differ modulo 31). Over a 32-symbol alphabet exactly one pair collides: ``0`` (value 0)
and ``Z`` (value 31). References issued before that was noticed may hold either in their
body, and they must stay valid, so the check itself is unchanged; instead new references
never put ``0`` or ``Z`` in the seven body symbols. Every value left (1..30) is distinct
and nonzero modulo 31, so in a reference issued now *every* single-symbol substitution
(including to ``0`` or ``Z``) and every transposition changes the check. No version marker
is needed: the rule for reading references is the same for old and new. Old references
that hold ``0``/``Z`` keep that one blind spot, which a lookup then catches as "not found".
Uniqueness is enforced where tickets are stored (a unique constraint); a clash simply
draws again.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Body symbols of new references: everything but the one pair equal modulo 31 (0 and Z).
BODY_ALPHABET = ALPHABET[1:-1]
_DECODE = {c: i for i, c in enumerate(ALPHABET)} | {"O": 0, "I": 1, "L": 1}
PREFIX = "FD"
_PATTERN = re.compile(r"\bFD[-\s]?([0-9A-Z]{4})[-\s]?([0-9A-Z]{4})\b", re.IGNORECASE)


def _check_symbol(body: str) -> str:
    total = sum((i + 1) * _DECODE[c] for i, c in enumerate(body))
    return ALPHABET[total % 31]  # prime modulus: catches any single-symbol error and most swaps


def new_reference() -> str:
    body = "".join(secrets.choice(BODY_ALPHABET) for _ in range(7))
    code = body + _check_symbol(body)
    return f"{PREFIX}-{code[:4]}-{code[4:]}"


def normalise_reference(text: str) -> str | None:
    """The canonical form of a reference as a resident typed it, or None if it is not one."""
    match = _PATTERN.fullmatch(text.strip())
    return _canonical(match) if match else None


def find_references(text: str) -> list[str]:
    """Every valid reference quoted in free text, canonical and in order, without repeats."""
    found: list[str] = []
    for match in _PATTERN.finditer(text):
        ref = _canonical(match)
        if ref and ref not in found:
            found.append(ref)
    return found


def _canonical(match: re.Match[str]) -> str | None:
    raw = (match.group(1) + match.group(2)).upper()
    if any(c not in _DECODE for c in raw):
        return None
    code = "".join(ALPHABET[_DECODE[c]] for c in raw)
    if _check_symbol(code[:7]) != code[7]:
        return None
    return f"{PREFIX}-{code[:4]}-{code[4:]}"
