"""The one text preparation used by training and inference alike.

``prepare`` decides what the classifier reads (subject plus the resident's own words, quoted
replies and signature removed); ``model_text`` is what the statistical model sees of it
(lower-cased, so "BINS NOT DONE" and "bins not done" are the same words). Rules and
entities run on the prepared text, whose case and digits they need.
"""

from __future__ import annotations

import re

from schemas.text import normalise_space, trim_reply

_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|sv)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")


def prepare(subject: str | None, body: str | None) -> str:
    """Subject (without Re:/Fwd:) and body (without quotes or signature) as one text."""
    text = trim_reply(body or "")
    title = _SUBJECT_PREFIX.sub("", subject or "").strip()
    if title and title.lower() not in text.lower()[: len(title) + 20]:
        text = f"{title}\n\n{text}" if text else title
    return normalise_space(text)


def model_text(prepared: str) -> str:
    """What the textcat sees: lower case, links reduced to a marker."""
    return _URL.sub(" url ", prepared).lower()
