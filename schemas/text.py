"""Text preparation shared by the channels (``body_trimmed``) and the classifier.

One function decides what "the resident's own words" are, so training and inference see
the same text whatever channel it came from.
"""

from __future__ import annotations

import re

# "On Tue, 3 Jun 2025 at 10:02, Jo Bloggs <jo@example.com> wrote:" and the Outlook header block.
_REPLY_HEADER = re.compile(
    r"^(?:On\s.{0,200}?wrote:?\s*$"
    r"|On\s[^\n]{0,200}\n[^\n]{0,200}?wrote:\s*$"  # the same header wrapped by the client
    r"|-{2,}\s*(?:Original|Forwarded) Message\s*-{2,}"
    r"|Begin forwarded message:\s*$"
    r"|_{10,}\s*$"
    r"|From:\s.+\n(?:(?:Sent|Date):\s.+\n)?(?:To|Subject):\s)",
    re.IGNORECASE | re.MULTILINE,
)
_SIGNATURE = re.compile(r"^(?:-- ?|Sent from my \w[\w ]{0,40}|Get Outlook for \w+)\s*$", re.MULTILINE)
_SPACE = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")


def trim_reply(text: str) -> str:
    """The new part of a message: quoted replies (``>`` lines, "On … wrote:" blocks,
    forwarded-original headers) and the signature removed. Never returns less than nothing:
    if trimming would leave no words, the text is returned whole."""
    cut = len(text)
    for pattern in (_REPLY_HEADER, _SIGNATURE):
        found = pattern.search(text)
        if found and found.start() < cut:
            cut = found.start()
    kept = "\n".join(line for line in text[:cut].splitlines() if not line.lstrip().startswith(">"))
    kept = normalise_space(kept)
    return kept if kept else normalise_space(text)


def normalise_space(text: str) -> str:
    lines = (_SPACE.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
