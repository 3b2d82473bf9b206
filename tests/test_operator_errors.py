"""Operator mistakes in settings and start-up files: one line naming what to fix, exit 2.

No broker is needed: every mistake here is found before Kafka is asked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from frontdoor.settings import Settings
from tests.conftest import frontdoor


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path), "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "FRONTDOOR_CONNECT_RETRIES": "1", **extra}


def _one_line(result: subprocess.CompletedProcess[str], *says: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for part in says:
        assert part in lines[0]
    return lines[0]


@pytest.mark.parametrize(("variable", "value"), [
    ("FRONTDOOR_MAX_RECORD_BYTES", "-1"),
    ("FRONTDOOR_MAX_RECORD_BYTES", "100"),  # a record without its body would not fit
    ("FRONTDOOR_SMTP_MAX_BYTES", "-1"),
    ("FRONTDOOR_UPLOAD_MAX_FILES", "-1"),
    ("FRONTDOOR_UPLOAD_MAX_BYTES", "-1"),
    ("FRONTDOOR_FORM_RATE_LIMIT", "-5"),
    ("FRONTDOOR_FORM_RATE_WINDOW_S", "0"),
    ("FRONTDOOR_KAFKA_PORT", "65535"),  # the controller needs the next port
    ("FRONTDOOR_KAFKA_HEAP", "lots"),
    ("FRONTDOOR_SMTP_DOMAINS", ",,,"),
    ("FRONTDOOR_WEB_PORT", "99999"),
])
def test_nonsense_settings_are_named_by_their_variable(tmp_path: Path, variable: str, value: str) -> None:
    result = frontdoor("kafka", "status", env=_env(tmp_path, **{variable: value}), check=False)
    line = _one_line(result, f"bad configuration for {variable}:")
    assert variable.removeprefix("FRONTDOOR_").lower() + ":" not in line  # not the pydantic field


def test_the_defaults_are_valid_and_empty_means_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in os.environ if n.startswith("FRONTDOOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env
    settings = Settings()
    assert settings.smtp_domains == ["council.example.gov.uk"]
    monkeypatch.setenv("FRONTDOOR_IMAP_CONFIG", "")
    monkeypatch.setenv("FRONTDOOR_SMTP_DOMAINS", "")
    monkeypatch.setenv("FRONTDOOR_BLOB_DIR", "")
    settings = Settings()
    assert settings.imap_config is None and settings.blob_dir is None
    assert settings.smtp_domains == ["council.example.gov.uk"]


@pytest.mark.parametrize("command", [
    ["web"],
    ["parse-email", "/dev/null"],
    ["models", "use", "x"],
    ["train", "--data", "{data}"],
])
@pytest.mark.parametrize("where", ["file", "/dev/null", "under-a-file"])
def test_a_state_directory_that_is_not_a_directory_is_one_line(
    tmp_path: Path, command: list[str], where: str
) -> None:
    regular = tmp_path / "state"
    regular.write_text("not a directory\n")
    data = tmp_path / "enquiries.csv"
    data.write_text("text,department\nbins not collected,waste\n")
    if where == "under-a-file":
        variable, value = "FRONTDOOR_BLOB_DIR", str(regular / "blobs")
    else:
        variable, value = "FRONTDOOR_VAR_DIR", str(regular) if where == "file" else where
    env = _env(tmp_path, **{variable: value})
    result = frontdoor(*(arg.format(data=data) for arg in command), env=env, check=False, timeout=120)
    _one_line(result, f"bad configuration for {variable}:", value)


def test_a_dotenv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"FRONTDOOR_WEB_PORT=8000\nFRONTDOOR_PUBLIC_URL=http://caf\xe9.example\n")
    env = _env(tmp_path / "var")
    result = subprocess.run([sys.executable, "-m", "frontdoor", "kafka", "status"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    _one_line(result, str(tmp_path / ".env"), "not UTF-8")


def test_an_imap_config_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    png = tmp_path / "mailboxes.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd")
    result = frontdoor("imap", "--once", env=_env(tmp_path, FRONTDOOR_IMAP_CONFIG=str(png)), check=False)
    _one_line(result, str(png), "not text")


def test_an_empty_imap_config_is_unset(tmp_path: Path) -> None:
    result = frontdoor("imap", "--once", env=_env(tmp_path, FRONTDOOR_IMAP_CONFIG=""), check=False)
    line = _one_line(result, "FRONTDOOR_IMAP_CONFIG is not set")
    assert "Is a directory" not in line


@pytest.mark.parametrize("start", ["99999999d", "1000000000d", "99999999999999999999w", "1900-01-01"])
def test_replay_from_out_of_range_is_one_line(tmp_path: Path, start: str) -> None:
    result = frontdoor("replay", "--from", start, "--model", "x", env=_env(tmp_path), check=False)
    _one_line(result, "cannot read the time", start, "out of range")


@pytest.fixture(scope="module")
def pem_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    root = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",  # noqa: S607
                    "-subj", "/CN=localhost", "-keyout", str(root / "key.pem"),
                    "-out", str(root / "cert.pem")],
                   check=True, capture_output=True)
    return root / "cert.pem", root / "key.pem"


@pytest.mark.parametrize(("cert", "key", "says"), [
    ("junk", "key", "FRONTDOOR_SMTP_TLS_CERT={junk} holds no PEM certificate"),
    ("cert", "junk", "FRONTDOOR_SMTP_TLS_KEY={junk} holds no PEM private key"),
    ("key", "key", "FRONTDOOR_SMTP_TLS_CERT={key} holds no PEM certificate"),
    ("missing", "key", "cannot read FRONTDOOR_SMTP_TLS_CERT={missing}: No such file"),
    ("cert", "dir", "cannot read FRONTDOOR_SMTP_TLS_KEY={dir}: Is a directory"),
    ("cert", "other",
     "FRONTDOOR_SMTP_TLS_KEY={other} is not the private key of FRONTDOOR_SMTP_TLS_CERT={cert}"),
])
def test_bad_tls_files_are_named(tmp_path: Path, pem_pair: tuple[Path, Path], cert: str, key: str,
                                 says: str) -> None:
    files = {"cert": pem_pair[0], "key": pem_pair[1], "junk": tmp_path / "junk.pem",
             "missing": tmp_path / "missing.pem", "dir": tmp_path, "other": tmp_path / "other.pem"}
    files["junk"].write_text("not a certificate\n")
    if key == "other":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", str(files["other"])],  # noqa: S607
                       check=True, capture_output=True)
    env = _env(tmp_path, FRONTDOOR_SMTP_TLS_CERT=str(files[cert]), FRONTDOOR_SMTP_TLS_KEY=str(files[key]))
    result = frontdoor("smtp", env=env, check=False)
    _one_line(result, "cannot offer STARTTLS", says.format(**{k: str(v) for k, v in files.items()}))
    assert "PEM lib" not in result.stderr


def test_web_on_an_address_it_cannot_bind_is_one_line(tmp_path: Path) -> None:
    result = frontdoor("web", env=_env(tmp_path, FRONTDOOR_WEB_HOST="999.9.9.9"), check=False)
    _one_line(result, "cannot listen on 999.9.9.9:8000", "FRONTDOOR_WEB_HOST")


def test_web_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = frontdoor("web", env=_env(tmp_path, FRONTDOOR_WEB_PORT=str(port)), check=False)
    _one_line(result, f"cannot listen on 127.0.0.1:{port}: Address already in use", "FRONTDOOR_WEB_PORT")
    assert "Uvicorn" not in result.stderr and "uvicorn" not in result.stderr
