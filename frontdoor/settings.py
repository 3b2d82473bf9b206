"""One settings object per process, read once by the CLI and passed down.

Every field can be set by an environment variable named ``FRONTDOOR_<FIELD>``
(``FRONTDOOR_KAFKA_BOOTSTRAP``, ``FRONTDOOR_DATABASE_URL`` …) or in a ``.env`` file; an
empty variable means unset. :func:`load_settings` turns a mistake in them into one
:class:`OperatorError` naming the variable.
"""

from __future__ import annotations

import re
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.errors import OperatorError, file_in_the_way

ENV_PREFIX = "FRONTDOOR_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", env_file_encoding="utf-8",
        env_ignore_empty=True,
    )

    # Broker
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port of a running Kafka cluster; unset: the local broker under var/",
    )
    kafka_version: str = Field(default="4.1.1", description="Apache Kafka version the local broker runs")
    kafka_port: int = Field(default=9092, ge=1, le=65534,
                            description="local broker's client port (controller: +1)")
    kafka_heap: str = Field(default="512m", description="local broker's JVM heap")
    var_dir: Path = Field(default=Path("var"), description="local state: broker data, blobs, database")
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "frontdoor",
        description="downloaded Kafka jars (fetched once with Maven)",
    )
    # At least 64 KiB: a record without its body (16 KiB previews) must fit in twice this.
    # At most 1 MiB: Kafka's default record limit, and half the local broker's.
    max_record_bytes: int = Field(
        default=512 * 1024, ge=64 * 1024, le=1024 * 1024,
        description="bodies beyond this go to the blob store; Kafka carries a reference",
    )
    connect_retries: int = Field(default=5, ge=1, description="tries to reach the broker at start-up")

    # Routing
    taxonomy: Path | None = Field(
        default=None, description="the council's department taxonomy (TOML); unset: classifiers/taxonomy.toml"
    )

    classifier_encoder: bool = Field(
        default=True,
        description="blend the model's sentence encoder in (false: about ten times faster to classify, "
                    "with the thresholds the model has for itself without it, so less is routed alone)",
    )

    metrics_port: int = Field(default=9464, ge=0, le=65535,
                              description="'frontdoor route' Prometheus metrics port (0: off)")

    # Storage
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; unset: SQLite under var/")
    blob_dir: Path | None = Field(default=None, description="blob store root; unset: var/blobs")

    # Channels
    public_url: str = Field(default="http://127.0.0.1:8000", description="externally visible base URL")
    twilio_auth_token: SecretStr = Field(default=SecretStr(""), description="Twilio auth token (signatures)")
    smtp_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["council.example.gov.uk"],
        description="comma-separated domains the SMTP server accepts mail for",
    )
    smtp_max_bytes: int = Field(default=35 * 1024 * 1024, ge=1024,
                                description="largest mail SMTP accepts (552 above)")
    smtp_max_sessions: int = Field(default=16, ge=1, le=10_000,
                                   description="SMTP connections at once (421 to the next: its MTA retries)")
    smtp_host: str = Field(default="127.0.0.1", description="address 'frontdoor smtp' listens on")
    smtp_port: int = Field(default=8025, ge=1, le=65535, description="port 'frontdoor smtp' listens on")
    smtp_tls_cert: Path | None = Field(default=None, description="PEM certificate: offer STARTTLS")
    smtp_tls_key: Path | None = Field(default=None, description="PEM private key for smtp_tls_cert")
    imap_config: Path | None = Field(
        default=None, description="TOML/JSON file listing the department mailboxes 'frontdoor imap' polls"
    )

    # Web front (web/): Twilio webhooks, the contact form, the JSON API
    web_host: str = Field(default="127.0.0.1", description="address 'frontdoor web' listens on")
    web_port: int = Field(default=8000, ge=1, le=65535, description="port 'frontdoor web' listens on")
    twilio_account_sid: str = Field(default="", description="Twilio account SID (fetching MMS media)")
    web_secret: SecretStr = Field(
        default=SecretStr(""), description="signs the contact form's CSRF tokens; unset: random per process"
    )
    agent_tokens: SecretStr = Field(
        default=SecretStr(""),
        description="comma-separated bearer tokens for POST /api/contacts, each 'token' or 'agent=token'",
    )
    form_rate_limit: int = Field(default=10, ge=1,
                                 description="new enquiries one address may send per window")
    form_rate_window_s: int = Field(default=3600, ge=1, description="the rate limit's window, in seconds")
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1,
                                  description="largest contact-form attachment")
    upload_max_files: int = Field(default=5, ge=1,
                                  description="most attachments on one contact-form submission")

    # The staff console (web/console/): sessions and officers' scoping
    console_scoping: bool = Field(default=True,
                                  description="officers see only their departments' tickets")
    console_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60,
                                              description="a console session ends after this long unused")
    console_session_hours: int = Field(default=12, ge=1, le=24 * 7,
                                       description="a console session ends this long after sign-in")

    # Outbound (outbound/): acknowledgements and replies; see docs/outbound.md
    relay_host: str | None = Field(default=None, description="the council's SMTP relay for outbound mail")
    relay_port: int = Field(default=587, ge=1, le=65535, description="the relay's port")
    relay_user: str | None = Field(default=None, description="relay login (AUTH after STARTTLS); unset: none")
    relay_password: SecretStr = Field(default=SecretStr(""), description="relay password")
    relay_starttls: bool = Field(default=True,
                                 description="STARTTLS before AUTH (false only for a relay on this host)")
    mail_from: str = Field(default="enquiries@council.example.gov.uk",
                           description="From address of acknowledgements and replies")
    mail_from_name: str | None = Field(default=None, description="display name on outbound mail")
    council_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="the council's own mail domains, never acknowledged; unset: FRONTDOOR_SMTP_DOMAINS",
    )
    ack_rate_per_hour: int = Field(default=3, ge=1,
                                   description="acknowledgements one recipient may get per hour (loops die)")
    templates_dir: Path | None = Field(default=None,
                                       description="the council's outbound templates over the shipped ones")
    outbound_provider: Literal["relay", "notify"] = Field(
        default="relay", description="'relay' (SMTP relay + Twilio) or 'notify' (GOV.UK Notify)")
    twilio_from: str | None = Field(
        default=None, description="number to text from when the one the resident texted is unknown")
    twilio_api_base: str = Field(default="https://api.twilio.com", description="Twilio REST API base URL")
    notify_api_key: SecretStr = Field(default=SecretStr(""), description="GOV.UK Notify API key")
    notify_base_url: str = Field(default="https://api.notifications.service.gov.uk",
                                 description="GOV.UK Notify API base URL")
    notify_ack_email_template: str | None = Field(default=None, description="Notify template id")
    notify_ack_sms_template: str | None = Field(default=None, description="Notify template id")
    notify_reply_email_template: str | None = Field(default=None, description="Notify template id")
    notify_reply_sms_template: str | None = Field(default=None, description="Notify template id")
    notify_email_reply_to_id: str | None = Field(default=None, description="Notify reply-to address id")
    notify_callback_token: SecretStr = Field(
        default=SecretStr(""), description="bearer token registered with Notify's delivery-receipt callback")
    api_rate_limit: int = Field(default=120, ge=1,
                                description="new enquiries one address may post to /api/enquiries per window")
    api_rate_window_s: int = Field(default=60, ge=1, description="the API rate limit's window, in seconds")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated CIDRs of proxies whose X-Forwarded-For names the client; unset: none",
    )
    intake_relay_metrics_port: int = Field(default=9465, ge=0, le=65535,
                                           description="'frontdoor relay' Prometheus metrics port (0: off)")
    smtp_metrics_port: int = Field(default=9466, ge=0, le=65535,
                                   description="'frontdoor smtp' Prometheus metrics port (0: off)")
    imap_metrics_port: int = Field(default=9467, ge=0, le=65535,
                                   description="'frontdoor imap' Prometheus metrics port (0: off)")
    tickets_metrics_port: int = Field(default=9468, ge=0, le=65535,
                                      description="'frontdoor tickets' Prometheus metrics port (0: off)")
    outbound_metrics_port: int = Field(default=9469, ge=0, le=65535,
                                       description="'frontdoor outbound' Prometheus metrics port (0: off)")

    # Tickets (tickets/): threading windows, statutory clocks, retention; see README "Tickets: rules"
    reopen_window_days: int = Field(
        default=28, ge=0, le=3650,
        description="a reply this long after closing reopens; later: a new linked ticket")
    sms_thread_window_hours: int = Field(
        default=72, ge=1, le=24 * 365,
        description="an SMS joins its number's open ticket if that was this recent")
    retention_days: int = Field(default=6 * 365, ge=30, le=100 * 365,
                                description="closed tickets' personal data are erased after this many days")
    clock_foi_working_days: int = Field(default=20, ge=1, le=365, description="FOI: working days to respond")
    clock_sar_months: int = Field(default=1, ge=1, le=12, description="SAR: calendar months to respond")
    clock_sar_extension_months: int = Field(default=2, ge=0, le=12,
                                            description="SAR: further months when extended")
    clock_complaint_stage1_working_days: int = Field(default=10, ge=1, le=365,
                                                     description="complaint stage 1: working days")
    clock_complaint_stage2_working_days: int = Field(default=20, ge=1, le=365,
                                                     description="complaint stage 2: working days")
    clock_member_enquiry_working_days: int = Field(default=10, ge=1, le=365,
                                                   description="member enquiries: working days")
    clock_due_soon_working_days: int = Field(default=3, ge=0, le=60,
                                             description="a clock is due soon this many working days ahead")
    service_targets: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="per-department service targets in working days, e.g. waste=5,highways=10",
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # FRONTDOOR_KAFKA_BOOTSTRAP= (blank) means unset: the local broker
        servers = [part.strip() for part in value.split(",")]
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or "/" in server or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port (e.g. kafka1:9092,kafka2:9092)")
        return ",".join(servers)

    @field_validator("kafka_heap")
    @classmethod
    def _heap(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9]\d*[kKmMgG]?", value.strip()):
            raise ValueError(f"{value!r} is not a JVM heap size (e.g. 512m, 2g)")
        return value.strip()

    @field_validator("var_dir", "cache_dir", "blob_dir")
    @classmethod
    def _directory(cls, value: Path | None) -> Path | None:
        """An existing non-directory (a file, /dev/null) is a mistake, not a traceback later."""
        blocker = None if value is None else file_in_the_way(value)
        if blocker is None or value is None:
            return value
        if blocker == value.expanduser():
            raise ValueError(f"{value} is not a directory: name a directory (it is created if missing)")
        raise ValueError(f"{value} cannot be created: {blocker} is not a directory")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL (e.g. https://contact.council.gov.uk)")
        return value.rstrip("/")

    @field_validator("smtp_domains", "council_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            return [d.strip().lower() for d in value.split(",") if d.strip()]
        return value

    @field_validator("smtp_domains")
    @classmethod
    def _some_domain(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no domain: list the domains SMTP accepts mail for, comma-separated "
                             "(e.g. council.gov.uk,council.example.org)")
        return value

    @field_validator("service_targets", mode="before")
    @classmethod
    def _service_targets(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        targets: dict[str, int] = {}
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            department, _, days = item.partition("=")
            if not department.strip() or not days.strip().isdigit() or not 0 < int(days) <= 365:
                raise ValueError(f"{item!r} is not department=working days (e.g. waste=5,highways=10)")
            targets[department.strip()] = int(days)
        return targets

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list):
            for item in value:
                try:
                    ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)") \
                        from None
        return value

    @property
    def blobs_path(self) -> Path:
        return self.blob_dir if self.blob_dir is not None else self.var_dir / "blobs"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'frontdoor.db').resolve()}"


def load_settings() -> Settings:
    """The process's settings, read once; a mistake in them is an :class:`OperatorError`."""
    try:
        return Settings()
    except ValidationError as exc:
        raise OperatorError(describe_error(exc)) from None
    except UnicodeDecodeError as exc:
        raise OperatorError(f"{Path('.env').resolve()} is not UTF-8 text (byte {exc.start}): "
                            "save it as UTF-8 or remove it") from None
    except OSError as exc:
        raise OperatorError(f"cannot read {exc.filename or Path('.env').resolve()}: {exc.strerror}") from None


def describe_error(exc: ValidationError) -> str:
    """One line naming the variable the operator set (``FRONTDOOR_WEB_PORT``), not the field."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    where = f"{ENV_PREFIX}{field.upper()}" if field in Settings.model_fields else field or "settings"
    message = first["msg"].removeprefix("Value error, ")
    return f"bad configuration for {where}: {message}"
