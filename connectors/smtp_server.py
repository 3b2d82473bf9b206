"""Mail for the council's own domains over SMTP → ``frontdoor.inbound``.

The SMTP reply is the contract: ``250`` only after Kafka acknowledged the message, ``451``
when the broker is away or the blob store cannot write (disk full: the sending MTA keeps the
mail and retries), ``550`` for a
recipient in a domain we do not serve (no open relay), ``552`` above the size limit, ``554``
for mail that can never become a message. Parsing and the blocking ``publish()`` run in a
thread executor so one slow broker ack never stalls other sessions.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from connectors.base import Publisher, PublishError
from connectors.email_parser import EmailParseError, parse_email
from schemas.blobs import BlobStore
from schemas.inbound import InboundMessage

log = logging.getLogger(__name__)

REPLY_OK = "250 2.0.0 OK: queued as {id}"
REPLY_RELAY = "550 5.7.1 Relaying denied: this server only accepts mail for {domains}"
REPLY_BAD_ADDRESS = "553 5.1.3 Recipient address not understood"
REPLY_TOO_BIG = "552 5.3.4 Message too big: the limit is {limit} bytes"
REPLY_TRY_LATER = "451 4.3.0 Temporarily unable to accept the message, please try again later"
REPLY_REJECT = "554 5.6.0 Message cannot be processed: {reason}"


class SmtpHandler:
    """aiosmtpd handler: accepts mail for ``domains`` and publishes one message per DATA,
    listing every department recipient of the transaction in ``source.mailboxes``."""

    def __init__(self, publisher: Publisher, blobs: BlobStore, domains: Iterable[str],
                 max_bytes: int) -> None:
        self.publisher = publisher
        self.blobs = blobs
        self.domains = {d.strip().lower() for d in domains if d.strip()}
        self.max_bytes = max_bytes

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
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if len(raw) > self.max_bytes:
            return REPLY_TOO_BIG.format(limit=self.max_bytes)
        loop = asyncio.get_running_loop()
        try:
            message = await loop.run_in_executor(None, self._parse, raw, envelope.mail_from,
                                                  list(envelope.rcpt_tos))
        except EmailParseError as exc:
            log.warning("smtp: rejected mail from %s: %s", envelope.mail_from, exc)
            return REPLY_REJECT.format(reason=exc.reason)
        except OSError as exc:  # the blob store: disk full or unwritable; the sender keeps the mail
            log.error("smtp: could not store mail from %s (%s); answered 451 so the sender retries",
                      envelope.mail_from, exc)
            return REPLY_TRY_LATER
        except Exception:  # a bug must make the sender retry, not lose the mail
            log.exception("smtp: unexpected error parsing mail from %s", envelope.mail_from)
            return REPLY_TRY_LATER
        try:
            await loop.run_in_executor(None, self.publisher.publish, message)
        except PublishError as exc:
            log.warning("smtp: Kafka did not take %s (%s); answered 451 so the sender retries",
                        message.dedupe_key, exc)
            return REPLY_TRY_LATER
        except Exception:
            log.exception("smtp: unexpected error publishing %s", message.dedupe_key)
            return REPLY_TRY_LATER
        log.info("smtp: accepted %s for %s", message.dedupe_key, ", ".join(message.source.mailboxes))
        return REPLY_OK.format(id=message.id)

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


class SmtpServer:
    """The :class:`connectors.base.Connector` around an aiosmtpd :class:`Controller`."""

    def __init__(self, handler: SmtpHandler, host: str = "127.0.0.1", port: int = 8025, *,
                 tls: ssl.SSLContext | None = None) -> None:
        kwargs: dict[str, Any] = {"data_size_limit": handler.max_bytes, "ident": "Frontdoor"}
        if tls is not None:
            kwargs["tls_context"] = tls
        self.controller = Controller(handler, hostname=host, port=port, **kwargs)
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
