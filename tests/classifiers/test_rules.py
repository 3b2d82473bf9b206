"""Enquiry type and safeguarding flags from the rules in ``rules.toml``."""

from __future__ import annotations

import pytest

from classifiers.rules import load_rules

RULES = load_rules()


@pytest.mark.parametrize(("text", "kind"), [
    ("Under the Freedom of Information Act please send me the number of potholes repaired in 2025", "foi"),
    ("I'd like a copy of all the personal data the council holds about me", "sar"),
    ("This is a subject access request under the UK GDPR", "sar"),
    ("Cllr Patel is asking on behalf of a resident about the bins on Elm Road", "member_enquiry"),
    ("I'm writing from the office of the local MP on behalf of a constituent", "member_enquiry"),
    ("Just wanted to say a huge thank you to the crew, brilliant job", "compliment"),
    ("This is the third time my bin has been missed, absolutely disgusting service", "complaint"),
    ("I want to make a formal complaint about how I was treated", "complaint"),
])
def test_type_rules(text: str, kind: str) -> None:
    assert RULES.enquiry_type(text)[0] == kind


@pytest.mark.parametrize("text", [
    "please collect my bulky waste on Friday", "thanks in advance for sorting the streetlight",
    "my councillor said I should write to you",  # a resident, not a member enquiry
])
def test_no_type_rule_for_plain_requests(text: str) -> None:
    assert RULES.enquiry_type(text) == (None, None)


def test_questions() -> None:
    assert RULES.is_question("How do I register to vote?")
    assert RULES.is_question("hi, what day is recycling collected")
    assert not RULES.is_question("Pothole outside 4 Mill Lane needs filling")


@pytest.mark.parametrize("text", [
    "I can smell gas in the stairwell of the flats",
    "my neighbour is 89, has no heating and hasn't been seen for days",
    "he hits me when he's drunk and I'm scared for the kids",
    "I don't want to be here anymore, I can't go on",
    "the wall is leaning out over the pavement and could come down any minute",
    "the child next door is left home alone all night, she's only 6",
])
def test_safeguarding_fires(text: str) -> None:
    assert [name for name, _ in RULES.flags_for(text)] == ["safeguarding"]


@pytest.mark.parametrize("text", [
    "my bin was missed again", "how do I renew my library books", "pothole on Mill Lane",
])
def test_safeguarding_quiet_on_ordinary_enquiries(text: str) -> None:
    assert RULES.flags_for(text) == []


def test_skipping_patterns_by_their_needed_words_changes_nothing() -> None:
    """Rules are matched only where the words a pattern cannot match without are present (for
    speed): on the corpus every pattern fires exactly where a plain search fires."""
    import json
    import re

    from classifiers.workflows import SHIPPED_CORPUS

    texts = [json.loads(line)["text"] for path in sorted(SHIPPED_CORPUS.glob("*.jsonl"))[:30]
             for line in path.read_text("utf-8").splitlines()]
    texts += ["DEATH TRAP by the school", "ſubject acceſs request", "Councillor Smith asked"]

    def plain_type(text: str) -> str | None:
        return next((kind for kind in RULES.type_order
                     if any(p.search(text) for p in RULES.type_patterns[kind])), None)

    def plain_flags(text: str) -> list[str]:
        return [name for name, patterns in RULES.flags.items() if any(p.search(text) for p in patterns)]

    for text in texts:
        assert RULES.enquiry_type(text)[0] == plain_type(text), text
        assert [name for name, _ in RULES.flags_for(text)] == plain_flags(text), text
    assert re.search("subject access", "ſubject acceſs request", re.IGNORECASE)  # why the folding
    assert RULES.enquiry_type("ſubject acceſs request")[0] == "sar"
