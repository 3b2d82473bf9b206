"""Department mailboxes over IMAP → ``frontdoor.inbound``, nothing lost and nothing read twice.

Each poll cycle fetches new messages (UID above the durable position) from every mailbox,
parses them, groups copies of one email (same dedupe key) across mailboxes into one
message listing every mailbox, publishes it, and only after ``publish()`` returned (Kafka's
ack) moves or flags the copies and advances each mailbox's position. Between cycles it
waits in IMAP IDLE where every mailbox offers it, else it sleeps the poll interval; IDLE is
only a wake-up hint, correctness never depends on it.

Crash windows:
- after the ack, before the seen-table write: the email is read again and published again
  with the same dedupe key; downstream sinks are idempotent on it.
- after the seen-table write, before the move: the email is read again, found in the seen
  table and only moved.
- UIDVALIDITY changed: the mailbox is rescanned from UID 1; the seen table (and the dedupe
  keys downstream) make that harmless.
"""

from __future__ import annotations

import imaplib
import logging
import os
import select
import socket
import ssl
import threading
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from connectors.base import Publisher, PublishError
from connectors.email_parser import EmailParseError, parse_email
from connectors.email_state import ImapStateStore
from schemas.blobs import BlobStore, BlobStoreError
from schemas.inbound import InboundMessage

log = logging.getLogger(__name__)

# served on 'frontdoor imap's metrics port (FRONTDOOR_IMAP_METRICS_PORT) beside frontdoor_imap_up
MAILS = Counter("frontdoor_imap_mails_total", "Mails taken from a mailbox, by outcome (published: on the "
                "stream after Kafka's ack; copy: already published from another mailbox or before a "
                "restart, only moved; failed: cannot become a message, moved to the error folder)",
                ["mailbox", "outcome"])
CONNECTION_LOST = Counter("frontdoor_imap_connection_errors_total",
                          "Connections to a mailbox lost or refused (each followed by a reconnect "
                          "with backoff)",
                          ["mailbox"])

_CONNECTION_ERRORS = (IMAPClientError, imaplib.IMAP4.error, OSError, ssl.SSLError, socket.timeout, EOFError)


class ImapConfigError(ValueError):
    """The IMAP configuration file is missing or wrong; the message says what to fix."""


class MailboxConfig(BaseModel):
    """One department mailbox. ``name`` is what ``source.mailboxes`` lists (use its address)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    host: str
    port: int | None = None
    tls: bool = True  # implicit TLS (IMAPS, port 993)
    starttls: bool = False  # plain connection upgraded with STARTTLS (port 143)
    user: str
    password: SecretStr | None = None
    password_env: str | None = None  # read the password from this environment variable
    oauth2_token: SecretStr | None = None  # XOAUTH2 bearer token
    oauth2_token_env: str | None = None
    # Read again at every login: a token refresher rewrites it (atomically) before the
    # provider's hour-long tokens expire, and the poller picks the new one up on reconnect.
    oauth2_token_file: Path | None = None
    folder: str = "INBOX"
    department: str | None = None  # department_hint on every message from this mailbox
    after: Literal["move", "flag"] = "move"
    move_to: str = "Frontdoor/Processed"
    flag: str = "$FrontdoorIngested"
    error_folder: str = "Frontdoor/Failed"  # mail that cannot become a message goes here
    timeout_s: float = 30.0

    @model_validator(mode="after")
    def _credentials(self) -> MailboxConfig:
        if not (self.password or self.password_env or self.oauth2_token or self.oauth2_token_env
                or self.oauth2_token_file):
            raise ValueError(f"mailbox {self.name!r} needs password, password_env, oauth2_token, "
                             "oauth2_token_env or oauth2_token_file")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.tls else 143)

    @property
    def state_key(self) -> str:
        return f"{self.name}|{self.user}@{self.host}:{self.effective_port}/{self.folder}"

    def secret(self) -> tuple[Literal["password", "oauth2"], str]:
        def env(name: str) -> str:
            value = os.environ.get(name)
            if not value:
                raise ImapConfigError(f"mailbox {self.name!r}: environment variable {name} is not set")
            return value

        if self.oauth2_token:
            return "oauth2", self.oauth2_token.get_secret_value()
        if self.oauth2_token_env:
            return "oauth2", env(self.oauth2_token_env)
        if self.oauth2_token_file:
            try:
                token = self.oauth2_token_file.read_text("utf-8").strip()
            except OSError as exc:
                raise ImapConfigError(f"mailbox {self.name!r}: cannot read oauth2_token_file "
                                      f"{self.oauth2_token_file}: {exc.strerror}") from None
            if not token:
                raise ImapConfigError(f"mailbox {self.name!r}: oauth2_token_file {self.oauth2_token_file} "
                                      "is empty")
            return "oauth2", token
        if self.password:
            return "password", self.password.get_secret_value()
        return "password", env(self.password_env or "")


class ImapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    poll_seconds: float = Field(default=30.0, gt=0)  # between cycles when IDLE is not offered
    idle: bool = True
    idle_seconds: float = Field(default=300.0, gt=0)  # re-enter IDLE at least this often
    batch: int = Field(default=100, gt=0)  # messages per mailbox per cycle
    seen_retention_days: float = Field(default=30.0, gt=0)
    mailboxes: list[MailboxConfig]


def load_imap_config(path: Path | str) -> ImapConfig:
    """Read a TOML or JSON file; ``[defaults]`` apply to every ``[[mailboxes]]`` entry."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImapConfigError(f"cannot read IMAP config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ImapConfigError(f"IMAP config {path} is not text (not UTF-8): name the TOML or JSON file "
                              "listing the mailboxes") from None
    try:
        if path.suffix.lower() == ".json":
            import json

            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except ValueError as exc:
        raise ImapConfigError(f"IMAP config {path} is not valid {path.suffix or 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise ImapConfigError(f"IMAP config {path}: expected a table at the top level")
    defaults = data.pop("defaults", {}) or {}
    boxes = data.get("mailboxes") or []
    if not boxes:
        raise ImapConfigError(f"IMAP config {path} lists no [[mailboxes]]")
    data["mailboxes"] = [{**defaults, **box} for box in boxes]
    try:
        config = ImapConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ImapConfigError(f"IMAP config {path}: {where}: {first['msg']}") from None
    names = [b.name for b in config.mailboxes]
    if len(set(names)) != len(names):
        raise ImapConfigError(f"IMAP config {path}: mailbox names must be unique")
    return config


@dataclass
class _Fetched:
    box: _Mailbox
    uid: int
    message: InboundMessage | None = None
    error: EmailParseError | None = None


@dataclass
class _Group:
    message: InboundMessage
    items: list[_Fetched] = field(default_factory=list)


class _Mailbox:
    """One IMAP connection, its position, and its acknowledgements."""

    def __init__(self, config: MailboxConfig, state: ImapStateStore) -> None:
        self.config = config
        self.state = state
        self.client: IMAPClient | None = None
        self.capabilities: set[bytes] = set()
        self.uidvalidity = 0
        self.last_uid = 0
        self.retry_at = 0.0
        self.backoff = 0.0
        self._acked: set[int] = set()
        self._pending: list[int] = []

    @property
    def name(self) -> str:
        return self.config.name

    def connect(self) -> None:
        cfg = self.config
        context = ssl.create_default_context() if (cfg.tls or cfg.starttls) else None
        client = IMAPClient(cfg.host, port=cfg.effective_port, ssl=cfg.tls, ssl_context=context,
                            timeout=cfg.timeout_s)
        try:
            if cfg.starttls and not cfg.tls:
                client.starttls(context)
            kind, secret = cfg.secret()
            if kind == "oauth2":
                client.oauth2_login(cfg.user, secret)
            else:
                client.login(cfg.user, secret)
            self.capabilities = set(client.capabilities())
            for folder in {cfg.error_folder, *([cfg.move_to] if cfg.after == "move" else [])}:
                if not client.folder_exists(folder):
                    client.create_folder(folder)
            selected = client.select_folder(cfg.folder)
        except BaseException:
            _close(client)
            raise
        self.client = client
        uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        stored = self.state.position(cfg.state_key)
        if stored is None:
            self.uidvalidity, self.last_uid = uidvalidity, 0
        elif stored[0] != uidvalidity:
            log.warning("imap %s: UIDVALIDITY changed (%d → %d); rescanning the folder (dedupe keys "
                        "keep it from doubling anything)", self.name, stored[0], uidvalidity)
            self.uidvalidity, self.last_uid = uidvalidity, 0
        else:
            self.uidvalidity, self.last_uid = stored
        self.state.set_position(cfg.state_key, self.uidvalidity, self.last_uid)
        self.backoff = 0.0
        log.info("imap %s: connected to %s:%d, folder %s, resuming after UID %d",
                 self.name, cfg.host, cfg.effective_port, cfg.folder, self.last_uid)

    def drop(self, error: BaseException) -> None:
        """Forget the connection after an error and schedule a reconnect with backoff."""
        if self.client is not None:
            _close(self.client)
        self.client = None
        self.backoff = min(max(self.backoff * 2, 1.0), 60.0)
        self.retry_at = time.monotonic() + self.backoff
        CONNECTION_LOST.labels(self.name).inc()
        if isinstance(error, LoginError):
            log.warning("imap %s: login refused for %s (%s): check its password or token; "
                        "trying again in %.0f s", self.name, self.config.user, error, self.backoff)
            return
        log.warning("imap %s: connection lost (%s: %s); reconnecting in %.0f s",
                    self.name, error.__class__.__name__, error, self.backoff)

    def new_uids(self, limit: int) -> list[int]:
        assert self.client is not None  # noqa: S101 - callers connect first
        criteria: list[Any] = ["UID", f"{self.last_uid + 1}:*"]
        if self.config.after == "flag":
            criteria += _unflagged(self.config.flag)
        self.client.noop()  # let the server report what other sessions delivered meanwhile
        uids = sorted(u for u in self.client.search(criteria) if u > self.last_uid)
        self._pending = uids[:limit]
        self._acked = set()
        return self._pending

    def fetch(self, uid: int) -> tuple[bytes, datetime | None] | None:
        assert self.client is not None  # noqa: S101
        data = self.client.fetch([uid], ["BODY.PEEK[]", "INTERNALDATE"]).get(uid)
        if not data or b"BODY[]" not in data:
            return None  # expunged meanwhile by someone else
        when = data.get(b"INTERNALDATE")
        if isinstance(when, datetime):
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return bytes(data[b"BODY[]"]), when if isinstance(when, datetime) else None

    def acknowledge(self, uid: int, *, failed: bool = False) -> None:
        """Move or flag one message (after Kafka acknowledged it), then advance the position
        over every UID of this cycle acknowledged so far without a gap."""
        assert self.client is not None  # noqa: S101
        cfg = self.config
        if failed:
            self._move([uid], cfg.error_folder)
        elif cfg.after == "move":
            self._move([uid], cfg.move_to)
        else:
            self.client.add_flags([uid], [cfg.flag.encode()])
        self._acked.add(uid)
        position = self.last_uid
        for pending in self._pending:
            if pending not in self._acked:
                break
            position = pending
        if position != self.last_uid:
            self.last_uid = position
            self.state.set_position(cfg.state_key, self.uidvalidity, position)

    def mark_gone(self, uid: int) -> None:
        """A UID expunged by someone else between SEARCH and FETCH: nothing to acknowledge."""
        self._acked.add(uid)

    def _move(self, uids: list[int], folder: str) -> None:
        assert self.client is not None  # noqa: S101
        if b"MOVE" in self.capabilities:
            self.client.move(uids, folder)
            return
        self.client.copy(uids, folder)
        self.client.add_flags(uids, [b"\\Deleted"])
        if b"UIDPLUS" in self.capabilities:
            self.client.uid_expunge(uids)
        else:
            self.client.expunge()

    @property
    def can_idle(self) -> bool:
        return self.client is not None and b"IDLE" in self.capabilities


def _unflagged(flag: str) -> list[Any]:
    lowered = flag.lower()
    if lowered == "\\seen":
        return ["UNSEEN"]
    if lowered == "\\flagged":
        return ["UNFLAGGED"]
    return ["UNKEYWORD", flag]


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection is already broken; just let it go
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001, S110
            pass


class ImapPoller:
    """The :class:`connectors.base.Connector` for every configured department mailbox."""

    def __init__(self, config: ImapConfig, publisher: Publisher, blobs: BlobStore,
                 state: ImapStateStore) -> None:
        self.config = config
        self.publisher = publisher
        self.blobs = blobs
        self.state = state
        self.boxes = [_Mailbox(box, state) for box in config.mailboxes]
        self._stop = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        """Poll until :meth:`stop`; a broker outage pauses ingest, it never loses mail."""
        pruned_at = 0.0
        while not self._stop.is_set():
            if time.monotonic() - pruned_at > 3600:
                self.state.forget_older_than(self.config.seen_retention_days * 86400)
                pruned_at = time.monotonic()
            try:
                self.poll_once()
            except PublishError as exc:
                log.warning("imap: Kafka did not take a message (%s); leaving it in its mailbox "
                            "and retrying in %.0f s", exc, self.config.poll_seconds)
                self._stop.wait(self.config.poll_seconds)
                continue
            except BlobStoreError as exc:
                log.error("imap: the blob store cannot take mail (%s); leaving it in its mailbox "
                          "and retrying in %.0f s", exc, self.config.poll_seconds)
                self._stop.wait(self.config.poll_seconds)
                continue
            self.wait_for_mail()
        self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        for box in self.boxes:
            if box.client is not None:
                _close(box.client)
                box.client = None

    # -- one cycle -------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Fetch, group, publish and acknowledge what is new in every mailbox. Returns the
        number of messages published. Raises :class:`PublishError` when Kafka is away and
        :class:`BlobStoreError` when the blob store cannot write (nothing unpublished was
        acknowledged in either case)."""
        fetched = self._fetch_all()
        groups: dict[str, _Group] = {}
        for item in fetched:
            if item.error is not None:
                self._ack(item, failed=True)
                MAILS.labels(item.box.name, "failed").inc()
            elif item.message is not None:
                groups.setdefault(item.message.dedupe_key, _Group(item.message)).items.append(item)
        published = 0
        for group in groups.values():
            outcome = "copy"
            if self._publish(group):
                outcome = "published"
                published += 1
            for item in group.items:
                self._ack(item)
                MAILS.labels(item.box.name, outcome).inc()
        return published

    def _fetch_all(self) -> list[_Fetched]:
        fetched: list[_Fetched] = []
        for box in self.boxes:
            if self._stop.is_set():
                break
            if box.client is None:
                if time.monotonic() < box.retry_at:
                    continue
                try:
                    box.connect()
                except ImapConfigError:
                    raise
                except _CONNECTION_ERRORS as exc:
                    box.drop(exc)
                    continue
            try:
                for uid in box.new_uids(self.config.batch):
                    got = box.fetch(uid)
                    if got is None:
                        box.mark_gone(uid)
                        continue
                    fetched.append(self._parse(box, uid, *got))
            except BlobStoreError:
                raise  # not the connection: nothing fetched this cycle is acknowledged
            except _CONNECTION_ERRORS as exc:
                box.drop(exc)
                fetched = [f for f in fetched if f.box is not box]
        return fetched

    def _parse(self, box: _Mailbox, uid: int, raw: bytes, when: datetime | None) -> _Fetched:
        try:
            message = parse_email(raw, blobs=self.blobs, mailbox=box.name,
                                  department_hint=box.config.department, received_at=when)
        except BlobStoreError:
            raise
        except OSError as exc:  # a store that does not wrap its own errors
            raise BlobStoreError(exc.errno, str(exc)) from exc
        except EmailParseError as exc:
            ref = self.blobs.put(raw, "message/rfc822")
            log.warning("imap %s: UID %d cannot become a message (%s); moving it to %s "
                        "(raw kept as blob %s)", box.name, uid, exc, box.config.error_folder, ref.sha256)
            return _Fetched(box, uid, error=exc)
        return _Fetched(box, uid, message=message)

    def _publish(self, group: _Group) -> bool:
        """Publish one email (all its copies); False when it was already on the stream."""
        message = group.message
        boxes = list(dict.fromkeys(b for item in group.items if item.message is not None
                                   for b in item.message.source.mailboxes))
        hints = {item.box.config.department for item in group.items}
        seen = self.state.seen(message.dedupe_key)
        if seen is not None:
            if set(boxes) <= set(seen.mailboxes):
                log.info("imap: %s already published; acknowledging only", message.dedupe_key)
                return False
            # A later copy in another department mailbox: same id and dedupe key, longer list.
            boxes = list(dict.fromkeys([*seen.mailboxes, *boxes]))
            message = message.model_copy(update={"id": seen.message_id})
            hints = {None}
        source = message.source.model_copy(update={
            "mailboxes": boxes,
            "department_hint": hints.pop() if len(hints) == 1 else None,
        })
        message = message.model_copy(update={"source": source})
        self.publisher.publish(message)
        self.state.remember(message.dedupe_key, message.id, boxes)
        return True

    def _ack(self, item: _Fetched, *, failed: bool = False) -> None:
        box = item.box
        if box.client is None:
            return  # lost meanwhile: the message is read again after reconnecting
        try:
            box.acknowledge(item.uid, failed=failed)
        except _CONNECTION_ERRORS as exc:
            box.drop(exc)

    # -- between cycles --------------------------------------------------------------------

    def wait_for_mail(self) -> None:
        """IDLE on every connection that offers it until one has news, the interval passes
        or :meth:`stop` is called; plain sleep where IDLE is not offered."""
        connected = [b for b in self.boxes if b.client is not None]
        idling = [b for b in connected if self.config.idle and b.can_idle]
        everyone_idles = len(idling) == len(self.boxes)
        timeout = self.config.idle_seconds if everyone_idles else self.config.poll_seconds
        waiting = [b for b in self.boxes if b.client is None]
        if waiting:
            timeout = min(timeout, max(0.1, min(b.retry_at for b in waiting) - time.monotonic()))
        started: list[_Mailbox] = []
        for box in idling:
            try:
                assert box.client is not None  # noqa: S101
                box.client.idle()
                started.append(box)
            except _CONNECTION_ERRORS as exc:
                box.drop(exc)
        deadline = time.monotonic() + timeout
        try:
            while not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sockets = [b.client.socket() for b in started if b.client is not None]
                if sockets:
                    readable, _, _ = select.select(sockets, [], [], min(remaining, 1.0))
                    if readable:
                        break
                else:
                    self._stop.wait(min(remaining, 1.0))
        finally:
            for box in started:
                if box.client is None:
                    continue
                try:
                    box.client.idle_done()
                except _CONNECTION_ERRORS as exc:
                    box.drop(exc)

