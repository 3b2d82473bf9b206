"""A throw-away Dovecot IMAP server on a loopback port, for tests (Debian's dovecot-imapd).

Usage::

    with DovecotServer(users=["waste", "housing"]) as server:
        server.append("waste", raw_bytes)            # deliver a message over IMAP
        server.client("waste")                       # a logged-in IMAPClient
        server.mailbox_config("waste", department="waste")   # a dict for an ImapConfig entry

Runs as root the way Dovecot allows it: logins as ``dovenull``, mail as ``dovecot``
(``first_valid_uid = 1``), everything under its own temporary directory, stopped with
``doveadm -c CONF stop`` (never by name).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from imapclient import IMAPClient

PASSWORD = "secret-pw"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def dovecot_available() -> str | None:
    """Why Dovecot cannot run here, or None when it can."""
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        return "Dovecot is not installed (apt-get install dovecot-imapd)"
    if os.geteuid() != 0:
        return "the Dovecot fixture runs as root (it switches to dovecot/dovenull itself)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DovecotServer:
    def __init__(self, users: list[str]) -> None:
        self.users = list(users)
        self.root = Path(tempfile.mkdtemp(prefix="frontdoor-dovecot-"))
        self.root.chmod(0o755)  # dovecot and dovenull must reach their directories
        self.port = _free_port()
        self.config_path = self.root / "dovecot.conf"
        self.host = "127.0.0.1"

    def start(self) -> DovecotServer:
        (self.root / "mail").mkdir()
        shutil.chown(self.root / "mail", "dovecot", "dovecot")
        (self.root / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{PASSWORD}::::::\n" for user in self.users)
        )
        self.config_path.write_text(CONFIG.format(root=self.root, port=self.port))
        # dovecot daemonises but keeps inherited descriptors: give it none of ours.
        subprocess.run(
            ["dovecot", "-c", str(self.config_path)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=30,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not answer on port {self.port}: {self.log()[-2000:]}")

    def stop(self) -> None:
        subprocess.run(
            ["doveadm", "-c", str(self.config_path), "stop"], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=30,
        )
        pid_file = self.root / "run" / "master.pid"
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, user: str) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)
        finally:
            client.logout()

    def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(client.search(["ALL"]))
        finally:
            client.logout()

    def count(self, user: str, folder: str = "INBOX") -> int:
        return len(self.uids(user, folder))

    def mailbox_config(self, user: str, **overrides: Any) -> dict[str, Any]:
        """One ``[[mailboxes]]`` entry of an IMAP config for this server's user."""
        return {
            "name": f"{user}@council.example.gov.uk",
            "host": self.host,
            "port": self.port,
            "tls": False,
            "user": user,
            "password": PASSWORD,
            **overrides,
        }
