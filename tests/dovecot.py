"""A throw-away Dovecot IMAP server on a loopback port, for tests (Debian's dovecot-imapd).

Usage::

    with DovecotServer(users=["waste", "housing"]) as server:
        server.append("waste", raw_bytes)            # deliver a message over IMAP
        server.client("waste")                       # a logged-in IMAPClient
        server.mailbox_config("waste", department="waste")   # a dict for an ImapConfig entry
        token = server.issue_token("waste")          # an OAuth2 access token for XOAUTH2
        server.mailbox_config("waste", oauth2_token=token)   # ... logging in with it
        server.revoke_token(token)                   # the identity provider withdraws it

Passwords (``LOGIN``, ``AUTHENTICATE PLAIN``) are checked against a passwd-file; OAuth2
bearer tokens (``AUTHENTICATE XOAUTH2`` / ``OAUTHBEARER``) by Dovecot's oauth2 passdb, which
asks a token-introspection endpoint (RFC 7662, ``introspection_mode = post``) served by
:class:`IdentityProvider` in a thread of the test process. Each passdb handles only its own
mechanisms, so a password is never accepted as a token or a token as a password.

Runs as root the way Dovecot allows it: logins as ``dovenull``, mail as ``dovecot``
(``first_valid_uid = 1``), everything under its own temporary directory, stopped with
``doveadm -c CONF stop`` (never by name).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

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
auth_mechanisms = plain login xoauth2 oauthbearer
auth_verbose = yes
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
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
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
  # no per-IP auth penalty: every test logs in from 127.0.0.1, and one failed login
  # (a revoked token, say) must not slow the next ones down by up to 15 s
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
}}
"""

# Dovecot 2.3's oauth2 passdb (PasswordDatabase.oauth2 in dovecot-core's docs): POST
# token=<token> to the introspection endpoint; the answer must carry active=true and the
# login's user name in "username" (compared after username_format, %Lu by default).
OAUTH2_CONFIG = """\
introspection_url = http://127.0.0.1:{port}/introspect
introspection_mode = post
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


class IdentityProvider:
    """A minimal OAuth2 authorization server: only the token-introspection endpoint
    (RFC 7662) Dovecot calls. It stands in for the real identity provider (Microsoft 365,
    Google Workspace ...), which cannot run in a test; what Dovecot and the poller do with
    its answers is the real thing. Tokens are opaque random strings it issued itself."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}  # token -> username
        self._lock = threading.Lock()
        self.introspected: list[str] = []  # every token Dovecot asked about, in order
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("ascii", "replace"))
                token = (form.get("token") or [""])[0]
                if self.path != "/introspect":
                    self.send_error(404)
                    return
                answer = provider.introspect(token)
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-idp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def issue(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = user
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            self.introspected.append(token)
            user = self._tokens.get(token)
        if user is None:
            return {"active": False}  # RFC 7662: unknown, expired or revoked
        return {"active": True, "username": user, "token_type": "Bearer", "scope": "imap"}


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
        self.idp = IdentityProvider()

    def start(self) -> DovecotServer:
        (self.root / "mail").mkdir()
        shutil.chown(self.root / "mail", "dovecot", "dovecot")
        (self.root / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{PASSWORD}::::::\n" for user in self.users)
        )
        self.idp.start()
        (self.root / "dovecot-oauth2.conf.ext").write_text(OAUTH2_CONFIG.format(port=self.idp.port))
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
        self.idp.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def issue_token(self, user: str) -> str:
        """A fresh OAuth2 access token for ``user``, valid until :meth:`revoke_token`."""
        return self.idp.issue(user)

    def revoke_token(self, token: str) -> None:
        self.idp.revoke(token)

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
        """One ``[[mailboxes]]`` entry of an IMAP config for this server's user. With
        ``oauth2_token=...`` (or ``oauth2_token_env=...``) the entry has no password."""
        entry: dict[str, Any] = {
            "name": f"{user}@council.example.gov.uk",
            "host": self.host,
            "port": self.port,
            "tls": False,
            "user": user,
        }
        if not {"oauth2_token", "oauth2_token_env", "password_env"} & overrides.keys():
            entry["password"] = PASSWORD
        return {**entry, **overrides}
