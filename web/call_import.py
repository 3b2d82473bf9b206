"""``frontdoor import-calls FILE.csv``: a telephony export's rows → messages, each once.

Every good row goes through the same exactly-once intake outbox as the web paths (dedupe key
``phone:call:<call_id>``, or a hash of the row), so importing the same file again, or an
overlapping later export, publishes nothing twice. Bad rows are reported with their line
number and reason and the rest of the file is still imported.

The whole file is read and checked (:func:`load_calls`) before anything is published, so a
file that is not an export, or whose quoting is broken, is refused with nothing imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from connectors.call_notes import BadRow, CallRow, CsvFormatError, read_calls, to_inbound
from ingest.intake import IdempotencyConflictError, IntakeService, fingerprint
from ingest.intake_store import dumps
from schemas.inbound import InboundMessage


@dataclass
class ImportReport:
    file: str
    ingested: int = 0
    already_imported: int = 0
    rejected: list[BadRow] = field(default_factory=list)
    references: dict[int, str] = field(default_factory=dict)  # line → reference

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "ingested": self.ingested, "already_imported": self.already_imported,
                "rejected": len(self.rejected)}


@dataclass(frozen=True)
class CallExport:
    """A file read and checked to the last row; nothing of it has been published yet."""

    path: Path
    rows: list[CallRow | BadRow]


def import_calls(path: Path, intake: IntakeService) -> ImportReport:
    """Import one CSV file into the intake outbox; raises CsvFormatError for a file that is not an
    export at all. The relay publishes the rows (``frontdoor import-calls`` drains it itself)."""
    return ingest_calls(load_calls(path), intake)


def load_calls(path: Path) -> CallExport:
    """Read and check the whole file without touching the broker or the database.

    Raises CsvFormatError (nothing to import) for a file that cannot be read, is not CSV text,
    lacks the needed columns, or has a quote that never closes: after such a quote nobody can
    tell where the rows end, so no row of the file is trusted."""
    text = read_export(path)
    check_quoting(text)
    return CallExport(path, list(read_calls(text)))


def ingest_calls(export: CallExport, intake: IntakeService) -> ImportReport:
    """Commit each good row once (a row taken before, by this file or an overlapping one, adds
    nothing); a database error stops the import (rows before it are in: run it again)."""
    path = export.path
    report = ImportReport(str(path))
    for row in export.rows:
        if isinstance(row, BadRow):
            report.rejected.append(row)
            continue
        try:
            receipt = intake.submit(row.dedupe_key, _builder(row, path),
                                    fingerprint(dumps(row.note.model_dump(mode="json"))),
                                    origin=f"{path.name}:{row.line}")
        except IdempotencyConflictError:
            report.rejected.append(BadRow(row.line, f"call_id {row.call_id} was already imported with "
                                          "different details; the first import stands"))
            continue
        report.references[row.line] = receipt.reference
        if receipt.duplicate:
            report.already_imported += 1
        else:
            report.ingested += 1
    return report


def read_export(path: Path) -> str:
    """The file's text: UTF-8 (with or without a BOM), else Windows-1252, which is what Excel
    writes for "CSV" on a UK machine. Never guesses silently: other bytes are refused."""
    if path.is_dir():
        raise CsvFormatError("is a directory: name the CSV file itself")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CsvFormatError("no such file") from None
    except OSError as exc:
        raise CsvFormatError(f"cannot read it ({exc.strerror or exc}): check the path and its permissions") \
            from None
    if not raw.strip():
        raise CsvFormatError("the file is empty: export the calls again (a header row, then one row a call)")
    if b"\x00" in raw:
        raise CsvFormatError("not a call export: the file has NUL bytes, so it is not CSV text "
                             "(a spreadsheet, an image, UTF-16?): save it as CSV UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        raise CsvFormatError("the file is neither UTF-8 nor Windows-1252 text: save it as CSV UTF-8") \
            from None


def check_quoting(text: str) -> None:
    """Refuse text whose quotes do not pair up the way CSV needs.

    The lenient reader :func:`read_calls` uses would take a quote that never closes as the
    start of one field running to the end of the file, silently folding every later row into
    one note. A strict pass reads the same rows when it succeeds, and when it fails we name the
    line where the offending quote opens."""
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, strict=True)
    start = 1  # the line the record being read starts on
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as exc:
        at = reader.line_num
        opened, state = _open_quote(lines[:at])
        if state == "open" and at == len(lines):
            last = len(lines)
            swallowed = f"line {last}" if last == opened + 1 else f"lines {opened + 1}-{last}"
            what = f"line {opened}: a quote opens here and never closes" + (
                f", so {swallowed} would become part of this row" if last > opened else "")
        elif state == "open":
            what = f"line {opened}: a quote opens here and is still open at line {at} ({exc})"
        elif state == "text after close" and opened < at:
            what = f"line {opened}: a quote opens here and closes only on line {at}, with text after it"
        elif state == "text after close":
            what = f'line {at}: text follows a closing quote (write "" for a quote inside quotes)'
        else:
            what = f"line {start}: not valid CSV ({exc})"
        raise CsvFormatError(f"{what}; nothing was imported: fix the file and run import-calls again") \
            from None


def _open_quote(lines: list[str]) -> tuple[int, str]:
    """Where the last quoted field opens (line, 0 if none), reading ``lines`` as Python's csv
    module does with the default dialect, and how it ends: ``"open"`` (never closed),
    ``"text after close"`` (where a strict reader stops), or ``""`` (closed properly)."""
    opened, quoted, closing, field_start = 0, False, False, True
    for number, line in enumerate(lines, start=1):
        for ch in line:
            if quoted:
                if ch == '"':
                    quoted, closing = False, True
            elif closing and ch == '"':  # "" inside a quoted field
                quoted, closing = True, False
            elif closing and ch not in ",\r\n":
                return opened, "text after close"
            else:
                if field_start and ch == '"':
                    quoted, opened = True, number
                closing = False
                field_start = ch in ",\r\n"
    return opened, "open" if quoted else ""


def _builder(row: CallRow, path: Path) -> Callable[[str], InboundMessage]:
    extra = {"import_file": path.name, "import_line": str(row.line)}
    if row.call_id:
        extra["call_id"] = row.call_id
    return lambda ref: to_inbound(row.note, ref, row.dedupe_key, extra=extra)
