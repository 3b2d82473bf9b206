"""``frontdoor import-calls``: a file it cannot trust is refused whole, in one line, before Kafka.

These run with no broker (``127.0.0.1:1``): file mistakes must be reported without one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.call_notes import CallRow, CsvFormatError
from tests.conftest import frontdoor
from web.call_import import check_quoting, load_calls

HEADER = "call_id,caller_name,summary,notes\n"


def run(tmp_path: Path, target: str, *, upgrade: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path), "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "FRONTDOOR_CONNECT_RETRIES": "1", "FRONTDOOR_DATABASE_URL": f"sqlite:///{tmp_path / 'fd.db'}"}
    if upgrade:  # the references come from the tickets database's allocator
        frontdoor("db", "upgrade", env=env, timeout=60)
    return frontdoor("import-calls", target, env=env, check=False, timeout=60)


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line an operator sees for a refused file."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Kafka" not in result.stderr
    assert result.stdout == ""  # no totals: nothing was imported
    [line] = result.stderr.splitlines()
    return line


@pytest.mark.parametrize(("body", "says"), [
    # the notes field opens a quote and never closes it: Bob, Cy and Di must not become Ann's note
    ('1,Ann,bin,"missed\n2,Bob,bin,ok\n3,Cy,bin,ok\n4,Di,bin,ok\n',
     "line 2: a quote opens here and never closes, so lines 3-5 would become part of this row; "
     "nothing was imported"),
    ('1,Ann,bin,ok\n2,Bob,bin,"a ""quoted"" word"\n3,Cy,bin,"two\nlines"\n4,Di,bin,"oops',
     "line 6: a quote opens here and never closes; nothing was imported"),
    # a later quote "closes" it: the lenient reader would still fold lines 3-4 into Ann's note
    ('1,Ann,bin,"missed\n2,Bob,bin,ok\n3,Cy,bin,"fine"\n4,Di,bin,ok\n',
     "line 2: a quote opens here and closes only on line 4, with text after it; nothing was imported"),
    ('1,Ann,bin,ok\n2,Bob,bin,"said "hi" there"\n',
     'line 3: text follows a closing quote (write "" for a quote inside quotes); nothing was imported'),
])
def test_broken_quoting_refuses_the_whole_file_naming_the_line(tmp_path: Path, body: str, says: str) -> None:
    export = tmp_path / "calls.csv"
    export.write_text(HEADER + body, encoding="utf-8")
    line = refused(run(tmp_path, str(export)))
    assert line.startswith(f"frontdoor: {export}: ") and says in line
    assert line.endswith("fix the file and run import-calls again")


@pytest.mark.parametrize(("name", "content", "says"), [
    ("empty.csv", b"", "the file is empty"),
    ("blank.csv", b"\r\n\n", "the file is empty"),
    ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
     "not a call export: the file has NUL bytes"),
    ("latin.csv", b"summary,notes\n\x81\x8d\n", "neither UTF-8 nor Windows-1252"),
    ("wrong.csv", b"name,comment\nJo,hello\n", "the header lacks summary, notes"),
    ("names.csv", b"summary,notes\nBins,Missed\n", "the header lacks one of caller_name, caller_phone"),
])
def test_a_file_that_is_not_an_export_is_refused_without_the_broker(tmp_path: Path, name: str, content: bytes,
                                                                    says: str) -> None:
    export = tmp_path / name
    export.write_bytes(content)
    assert says in refused(run(tmp_path, str(export)))


@pytest.mark.parametrize(("target", "says"), [
    ("{tmp}", "{tmp}: is a directory: name the CSV file itself"),
    ("/dev/null", "/dev/null: the file is empty"),
    ("{tmp}/nope.csv", "{tmp}/nope.csv: no such file"),
])
def test_the_path_itself_is_named_for_what_it_is(tmp_path: Path, target: str, says: str) -> None:
    line = refused(run(tmp_path, target.format(tmp=tmp_path)))
    assert says.format(tmp=tmp_path) in line


def test_a_good_file_is_read_whole_before_anything_is_published(tmp_path: Path) -> None:
    export = tmp_path / "calls.csv"
    export.write_text(HEADER + '1,Ann,bin,"missed,\nagain ""twice"""\r\n\r\n2,Bob,bin,ok\n', encoding="utf-8")
    rows = load_calls(export).rows
    assert [(r.line, r.note.note) for r in rows if isinstance(r, CallRow)] == [
        (2, 'missed,\nagain "twice"'), (5, "ok")]
    # with the file good, the rows are taken (committed to the intake outbox) even with the broker
    # away: exit 0, and the operator is told they wait for it; importing again adds nothing
    not_migrated = run(tmp_path, str(export))
    assert not_migrated.returncode == 2 and "frontdoor db upgrade" in not_migrated.stderr
    result = run(tmp_path, str(export), upgrade=True)
    assert result.returncode == 0, result.stderr
    assert "2 messages wait for the broker" in result.stderr
    assert json.loads(result.stdout) == {"file": str(export), "ingested": 2, "already_imported": 0,
                                         "rejected": 0, "waiting_for_broker": 2}
    again = json.loads(run(tmp_path, str(export)).stdout)
    assert (again["ingested"], again["already_imported"], again["waiting_for_broker"]) == (0, 2, 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet='ab ,"\r\n\u00e9', max_size=12), min_size=1, max_size=4),
                min_size=1, max_size=6),
       st.booleans())
def test_whatever_a_csv_writer_writes_passes_the_quote_check(rows: list[list[str]], quote_all: bool) -> None:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(rows)
    check_quoting(out.getvalue())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='a,"\r\n', max_size=40))
def test_any_text_is_passed_or_refused_with_a_line_in_the_file(text: str) -> None:
    try:
        check_quoting(text)
    except CsvFormatError as exc:
        line = int(str(exc).split(":")[0].removeprefix("line "))
        assert 1 <= line <= max(1, len(io.StringIO(text, newline="").readlines()))
        return
    list(csv.reader(io.StringIO(text, newline=""), strict=True))  # what passed, a strict reader reads
