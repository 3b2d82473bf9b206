"""Reading a council's export: broken rows are reported, never used as enquiries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.dataset import load_examples
from schemas.errors import OperatorError


def test_a_text_that_is_not_a_string_is_a_skipped_row(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "export.jsonl"
    rows = [{"text": 5, "department": "waste"}, {"text": True, "department": "waste"},
            {"text": {"body": "bins"}, "department": "waste"}, {"text": ["bins"], "department": "waste"},
            {"text": "my bin was missed", "department": "waste"}]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with caplog.at_level("WARNING", logger="classifiers.dataset"):
        examples = load_examples(data, "text", "department")
    assert [e.text for e in examples] == ["my bin was missed"]
    assert "skipped 4 of 5 rows" in caplog.text


def test_a_missing_subject_column_is_named(tmp_path: Path) -> None:
    data = tmp_path / "export.csv"
    data.write_text("text,department\nmy bin was missed,waste\n")
    with pytest.raises(OperatorError, match="has no column 'nosuch'"):
        load_examples(data, "text", "department", subject_col="nosuch")
