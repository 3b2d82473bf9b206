"""Bytes of real-world mail to text: declared, misdeclared, unknown and missing charsets.

Mail in the wild declares ``iso-8859-1`` and sends UTF-8, sends 8-bit headers without any
encoding, names charsets Python does not know (``ks_c_5601-1987``, ``x-unknown``) or none
at all. The rule here: trust the declaration when it decodes cleanly and is not contradicted
by valid multi-byte UTF-8; otherwise ask charset-normalizer; never fail, at worst replace.
"""

from __future__ import annotations

import binascii
import codecs
import quopri
import re
from email.errors import HeaderParseError
from email.header import decode_header

import charset_normalizer
import html2text

# Labels mail clients use that Python either lacks or maps to too narrow a codec. Supersets
# are what the senders' systems really produce (the WHATWG encoding standard does the same).
_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "x-windows-949": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "big5": "big5hkscs",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-user-defined": "cp1252",
}
_UTF = {"utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7"}


def codec_for(charset: str | None) -> str | None:
    """A Python codec name for a MIME charset label, or None when there is none."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from bytes whatever the declaration says; never raises."""
    if not data:
        return ""
    if data.isascii():
        codec = codec_for(charset)
        # 7-bit charsets (ISO-2022-*, UTF-7) are the only ones that change ASCII bytes.
        if codec and ("2022" in codec or codec == "utf-7"):
            try:
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                pass
        return data.decode("ascii")
    codec = codec_for(charset)
    if codec not in _UTF:
        # Valid multi-byte UTF-8 almost never happens by accident: a message declared as
        # a legacy charset (or none) that is valid UTF-8 is UTF-8.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if codec and codec != "ascii":
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    western = _western(data)
    if western is not None:
        return western
    guess = guess_codec(data)
    if guess is not None:
        try:
            return data.decode(guess)
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode(codec or "cp1252", errors="replace")


_WESTERN = {"cp1252", "latin_1", "iso8859_15"}
_WESTERN_CHARS = set("ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿ"
                     "£€’‘“”–—…•©®°«»·¡¿ŒœŠšŽž\u00a0")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{4,}")


def _western(data: bytes) -> str | None:
    """Windows-1252 when it reads as Western European text: accented letters and typographic
    punctuation, never more than three non-ASCII characters in a row. Detectors are least
    reliable exactly there (short subjects, names), and this is most of what a UK council gets."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    if _NON_ASCII_RUN.search(text):
        return None
    if all(ch in _WESTERN_CHARS for ch in text if ord(ch) > 127):
        return text
    return None


def guess_codec(data: bytes) -> str | None:
    """charset-normalizer's guess, preferring Windows-1252 among equally good candidates:
    short Western text fits many single-byte charsets equally well, and Western text is what
    a UK council mostly receives."""
    results = charset_normalizer.from_bytes(data[:200_000])
    best = results.best()
    if best is None or not best.encoding:
        return None
    tied = [m.encoding for m in results
            if m.chaos <= best.chaos + 0.01 and m.coherence >= best.coherence - 0.01]
    return "cp1252" if _WESTERN & set(tied) else best.encoding


_SURROGATES = re.compile(r"[\udc80-\udcff]")


def unescape_surrogates(text: str) -> str:
    """Undo the surrogateescape the email package uses for undeclared 8-bit header bytes."""
    if not _SURROGATES.search(text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"))


def decode_header_text(value: str | None) -> str:
    """A header value as readable text: raw 8-bit bytes and RFC 2047 words decoded, folded."""
    if value is None:
        return ""
    text = unescape_surrogates(str(value))
    try:
        chunks = decode_header(text)
    except (ValueError, LookupError, UnicodeError, HeaderParseError):
        return _unfold(_lenient_encoded_words(text))
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(decode_bytes(chunk, charset))
    return _unfold("".join(out))


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")


def _lenient_encoded_words(text: str) -> str:
    """RFC 2047 words decoded one by one, forgiving bad padding and stray characters."""

    def word(found: re.Match[str]) -> str:
        charset, kind, payload = found.group(1).split("*")[0], found.group(2).upper(), found.group(3)
        if kind == "B":
            cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
            cleaned = cleaned[: len(cleaned) - len(cleaned) % 4 if len(cleaned) % 4 == 1 else len(cleaned)]
            try:
                data = binascii.a2b_base64(cleaned + "=" * (-len(cleaned) % 4))
            except binascii.Error:
                return found.group(0)
        else:
            data = quopri.decodestring(payload.encode("ascii", "replace"), header=True)
        return decode_bytes(data, charset)

    return _ENCODED_WORD.sub(word, _BETWEEN_WORDS.sub(r"\1\2", text))


def _unfold(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_:.\-]+)", re.IGNORECASE)


def html_charset(data: bytes) -> str | None:
    """The charset an HTML document declares in its own ``<meta>``, if any."""
    found = _META_CHARSET.search(data[:4096])
    return found.group(1).decode("ascii") if found else None


def html_to_text(html: str) -> str:
    """Readable plain text from an HTML mail body (links kept inline, no hard wrapping)."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = False
    converter.unicode_snob = True
    converter.single_line_break = False
    try:
        text = converter.handle(html)
    except Exception:  # noqa: BLE001 - html2text on hostile markup: fall back to stripping tags
        text = re.sub(r"<[^>]+>", " ", html)
    return text.strip()
