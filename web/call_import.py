"""``frontdoor import-calls FILE.csv``: a telephony export's rows → messages, each once.

Every good row goes through the same exactly-once intake as the web paths (dedupe key
``phone:call:<call_id>``, or a hash of the row), so importing the same file again, or an
overlapping later export, publishes nothing twice. Bad rows are reported with their line
number and reason and the rest of the file is still imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from connectors.call_notes import BadRow, CallRow, CsvFormatError, read_calls, to_inbound
from schemas.inbound import InboundMessage
from web.intake import IdempotencyConflictError, IntakeService, fingerprint
from web.store import dumps


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


def import_calls(path: Path, intake: IntakeService) -> ImportReport:
    """Import one CSV file; raises CsvFormatError for a file that is not an export at all,
    PublishError when Kafka stops answering (rows before it are in; run again to finish)."""
    text = read_export(path)
    report = ImportReport(str(path))
    for row in read_calls(text):
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
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        raise CsvFormatError("the file is neither UTF-8 nor Windows-1252 text: save it as CSV UTF-8") \
            from None


def _builder(row: CallRow, path: Path) -> Callable[[str], InboundMessage]:
    extra = {"import_file": path.name, "import_line": str(row.line)}
    if row.call_id:
        extra["call_id"] = row.call_id
    return lambda ref: to_inbound(row.note, ref, row.dedupe_key, extra=extra)
