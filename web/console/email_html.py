"""A resident's email HTML, made safe to show inside the console with nh3 (ammonia).

No script, no event handlers, no forms, no styles (the page's CSP would refuse inline styles
anyway), links that cannot script (``http``, ``https``, ``mailto`` only) and open nothing in
our window's context. Remote images are tracking beacons as often as pictures: their ``src``
is dropped until the agent asks to see them (and the ticket page's CSP then allows https
images for that view only). Headings are demoted so the message never outranks the page's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nh3
from markupsafe import Markup

TAGS = (set(nh3.ALLOWED_TAGS) - {"h1", "h2", "h3", "map", "area", "header", "footer", "nav"}) | {"h4"}
ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "*": {"lang", "dir"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_BLOCKED = re.compile(r'<img(?![^>]*\bsrc=)(?:[^>]*\balt="([^"]*)")?[^>]*>')
_NO_ALT = re.compile(r"<img(?![^>]*\balt=)")
HEADINGS = {"h1": "h4", "h2": "h4", "h3": "h4"}


@dataclass(frozen=True)
class SafeHtml:
    html: Markup
    images_blocked: int


def _described(match: re.Match[str]) -> str:
    alt = match.group(1)  # already escaped by nh3
    return f'<span class="fd-blocked-image">[image{": " + alt if alt else ""}]</span>'


def sanitise(raw: str, *, show_images: bool = False) -> SafeHtml:
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            if value.startswith("https://") and show_images:
                return value
            blocked += 1
            return None
        return value

    for heading, replacement in HEADINGS.items():  # demote before cleaning: nh3 drops unknown tags' text
        raw = raw.replace(f"<{heading}", f"<{replacement}").replace(f"</{heading}", f"</{replacement}")
    cleaned = nh3.clean(raw, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                        clean_content_tags={"script", "style", "title", "head", "template", "noscript"},
                        link_rel="noopener noreferrer nofollow", attribute_filter=keep, strip_comments=True)
    # a blocked image shows as its description; a shown one without a description is decoration
    cleaned = _BLOCKED.sub(_described, cleaned)
    cleaned = _NO_ALT.sub('<img alt=""', cleaned)
    return SafeHtml(Markup(cleaned), blocked)  # noqa: S704  (nh3's output is the safe HTML)
