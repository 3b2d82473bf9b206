"""Rules beside the model: entities, enquiry type and flags.

Entities are found by regular expressions (and ``phonenumbers`` for telephone numbers) and
set on the spaCy ``Doc`` by the ``frontdoor_entities`` pipeline component, so ``doc.ents``
carries them like any spaCy entity. Type and flag patterns live in ``rules.toml``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import phonenumbers
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from classifiers.base import Entity
from schemas.errors import OperatorError
from schemas.reference import normalise_reference

DEFAULT_RULES = Path(__file__).with_name("rules.toml")

_POSTCODE = re.compile(
    r"\b(?:GIR ?0AA|[A-PR-UWYZ]"
    r"(?:[0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY])"
    r" ?[0-9][ABD-HJLNP-UW-Z]{2})\b",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<![\w+])(?:(?:\+44|0044)\s?(?:\(0\)\s?)?|\(?0)\d{2,5}\)?(?:[\s-]?\d){5,8}(?![\w-])")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_FD_REFERENCE = re.compile(r"\bFD[-\s]?[0-9A-Z]{4}[-\s]?[0-9A-Z]{4}\b", re.IGNORECASE)
# Current format (AB12 CDE) in any case; the older prefix (A123 BCD) and suffix (ABC 123D)
# formats only in capitals, since in lower case they look like ordinary words and numbers.
_VEHICLE = re.compile(
    r"\b(?:[A-HJ-PR-Y][A-HJ-PR-Y][0-9]{2} ?[A-HJ-PR-Z]{3}"
    r"|(?-i:[A-HJ-NP-Y][0-9]{1,3} ?[A-HJ-PR-Y]{3}|[A-HJ-PR-Y]{3} ?[0-9]{1,3}[A-HJ-NP-Y]))\b",
    re.IGNORECASE,
)
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_WEEKDAY = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?"
_DAY = r"(?:[12][0-9]|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(?:(?:{_WEEKDAY},?\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}\b(?:,?\s+(?:19|20)\d{{2}})?"
    rf"|{_MONTH}\s+{_DAY}\b(?:,?\s+(?:19|20)\d{{2}})?"
    r"|(?:[12][0-9]|3[01]|0?[1-9])[/.-](?:1[0-2]|0?[1-9])(?:[/.-](?:19|20)?\d{2})?(?![/.\-\d])"
    r"|(?:19|20)\d{2}-(?:1[0-2]|0[1-9])-(?:[12][0-9]|3[01]|0[1-9])"
    rf"|(?:last|next|this|on)\s+{_WEEKDAY}\b|yesterday|today|tomorrow)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Compiled type and flag patterns from ``rules.toml``."""

    version: str
    type_order: tuple[str, ...]
    type_patterns: dict[str, tuple[re.Pattern[str], ...]]
    fallback_type: str
    question_type: str
    question: tuple[re.Pattern[str], ...]
    flags: dict[str, tuple[re.Pattern[str], ...]]
    generic_reference: re.Pattern[str]
    # each group's patterns with the pieces of text they cannot match without (see ``_needles``)
    _guarded: dict[str, tuple[tuple[re.Pattern[str], tuple[str, ...] | None], ...]] = field(
        default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        groups = {**{f"type:{k}": v for k, v in self.type_patterns.items()}, "question": self.question,
                  **{f"flag:{k}": v for k, v in self.flags.items()}}
        self._guarded.update({name: tuple((p, _needles(p)) for p in patterns)
                              for name, patterns in groups.items()})

    def enquiry_type(self, text: str) -> tuple[str | None, str | None]:
        """The first rule type that matches, with the words that fired it; (None, None) if none."""
        lowered = _lowered(text)
        for kind in self.type_order:
            found = self._search(f"type:{kind}", text, lowered)
            if found:
                return kind, found.group(0).strip()
        return None, None

    def is_question(self, text: str) -> bool:
        return self._search("question", text, _lowered(text)) is not None or text.rstrip().endswith("?")

    def flags_for(self, text: str) -> list[tuple[str, str]]:
        """Every flag that fires, with the words that fired it."""
        fired = []
        lowered = _lowered(text)
        for name in self.flags:
            found = self._search(f"flag:{name}", text, lowered)
            if found:
                fired.append((name, found.group(0).strip()))
        return fired

    def _search(self, group: str, text: str, lowered: str) -> re.Match[str] | None:
        """The first of a group's patterns that matches ``text``. A pattern is skipped when a
        piece of text it cannot match without is absent from ``lowered``: most of the 200-odd
        patterns (138 for safeguarding alone) cannot match most enquiries, and a substring test
        costs a fraction of a regular-expression scan (measured: the rules took half the time of
        classifying a message)."""
        for pattern, needles in self._guarded.get(group, ()):
            if needles is not None and (needles[0] not in lowered if len(needles) == 1
                                        else not any(needle in lowered for needle in needles)):
                continue
            found = pattern.search(text)
            if found:
                return found
        return None


def load_rules(path: Path | None = None) -> RuleSet:
    chosen = path or DEFAULT_RULES
    try:
        data = tomllib.loads(chosen.read_text("utf-8"))
        types = data["types"]
        patterns = {kind: _compile(types["patterns"].get(kind, ()), chosen) for kind in types["order"]}
        return RuleSet(
            version=str(data.get("version", "")),
            type_order=tuple(types["order"]),
            type_patterns=patterns,
            fallback_type=str(types.get("fallback", "service_request")),
            question_type=str(types.get("question", "general")),
            question=_compile(types["patterns"].get("question", ()), chosen),
            flags={name: _compile(spec.get("patterns", ()), chosen)
                   for name, spec in data.get("flags", {}).items()},
            generic_reference=re.compile(
                rf"\b(?:{data['references']['keywords']})\.?\s*(?:no\.?|num(?:ber)?\.?|#)?\s*[:#]?\s*"
                r"(?P<ref>[A-Z]{0,3}[0-9][0-9/-]{4,14}[0-9][A-Z]?)\b",
                re.IGNORECASE,
            ),
        )
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise OperatorError(f"rules file {chosen} cannot be used: {exc}") from None


def _compile(patterns: Iterable[str], source: Path) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p, re.IGNORECASE))
        except re.error as exc:
            raise OperatorError(f"rules file {source}: bad pattern {p!r}: {exc}") from None
    return tuple(compiled)


# Characters that a case-insensitive pattern matches with an ASCII letter but that lower() keeps
_FOLD_TO_ASCII = str.maketrans({"\u0131": "i", "\u017f": "s"})
# the fewest characters a needle must have to be worth checking before the regular expression
_MIN_NEEDLE = 2


def _lowered(text: str) -> str:
    return text.lower().translate(_FOLD_TO_ASCII)


@lru_cache(maxsize=4096)
def _needles(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Lower-case strings one of which every match of ``pattern`` contains (None: no such
    guarantee found), read from the parsed pattern: a run of literal characters, or one literal
    per branch of an alternation that every match must pass through."""
    try:
        parsed = re._parser.parse(pattern.pattern, pattern.flags)  # type: ignore[attr-defined]
    except (re.error, AttributeError, TypeError):
        return None
    return _required(list(parsed))


def _required(items: list[tuple[Any, Any]]) -> tuple[str, ...] | None:
    from re._constants import (
        BRANCH,
        LITERAL,
        MAX_REPEAT,
        MIN_REPEAT,
        SUBPATTERN,
    )

    best: tuple[str, ...] | None = None

    def consider(candidates: tuple[str, ...] | None) -> None:
        nonlocal best
        if not candidates or min(map(len, candidates)) < _MIN_NEEDLE:
            return
        strength = (min(map(len, candidates)), -len(candidates))
        if best is None or strength > (min(map(len, best)), -len(best)):
            best = candidates

    run: list[str] = []
    for op, value in items:
        if op is LITERAL:
            run.append(chr(value).lower())
            continue
        consider(("".join(run),) if run else None)
        run = []
        if op is SUBPATTERN:
            consider(_required(list(value[3])))
        elif op is BRANCH:
            branches = [_required(list(branch)) for branch in value[1]]
            if all(branches):
                consider(tuple(needle for branch in branches if branch for needle in branch))
        elif op in (MAX_REPEAT, MIN_REPEAT) and value[0] >= 1:
            consider(_required(list(value[2])))
    consider(("".join(run),) if run else None)
    return best


def find_entities(text: str, rules: RuleSet) -> list[Entity]:
    """Postcodes, phone numbers, emails, references, dates and vehicle registrations, in order.

    Where two overlap the longer wins (a reference number is not also a phone number)."""
    found: list[Entity] = []
    for m in _EMAIL.finditer(text):
        found.append(Entity("EMAIL", m.group(0), m.start(), m.end()))
    for m in _FD_REFERENCE.finditer(text):
        # canonical when the check symbol holds; as typed otherwise (a typo is still a lead)
        ref = normalise_reference(m.group(0)) or m.group(0).upper()
        found.append(Entity("REFERENCE", ref, m.start(), m.end()))
    for m in rules.generic_reference.finditer(text):
        found.append(Entity("REFERENCE", m.group("ref"), m.start("ref"), m.end("ref")))
    for m in _PHONE.finditer(text):
        if _possible_uk_number(m.group(0)):
            found.append(Entity("PHONE", m.group(0), m.start(), m.end()))
    for m in _POSTCODE.finditer(text):
        found.append(Entity("POSTCODE", m.group(0).upper(), m.start(), m.end()))
    for m in _VEHICLE.finditer(text):
        found.append(Entity("VEHICLE_REG", m.group(0).upper(), m.start(), m.end()))
    for m in _DATE.finditer(text):
        found.append(Entity("DATE", m.group(0), m.start(), m.end()))
    return _without_overlaps(found)


def _possible_uk_number(raw: str) -> bool:
    try:
        number = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return False
    return number.country_code == 44 and phonenumbers.is_possible_number(number)


_PRIORITY = {"EMAIL": 0, "REFERENCE": 1, "PHONE": 2, "POSTCODE": 3, "VEHICLE_REG": 4, "DATE": 5}


def _without_overlaps(entities: list[Entity]) -> list[Entity]:
    ranked = sorted(entities, key=lambda e: (-(e.end - e.start), _PRIORITY[e.label], e.start))
    kept: list[Entity] = []
    for e in ranked:
        if all(e.end <= k.start or e.start >= k.end for k in kept):
            kept.append(e)
    return sorted(kept, key=lambda e: e.start)


@Language.factory("frontdoor_entities", default_config={"rules_path": None})
def make_entity_component(nlp: Language, name: str, rules_path: str | None) -> EntityComponent:
    return EntityComponent(load_rules(Path(rules_path) if rules_path else None))


class EntityComponent:
    """spaCy pipeline component: sets ``doc.ents`` from :func:`find_entities`."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def __call__(self, doc: Doc) -> Doc:
        spans: list[Span] = []
        for e in find_entities(doc.text, self.rules):
            span = doc.char_span(e.start, e.end, label=e.label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        doc.ents = filter_spans(spans)
        return doc
