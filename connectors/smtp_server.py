"""Mail for the council's own domains over SMTP → ``frontdoor.inbound``.

The SMTP reply is the contract: ``250`` only after Kafka acknowledged the message, ``451``
when the broker is away or the blob store cannot write (disk full: the sending MTA keeps the
mail and retries), ``550`` for a
recipient in a domain we do not serve (no open relay), ``552`` above the size limit, ``554``
for mail that can never become a message. Parsing and the blocking ``publish()`` run in a
thread executor so one slow broker ack never stalls other sessions.

Memory is bounded whatever senders do: at most ``max_sessions`` connections at once (the
next one is told ``421`` and its MTA retries later); DATA is spooled to a temporary file
beyond :data:`SPOOL_BYTES` instead of aiosmtpd's list of lines (which held a 34 MiB mail
about three times over); and only one mail larger than that is read back and parsed at a
time, so the process grows by about one size limit however many large mails arrive.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from prometheus_client import Counter

from connectors.base import Publisher, PublishError
from connectors.email_parser import EmailParseError, parse_email
from schemas.blobs import BlobStore
from schemas.inbound import InboundMessage

log = logging.getLogger(__name__)

# served on 'frontdoor smtp's metrics port (FRONTDOOR_SMTP_METRICS_PORT) beside frontdoor_smtp_up
MAILS = Counter("frontdoor_smtp_mails_total", "Mails answered at DATA, by outcome "
                "(accepted: 250 after Kafka's ack; try_later: 451; rejected: 554; too_big: 552)", ["outcome"])

REPLY_OK = "250 2.0.0 OK: queued as {id}"
REPLY_RELAY = "550 5.7.1 Relaying denied: this server only accepts mail for {domains}"
REPLY_BAD_ADDRESS = "553 5.1.3 Recipient address not understood"
REPLY_TOO_BIG = "552 5.3.4 Message too big: the limit is {limit} bytes"
REPLY_TRY_LATER = "451 4.3.0 Temporarily unable to accept the message, please try again later"
REPLY_REJECT = "554 5.6.0 Message cannot be processed: {reason}"
REPLY_BUSY = b"421 4.3.2 Too many connections, please try again later\r\n"
SPOOL_BYTES = 1 << 20  # DATA beyond this goes to a temporary file, not memory
DEFAULT_MAX_SESSIONS = 16


class SmtpHandler:
    """aiosmtpd handler: accepts mail for ``domains`` and publishes one message per DATA,
    listing every department recipient of the transaction in ``source.mailboxes``."""

    def __init__(self, publisher: Publisher, blobs: BlobStore, domains: Iterable[str],
                 max_bytes: int) -> None:
        self.publisher = publisher
        self.blobs = blobs
        self.domains = {d.strip().lower() for d in domains if d.strip()}
        self.max_bytes = max_bytes
        self._large = threading.Lock()  # one large mail in memory at a time

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or not local:
            return REPLY_BAD_ADDRESS
        if domain.lower().rstrip(".") not in self.domains:
            log.info("smtp: refused relay to %s from %s", address, session.peer)
            return REPLY_RELAY.format(domains=", ".join(sorted(self.domains)))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        spool: IO[bytes] | None = getattr(envelope, "spool", None)
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        size = _size(spool) if spool is not None else len(raw)
        if size > self.max_bytes:
            MAILS.labels("too_big").inc()
            return REPLY_TOO_BIG.format(limit=self.max_bytes)
        loop = asyncio.get_running_loop()
        try:
            message = await loop.run_in_executor(None, self._parse_spooled, spool, raw, size,
                                                  envelope.mail_from, list(envelope.rcpt_tos))
        except EmailParseError as exc:
            log.warning("smtp: rejected mail from %s: %s", envelope.mail_from, exc)
            MAILS.labels("rejected").inc()
            return REPLY_REJECT.format(reason=exc.reason)
        except OSError as exc:  # the blob store: disk full or unwritable; the sender keeps the mail
            log.error("smtp: could not store mail from %s (%s); answered 451 so the sender retries",
                      envelope.mail_from, exc)
            MAILS.labels("try_later").inc()
            return REPLY_TRY_LATER
        except Exception:  # a bug must make the sender retry, not lose the mail
            log.exception("smtp: unexpected error parsing mail from %s", envelope.mail_from)
            MAILS.labels("try_later").inc()
            return REPLY_TRY_LATER
        try:
            await loop.run_in_executor(None, self.publisher.publish, message)
        except PublishError as exc:
            log.warning("smtp: Kafka did not take %s (%s); answered 451 so the sender retries",
                        message.dedupe_key, exc)
            MAILS.labels("try_later").inc()
            return REPLY_TRY_LATER
        except Exception:
            log.exception("smtp: unexpected error publishing %s", message.dedupe_key)
            MAILS.labels("try_later").inc()
            return REPLY_TRY_LATER
        log.info("smtp: accepted %s for %s", message.dedupe_key, ", ".join(message.source.mailboxes))
        MAILS.labels("accepted").inc()
        return REPLY_OK.format(id=message.id)

    def _parse_spooled(self, spool: IO[bytes] | None, raw: bytes, size: int, mail_from: str | None,
                       rcpt_tos: list[str]) -> InboundMessage:
        if spool is None:
            return self._parse(raw, mail_from, rcpt_tos)
        if size <= SPOOL_BYTES:
            spool.seek(0)
            return self._parse(spool.read(), mail_from, rcpt_tos)
        with self._large:  # read back only while no other large mail is in memory
            spool.seek(0)
            return self._parse(spool.read(), mail_from, rcpt_tos)

    def _parse(self, raw: bytes, mail_from: str | None, rcpt_tos: list[str]) -> InboundMessage:
        return parse_email(raw, blobs=self.blobs,
                           mailboxes=[r.strip().strip("<>").lower() for r in rcpt_tos],
                           envelope_from=(mail_from or "").strip("<>") or None)


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server context for STARTTLS when a certificate and key are configured."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("STARTTLS needs both FRONTDOOR_SMTP_TLS_CERT and FRONTDOOR_SMTP_TLS_KEY")
    for variable, path in (("FRONTDOOR_SMTP_TLS_CERT", cert), ("FRONTDOOR_SMTP_TLS_KEY", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {variable}={path}: {exc.strerror}") from None

    def _encrypted() -> str:
        raise ValueError(f"FRONTDOOR_SMTP_TLS_KEY={key} is encrypted: give the key without a passphrase")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key), password=_encrypted)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ValueError(f"FRONTDOOR_SMTP_TLS_KEY={key} is not the private key of "
                             f"FRONTDOOR_SMTP_TLS_CERT={cert}") from None
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=str(cert))
        except ssl.SSLError:
            raise ValueError(f"FRONTDOOR_SMTP_TLS_CERT={cert} holds no PEM certificate") from None
        raise ValueError(f"FRONTDOOR_SMTP_TLS_KEY={key} holds no PEM private key") from None
    return context


def _size(spool: IO[bytes]) -> int:
    spool.seek(0, 2)
    return spool.tell()


class _Sessions:
    """How many SMTP connections are open, against the cap (touched only on the event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


class _SpoolingSMTP(SMTP):
    """aiosmtpd's SMTP with a session cap and DATA spooled to a temporary file.

    ``smtp_DATA`` follows aiosmtpd 1.4's own (the same replies, dot-unstuffing, size and
    line-length rules) but writes each line to the spool instead of keeping a list of lines;
    the handler finds the spool as ``envelope.spool``.
    """

    def __init__(self, *args: Any, sessions: _Sessions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions = sessions
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._counted and self._original_transport is None:  # not a STARTTLS upgrade
            if self._sessions.open >= self._sessions.limit:
                log.warning("smtp: %d sessions open (FRONTDOOR_SMTP_MAX_SESSIONS); told %s to retry",
                            self._sessions.open, transport.get_extra_info("peername"))
                transport.write(REPLY_BUSY)  # type: ignore[attr-defined]
                transport.close()
                return
            self._sessions.open += 1
            self._counted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._counted:
            return  # refused at connection_made: aiosmtpd never set this session up
        self._counted = False
        self._sessions.open -= 1
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        return super().eof_received() if self._counted else None

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None  # noqa: S101 - aiosmtpd sets it at connection_made
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - the handler reads it
        try:
            await self._receive(spool)
        finally:
            spool.close()

    async def _receive(self, spool: IO[bytes]) -> None:
        assert self.envelope is not None  # noqa: S101
        limit = self.data_size_limit
        received = 0
        fragments: list[bytes] = []
        state = "ok"
        while self.transport is not None:
            try:
                line: bytes = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("smtp: connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:
                state = "too_long" if state == "ok" else state
                line = await self._reader.read(exc.consumed)
            if not fragments and line == b".\r\n":
                break
            received += len(line)
            if state == "ok" and limit and received > limit:
                state = "too_much"  # keep reading to the end, as RFC 5321 4.2.5 implies
            fragments.append(line)
            if line.endswith(b"\r\n"):
                if state == "ok":
                    whole = b"".join(fragments)
                    if len(whole) > self.line_length_limit:
                        state = "too_long"
                    else:
                        spool.write(whole[1:] if whole.startswith(b".") else whole)
                fragments.clear()
        if state != "ok":
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)" if state == "too_long"
                            else "552 Error: Too much mail data")
            self._set_post_data_state()
            return
        self.envelope.original_content = None
        self.envelope.content = None
        self.envelope.spool = spool  # type: ignore[attr-defined]
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)


class _Controller(Controller):
    def __init__(self, *args: Any, sessions: _Sessions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions = sessions

    def factory(self) -> SMTP:
        return _SpoolingSMTP(self.handler, sessions=self._sessions, **self.SMTP_kwargs)


class SmtpServer:
    """The :class:`connectors.base.Connector` around an aiosmtpd :class:`Controller`."""

    def __init__(self, handler: SmtpHandler, host: str = "127.0.0.1", port: int = 8025, *,
                 tls: ssl.SSLContext | None = None, max_sessions: int = DEFAULT_MAX_SESSIONS) -> None:
        kwargs: dict[str, Any] = {"data_size_limit": handler.max_bytes, "ident": "Frontdoor"}
        if tls is not None:
            kwargs["tls_context"] = tls
        self.controller = _Controller(handler, hostname=host, port=port, sessions=_Sessions(max_sessions),
                                      **kwargs)
        self._stopped = threading.Event()
        self._in_run = False

    @property
    def address(self) -> tuple[str, int]:
        return self.controller.hostname, self.controller.port

    def start(self) -> None:
        self.controller.start()
        log.info("smtp: listening on %s:%d", *self.address)

    def run(self) -> None:
        self._in_run = True
        self.start()
        try:
            self._stopped.wait()
        finally:
            self.controller.stop()

    def stop(self) -> None:
        """End :meth:`run`; when started with :meth:`start`, stop the controller here."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if not self._in_run:
            self.controller.stop()
