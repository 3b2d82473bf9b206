"""Training from a real Dovecot mailbox whose folders map to departments."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import frontdoor
from tests.dovecot import PASSWORD, DovecotServer, dovecot_available

from .conftest import TINY

pytestmark = [pytest.mark.imap, pytest.mark.skipif(dovecot_available() is not None,
                                                   reason=str(dovecot_available()))]
FOLDERS = {"Bins": "waste", "Roads": "highways", "Parking": "parking"}


def _mail(number: int, text: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"resident{number}@example.com"
    message["To"] = "enquiries@council.example.gov.uk"
    message["Subject"] = "Enquiry"
    message["Message-ID"] = f"<{number}@example.com>"
    message.set_content(f"{text}\n\nThanks\n-- \nA Resident\n07700 900{number:03d}\n")
    return message.as_bytes()


def test_train_from_imap_folders(tmp_path: Path, cli_env: dict[str, str]) -> None:
    with DovecotServer(users=["officer"]) as server:
        n = 0
        for folder, department in FOLDERS.items():
            for text in TINY[department]:
                n += 1
                server.append("officer", _mail(n, text), folder=folder)
        env = {**cli_env, "FRONTDOOR_IMAP_PASSWORD": PASSWORD}
        args = ["train-imap", "--imap-host", server.host, "--imap-port", str(server.port), "--no-tls",
                "--imap-user", "officer", "--out", str(tmp_path / "model")]
        for folder, department in FOLDERS.items():
            args += ["--folder-map", f"{folder}={department}"]
        done = frontdoor(*args, env=env)
        assert "Bins → waste: 12 messages" in done.stderr
        client = server.client("officer")
        client.select_folder("Bins", readonly=True)
        assert client.search(["UNSEEN"])  # read without marking anything seen
        client.logout()
    shown = json.loads(frontdoor("classify", "--model", str(tmp_path / "model"),
                                 "the bin lorry missed my recycling", env=cli_env).stdout)
    assert shown["department"] == "waste"


def test_missing_password_is_one_line(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k != "FRONTDOOR_IMAP_PASSWORD"}
    done = frontdoor("train-imap", "--imap-host", "127.0.0.1", "--imap-user", "x", "--folder-map", "A=waste",
                     env=env, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "frontdoor: set FRONTDOOR_IMAP_PASSWORD to the IMAP password (never given on the command line)"]
