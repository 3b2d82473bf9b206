"""``frontdoor web`` with a bad database setting says so in one line instead of a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import frontdoor


@pytest.mark.parametrize(("url", "says"), [
    ("nonsense://x", "is not a database URL SQLAlchemy can use"),
    ("postgresql+psycopg://fd:secret@127.0.0.1:1/fd", "cannot open the database"),
])
def test_a_bad_database_url_is_one_line(tmp_path: Path, url: str, says: str) -> None:
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path), "FRONTDOOR_DATABASE_URL": url,
           "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1", "FRONTDOOR_CONNECT_RETRIES": "1"}
    result = frontdoor("web", "--port", "1", env=env, check=False, timeout=60)
    assert result.returncode == 2
    assert says in result.stderr and "Traceback" not in result.stderr
    assert "secret" not in result.stderr  # passwords never reach the log
