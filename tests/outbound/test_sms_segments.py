"""SMS segments counted as Twilio bills them (GSM-7 160/153, UCS-2 70/67)."""

from __future__ import annotations

from outbound.sms import count_segments, split_segments


def test_gsm7_fits_160_in_one_segment_then_153_per_segment() -> None:
    assert count_segments("a" * 160).segments == 1
    split = count_segments("a" * 161)
    assert (split.encoding, split.segments, split.per_segment) == ("GSM-7", 2, 153)
    assert [len(p) for p in split_segments("a" * 161)] == [153, 8]
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3


def test_extension_characters_take_two_septets_and_are_never_cut_in_two() -> None:
    assert count_segments("€" * 80).units == 160
    assert count_segments("€" * 80).segments == 1
    text = "a" * 152 + "€" + "b" * 10  # the euro sign would straddle the first segment's end
    parts = split_segments(text)
    assert parts[0] == "a" * 152 and parts[1].startswith("€")


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2() -> None:
    assert count_segments("Thank you " + "a" * 60).segments == 1
    text = "Diolch ŵ " + "a" * 62  # Welsh w-circumflex is not in GSM-7
    info = count_segments(text)
    assert (info.encoding, info.segments, info.per_segment) == ("UCS-2", 2, 67)
    assert count_segments("ŵ" * 70).segments == 1


def test_emoji_take_two_code_units_and_stay_whole() -> None:
    assert count_segments("🙂" * 35).segments == 1
    assert count_segments("🙂" * 36).segments == 2
    parts = split_segments("a" * 66 + "🙂" + "b" * 5)  # 73 units: split, 67 per segment
    assert parts == ["a" * 66, "🙂bbbbb"]


def test_more_than_three_segments_warns() -> None:
    assert count_segments("a" * 459).warning is None  # exactly 3 x 153
    warning = count_segments("a" * 460).warning
    assert warning is not None and "4 SMS segments" in warning
    assert count_segments("").segments == 0
