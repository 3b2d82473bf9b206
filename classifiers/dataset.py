"""Labelled examples from a council's export (CSV or JSONL, or a directory of them), and
the deterministic train / dev / test split."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers.text import prepare
from schemas.errors import OperatorError

SUFFIXES = (".csv", ".jsonl", ".json", ".ndjson")


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Example:
    text: str  # prepared text (subject and body trimmed of quotes and signature)
    label: str
    kind: str | None = None  # enquiry type, when the data has one
    safeguarding: bool | None = None
    # where the text came from: its file (less a leading label) and its register or source column
    # when the row has one. Calibration holds out whole sources, never random rows of one.
    source: str = ""
    weight: float = 1.0  # how much the example counts in training (a council's own rows count more)


@dataclass(frozen=True, slots=True)
class Split:
    train: list[Example]
    dev: list[Example]
    test: list[Example]


def data_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise OperatorError(f"{path} holds no .csv or .jsonl files")
        return files
    if not path.exists():
        raise OperatorError(f"data file {path} not found")
    return [path]


SOURCE_COLUMNS = ("source", "register")
FILE_KEY = "\x00file"  # the file a row was read from, beside its own columns


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of every CSV/JSONL file at ``path`` (a file or a directory), as dicts."""
    rows: list[dict[str, str]] = []
    for file in data_files(path):
        found = _read_csv(file) if file.suffix.lower() == ".csv" else _read_jsonl(file)
        for row in found:
            row[FILE_KEY] = file.stem
        rows.extend(found)
    if not rows:
        raise OperatorError(f"{path} holds no rows: nothing to train or evaluate on")
    return rows


def _read_csv(file: Path) -> list[dict[str, str]]:
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise OperatorError(f"{file} is not a readable UTF-8 CSV file: {exc}") from None


def _read_jsonl(file: Path) -> list[dict[str, str]]:
    rows = []
    try:
        lines = file.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise OperatorError(f"{file} is not UTF-8: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OperatorError(f"{file}:{number}: not a JSON object: {exc.msg}") from None
        if not isinstance(row, dict):
            raise OperatorError(f"{file}:{number}: not a JSON object")
        rows.append(row)
    return rows


def load_examples(path: Path, text_col: str, label_col: str, *, type_col: str | None = "type",
                  safeguarding_col: str | None = "safeguarding",
                  subject_col: str | None = None) -> list[Example]:
    """Examples from ``path``; a missing text or label column is an operator error naming it."""
    rows = read_rows(path)
    for col in (text_col, label_col, *([subject_col] if subject_col else [])):
        if not any(col in row for row in rows):
            available = ", ".join(sorted({k for row in rows[:50] for k in row} - {FILE_KEY}))
            raise OperatorError(f"{path} has no column {col!r} (columns: {available})")
    examples = []
    skipped = 0
    for row in rows:
        text, label = row.get(text_col), row.get(label_col)
        # a number, true/false or an object in the text field is a broken row, not an enquiry
        if not isinstance(text, str) or label is None or not text.strip() or not str(label).strip():
            skipped += 1
            continue
        subject = row.get(subject_col) if subject_col else None
        kind = row.get(type_col) if type_col else None
        flag = row.get(safeguarding_col) if safeguarding_col else None
        examples.append(Example(
            text=prepare(str(subject) if subject else None, text),
            label=str(label).strip(),
            kind=str(kind).strip() if kind else None,
            safeguarding=_truthy(flag) if flag is not None and flag != "" else None,
            source=_source(row, str(label).strip()),
        ))
    if not examples:
        raise OperatorError(f"{path}: no row has both a {text_col!r} string and a {label_col!r} value")
    if skipped:
        log.warning("%s: skipped %d of %d rows without both a %r string and a %r value", path, skipped,
                    len(rows), text_col, label_col)
    return examples


def _source(row: dict[str, str], label: str) -> str:
    stem = str(row.get(FILE_KEY, ""))
    stem = stem[len(label):].lstrip("-_") or "main" if stem.startswith(label) else stem
    extra = next((str(row[c]) for c in SOURCE_COLUMNS if row.get(c)), "")
    return f"{stem}/{extra}" if extra else stem


def _truthy(value: object) -> bool:
    return value is True or str(value).strip().lower() in {"1", "true", "yes", "y", "t"}


def stable_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split(examples: Sequence[Example], test: float = 0.15, dev: float = 0.10,
          by_source: bool = False) -> Split:
    """Stratified by label, ordered by a hash of the text: the same data always splits the same
    way. Repeated texts are kept once, so none is on both sides.

    ``by_source``: the dev part is made of whole sources (files, registers) instead of random
    rows, when the data has at least three: what is chosen on dev (hyper-parameters, calibration,
    thresholds) is then chosen on writing unlike the training part, as real enquiries will be.
    The test part stays random rows, comparable with earlier figures."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    seen: set[str] = set()
    for e in examples:
        if e.text not in seen:
            seen.add(e.text)
            by_label[e.label].append(e)
    train_part: list[Example] = []
    dev_part: list[Example] = []
    test_part: list[Example] = []
    for label in sorted(by_label):
        items = sorted(by_label[label], key=lambda e: stable_key(e.text))
        n = len(items)
        n_test = round(n * test) if n >= 5 else 0
        n_dev = round(n * dev) if n >= 5 else 0
        test_part += items[:n_test]
        dev_part += items[n_test:n_test + n_dev]
        train_part += items[n_test + n_dev:]
    if by_source:
        rest = dev_part + train_part
        held = _held_out_sources(rest, dev)
        if held:
            return Split([e for e in rest if e.source not in held], [e for e in rest if e.source in held],
                         test_part)
    return Split(train_part, dev_part, test_part)


def _held_out_sources(rows: list[Example], share: float) -> set[str]:
    """Whole sources for a dev part of about ``share`` of ``rows`` (never more than twice that),
    leaving every label at least half of its rows to train on; empty when there are too few."""
    sizes: dict[str, int] = defaultdict(int)
    per_label: dict[str, int] = defaultdict(int)
    for e in rows:
        sizes[e.source] += 1
        per_label[e.label] += 1
    if len(sizes) < 3:
        return set()
    held: set[str] = set()
    taken: dict[str, int] = defaultdict(int)
    total = 0
    for source in sorted(sizes, key=stable_key):
        if total >= share * len(rows):
            break
        if total + sizes[source] > 2 * share * len(rows):
            continue
        counts: dict[str, int] = defaultdict(int)
        for e in rows:
            if e.source == source:
                counts[e.label] += 1
        if all(taken[lab] + n <= per_label[lab] / 2 for lab, n in counts.items()):
            held.add(source)
            total += sizes[source]
            for lab, n in counts.items():
                taken[lab] += n
    return held if total >= share * len(rows) / 2 else set()


def data_sha256(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for file in paths:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
