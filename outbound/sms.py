"""SMS segments as Twilio bills them, so the console can count and warn before sending.

A text that fits the GSM 03.38 alphabet goes as GSM-7: 160 characters in one segment, 153 per
segment once split (the rest carries the concatenation header); characters of the extension
table (``^{}\\[~]|€`` and form feed) take two. Anything else forces UCS-2 for the whole text:
70 characters alone, 67 per segment split, and a character outside the Basic Multilingual
Plane (most emoji) takes two UTF-16 code units. A split never cuts an escape pair or a
surrogate pair in two.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
WARN_ABOVE_SEGMENTS = 3


@dataclass(frozen=True, slots=True)
class SmsSegments:
    """How Twilio will send a text: its encoding, units used and segments billed."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # capacity of one segment at this length

    @property
    def warning(self) -> str | None:
        """The console shows this above three segments: each segment is billed."""
        if self.segments > WARN_ABOVE_SEGMENTS:
            return (f"This text is {self.segments} SMS segments ({self.encoding}); "
                    f"more than {WARN_ABOVE_SEGMENTS} costs more and may arrive out of order.")
        return None


def _units(ch: str, gsm: bool) -> int:
    if gsm:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def count_segments(text: str) -> SmsSegments:
    gsm = is_gsm7(text)
    single, multi = (160, 153) if gsm else (70, 67)
    units = sum(_units(ch, gsm) for ch in text)
    if units <= single:
        return SmsSegments("GSM-7" if gsm else "UCS-2", units, 1 if text else 0, single)
    return SmsSegments("GSM-7" if gsm else "UCS-2", units, len(split_segments(text)), multi)


def split_segments(text: str) -> list[str]:
    """The parts the handset reassembles, cut where Twilio cuts them."""
    gsm = is_gsm7(text)
    single, multi = (160, 153) if gsm else (70, 67)
    if sum(_units(ch, gsm) for ch in text) <= single:
        return [text] if text else []
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        need = _units(ch, gsm)
        if used + need > multi:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += need
    if current:
        parts.append("".join(current))
    return parts
