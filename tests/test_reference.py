"""Reference check symbols: every single-symbol error in a reference issued now is caught,
and references issued under the earlier rule still read."""

from __future__ import annotations

import itertools

from schemas.reference import ALPHABET, new_reference, normalise_reference

# Issued before new references stopped using 0 and Z in their body (computed with the same
# check): they must keep working.
LEGACY = ("FD-Z000-0000", "FD-0ZZZ-ZZZ0", "FD-1234-567G", "FD-ABCZ-0XYJ")


def _symbols(ref: str) -> str:
    return ref[3:7] + ref[8:]


def _ref(code: str) -> str:
    return f"FD-{code[:4]}-{code[4:]}"


def test_every_single_symbol_substitution_in_a_new_reference_is_caught() -> None:
    for _ in range(300):
        code = _symbols(new_reference())
        for position, symbol in itertools.product(range(8), ALPHABET):
            if symbol == code[position]:
                continue
            typo = _ref(code[:position] + symbol + code[position + 1:])
            assert normalise_reference(typo) is None, (code, typo)


def test_zero_and_z_never_confused_in_a_new_reference() -> None:
    for _ in range(300):
        code = _symbols(new_reference())
        assert not set(code[:7]) & {"0", "Z"}
        for position in range(7):
            for symbol in "0Z":
                assert normalise_reference(_ref(code[:position] + symbol + code[position + 1:])) is None


def test_every_adjacent_swap_in_a_new_reference_is_caught() -> None:
    for _ in range(300):
        code = _symbols(new_reference())
        for position in range(7):
            swapped = code[:position] + code[position + 1] + code[position] + code[position + 2:]
            if swapped != code:
                assert normalise_reference(_ref(swapped)) is None, (code, swapped)


def test_references_issued_before_stay_valid() -> None:
    for ref in LEGACY:
        assert normalise_reference(ref) == ref
        assert normalise_reference(ref.lower().replace("-", "")) == ref
