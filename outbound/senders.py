"""The providers an outbox row can go through: the council's SMTP relay, Twilio, GOV.UK Notify.

Each sender is one small class with ``send_email`` and/or ``send_sms``; each returns the
provider's id for the message (Twilio's MessageSid, Notify's notification id, the Message-ID
for SMTP) or raises :class:`SendError`. ``permanent`` says whether trying again could help: a
refused mailbox or an invalid number is permanent (the row fails and the address is marked
undeliverable), a relay or API that is away is not (the row is offered again later).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from typing import Any, Protocol

from outbound.rendering import RenderedEmail
from tickets.outbox import OutboxKind, OutboxRow


class SendError(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class EmailSender(Protocol):
    name: str

    def send_email(self, row: OutboxRow, email: RenderedEmail) -> str: ...


class SmsSender(Protocol):
    name: str

    def send_sms(self, row: OutboxRow, text: str) -> str: ...


# -- email through the council's relay ----------------------------------------------------------


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable in any client's "view source", and kinder to spam filters


def compose_email(row: OutboxRow, email: RenderedEmail, mail_from: str, *,
                  from_name: str | None = None) -> Message:
    """The MIME message for a row: plain text and HTML alternatives, threaded on the resident's
    message, with the Message-ID fixed when the row was queued (a re-send shows as one mail).
    Acknowledgements say ``Auto-Submitted: auto-replied`` (RFC 3834), so well-behaved robots
    never answer them, and ask Exchange not to send its own auto-replies.

    Built with the classic ``email.mime`` classes: about four times faster than
    ``EmailMessage`` with the default policy, whose header objects dominated the sender's time."""
    msg = MIMEMultipart("alternative")
    msg["From"] = formataddr((from_name, mail_from), charset="utf-8") if from_name else mail_from
    msg["To"] = row.recipient
    if row.cc:
        msg["Cc"] = ", ".join(row.cc)
    if email.subject.isascii():
        msg["Subject"] = email.subject
    else:  # RFC 2047 encoded-words, as the stdlib's Header writes them
        msg["Subject"] = Header(email.subject, "utf-8")  # type: ignore[assignment]
    msg["Date"] = format_datetime(row.created_at)
    if row.message_id:
        msg["Message-ID"] = row.message_id
    if row.in_reply_to:
        msg["In-Reply-To"] = row.in_reply_to
    if row.references:
        msg["References"] = " ".join(row.references)
    if row.kind is OutboxKind.ACKNOWLEDGEMENT:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Frontdoor-Reference"] = row.reference
    msg.attach(MIMEText(email.text, "plain", _UTF8_QP))  # type: ignore[arg-type]
    msg.attach(MIMEText(email.html, "html", _UTF8_QP))  # type: ignore[arg-type]
    return msg


@dataclass(frozen=True, slots=True)
class RelayConfig:
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None  # from a SecretStr; never logged
    starttls: bool = True
    mail_from: str = "enquiries@council.example.gov.uk"
    from_name: str | None = None
    timeout_s: float = 30.0
    tls_context: ssl.SSLContext | None = None  # tests pass one trusting their own certificate


class SmtpRelaySender:
    """Mail through the council's relay with smtplib: STARTTLS, then AUTH when credentials are
    set. One connection is kept open across a batch and reopened when the relay drops it."""

    name = "smtp"

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        try:
            smtp.ehlo()
            if cfg.starttls:
                if not smtp.has_extn("starttls"):
                    raise SendError(f"relay {cfg.host}:{cfg.port} does not offer STARTTLS "
                                    "(set FRONTDOOR_RELAY_STARTTLS=false only for a relay on this host)",
                                    permanent=False)
                smtp.starttls(context=cfg.tls_context or ssl.create_default_context())
                smtp.ehlo()
            if cfg.user:
                smtp.login(cfg.user, cfg.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send_email(self, row: OutboxRow, email: RenderedEmail) -> str:
        msg = compose_email(row, email, self.config.mail_from, from_name=self.config.from_name)
        recipients = [row.recipient, *row.cc]
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._smtp is None:
                        self._smtp = self._connect()
                    refused = self._smtp.send_message(msg, from_addr=self.config.mail_from,
                                                      to_addrs=recipients)
                    break
                except smtplib.SMTPServerDisconnected:
                    self._smtp = None
                    if attempt == 2:
                        raise SendError("the relay closed the connection", permanent=False) from None
                except smtplib.SMTPRecipientsRefused as exc:
                    code, text = exc.recipients.get(row.recipient, (451, b"refused"))
                    raise SendError(f"relay refused {row.recipient}: {code} {_text(text)}",
                                    permanent=500 <= code < 600) from None
                except smtplib.SMTPAuthenticationError as exc:
                    self.close()
                    raise SendError(f"relay refused our login: {exc.smtp_code} (check FRONTDOOR_RELAY_USER "
                                    "/ FRONTDOOR_RELAY_PASSWORD)", permanent=False) from None
                except smtplib.SMTPResponseException as exc:
                    self.close()
                    raise SendError(f"relay answered {exc.smtp_code} {_text(exc.smtp_error)}",
                                    permanent=500 <= exc.smtp_code < 600 and exc.smtp_code != 530) from None
                except (OSError, smtplib.SMTPException) as exc:
                    self.close()
                    raise SendError(f"relay {self.config.host}:{self.config.port} unreachable: {exc}",
                                    permanent=False) from None
        if row.recipient in refused:  # only some recipients refused: the resident is what counts
            code, text = refused[row.recipient]
            raise SendError(f"relay refused {row.recipient}: {code} {_text(text)}",
                            permanent=500 <= code < 600)
        return row.message_id or ""

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# -- SMS through Twilio -----------------------------------------------------------------------

# Twilio error codes after which texting the number again cannot help.
TWILIO_PERMANENT = frozenset({21211, 21214, 21408, 21610, 21612, 21614, 30004, 30005, 30006, 30007})


def twilio_http_client(api_base: str | None) -> Any:
    """Twilio's own HTTP client, or one that sends to ``api_base`` instead of
    https://api.twilio.com (a Twilio-compatible gateway; tests' recording server)."""
    from twilio.http.http_client import TwilioHttpClient

    if not api_base or api_base.rstrip("/") == "https://api.twilio.com":
        return TwilioHttpClient(timeout=30)

    base = api_base.rstrip("/")

    class _Redirected(TwilioHttpClient):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if url.startswith("https://api.twilio.com"):
                url = base + url[len("https://api.twilio.com"):]
            return super().request(method, url, *args, **kwargs)

    return _Redirected(timeout=30)


class TwilioSender:
    """Texts through Twilio's REST API from the council number the resident texted, with a
    status callback so delivery receipts come back to ``/webhooks/twilio/status``."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, *, default_from: str | None,
                 status_callback: str | None, api_base: str | None = None) -> None:
        from twilio.rest import Client

        self.default_from = default_from
        self.status_callback = status_callback
        self.client = Client(account_sid, auth_token, http_client=twilio_http_client(api_base))

    def send_sms(self, row: OutboxRow, text: str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        sender = row.sender or self.default_from
        if not sender:
            raise SendError("no number to text from: set FRONTDOOR_TWILIO_FROM", permanent=False)
        kwargs: dict[str, Any] = {"to": row.recipient, "from_": sender, "body": text}
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            permanent = exc.code in TWILIO_PERMANENT or (exc.status == 400 and exc.code is None)
            raise SendError(f"Twilio refused: {exc.status} {exc.code} {exc.msg}",
                            permanent=permanent) from None
        except (TwilioException, OSError) as exc:
            raise SendError(f"Twilio unreachable: {exc}", permanent=False) from None
        except Exception as exc:  # requests' own errors (ConnectionError, Timeout)
            raise SendError(f"Twilio unreachable: {exc.__class__.__name__}: {exc}", permanent=False) from None
        return str(message.sid)


# -- GOV.UK Notify ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotifyTemplates:
    """The council's own template ids in Notify. Each Notify template shows the text Frontdoor
    rendered, through the personalisation fields ``subject`` and ``body`` (and ``reference``)."""

    acknowledgement_email: str
    acknowledgement_sms: str
    reply_email: str
    reply_sms: str

    def for_row(self, row: OutboxRow, channel: str) -> str:
        return str(getattr(self, f"{row.kind.value}_{channel}"))


class NotifySender:
    """Email and SMS through GOV.UK Notify with notifications-python-client. Notify chooses the
    sending address and number, and cannot set In-Reply-To: threading on Notify relies on the
    reference in the subject."""

    name = "notify"

    def __init__(self, api_key: str, templates: NotifyTemplates, *, base_url: str | None = None,
                 email_reply_to_id: str | None = None) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        kwargs: Mapping[str, Any] = {"base_url": base_url} if base_url else {}
        self.client = NotificationsAPIClient(api_key, **kwargs)
        self.templates = templates
        self.email_reply_to_id = email_reply_to_id

    def send_email(self, row: OutboxRow, email: RenderedEmail) -> str:
        personalisation = {"subject": email.subject, "body": email.text, "reference": row.reference}
        return self._call(lambda: self.client.send_email_notification(
            email_address=row.recipient, template_id=self.templates.for_row(row, "email"),
            personalisation=personalisation, reference=row.idempotency_key,
            email_reply_to_id=self.email_reply_to_id))

    def send_sms(self, row: OutboxRow, text: str) -> str:
        personalisation = {"body": text, "reference": row.reference}
        return self._call(lambda: self.client.send_sms_notification(
            phone_number=row.recipient, template_id=self.templates.for_row(row, "sms"),
            personalisation=personalisation, reference=row.idempotency_key))

    @staticmethod
    def _call(send: Any) -> str:
        from notifications_python_client.errors import HTTPError

        try:
            answer = send()
        except HTTPError as exc:
            status = exc.status_code
            # 400: Notify refused this message (bad number, template) - sending again cannot help;
            # 403/429/5xx: our key, a rate limit, or Notify itself - it may work later.
            raise SendError(f"Notify answered {status}: {exc.message}", permanent=status == 400) from None
        except Exception as exc:  # requests' connection errors
            raise SendError(f"Notify unreachable: {exc.__class__.__name__}: {exc}", permanent=False) from None
        return str(answer.get("id", ""))
