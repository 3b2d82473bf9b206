"""``frontdoor outbound`` (the sender stage) and ``frontdoor bench outbound``."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

import typer

from frontdoor.output import print_figures
from frontdoor.settings import Settings, load_settings
from schemas.errors import OperatorError

if TYPE_CHECKING:
    from outbound.senders import EmailSender, SmsSender

log = logging.getLogger(__name__)


def build_senders(settings: Settings) -> tuple[EmailSender | None, SmsSender | None]:
    """The providers this deployment sends through, from its settings."""
    from outbound.senders import NotifySender, NotifyTemplates, RelayConfig, SmtpRelaySender, TwilioSender

    if settings.outbound_provider == "notify":
        key = settings.notify_api_key.get_secret_value()
        ids = {"FRONTDOOR_NOTIFY_ACK_EMAIL_TEMPLATE": settings.notify_ack_email_template,
               "FRONTDOOR_NOTIFY_ACK_SMS_TEMPLATE": settings.notify_ack_sms_template,
               "FRONTDOOR_NOTIFY_REPLY_EMAIL_TEMPLATE": settings.notify_reply_email_template,
               "FRONTDOOR_NOTIFY_REPLY_SMS_TEMPLATE": settings.notify_reply_sms_template}
        missing = [name for name, value in ids.items() if not value]
        if not key or missing:
            raise OperatorError("FRONTDOOR_OUTBOUND_PROVIDER=notify needs FRONTDOOR_NOTIFY_API_KEY and the "
                                f"template ids: set {', '.join(missing) or 'FRONTDOOR_NOTIFY_API_KEY'}")
        try:
            notify = NotifySender(key, NotifyTemplates(
                acknowledgement_email=str(settings.notify_ack_email_template),
                acknowledgement_sms=str(settings.notify_ack_sms_template),
                reply_email=str(settings.notify_reply_email_template),
                reply_sms=str(settings.notify_reply_sms_template)),
                base_url=settings.notify_base_url, email_reply_to_id=settings.notify_email_reply_to_id)
        except (AssertionError, ValueError, IndexError):
            raise OperatorError("FRONTDOOR_NOTIFY_API_KEY is not a Notify API key (name-serviceid-secret, "
                                "from Notify's API integration page)") from None
        return notify, notify
    email: EmailSender | None = None
    if settings.relay_host:
        email = SmtpRelaySender(RelayConfig(
            host=settings.relay_host, port=settings.relay_port, user=settings.relay_user,
            password=settings.relay_password.get_secret_value() or None, starttls=settings.relay_starttls,
            mail_from=settings.mail_from, from_name=settings.mail_from_name))
    else:
        log.warning("FRONTDOOR_RELAY_HOST is unset: email acknowledgements and replies wait in the outbox")
    sms: SmsSender | None = None
    token = settings.twilio_auth_token.get_secret_value()
    if settings.twilio_account_sid and token:
        sms = TwilioSender(settings.twilio_account_sid, token, default_from=settings.twilio_from,
                           status_callback=f"{settings.public_url}/webhooks/twilio/status",
                           api_base=settings.twilio_api_base)
    else:
        log.warning("FRONTDOOR_TWILIO_ACCOUNT_SID / _AUTH_TOKEN unset: texts wait in the outbox")
    return email, sms


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``outbound`` and ``bench outbound`` to the CLI."""

    @app.command("outbound")
    def outbound_stage(
        lease: float = typer.Option(60.0, "--lease", min=1.0,
                                    help="Seconds a claimed row is ours before another sender may retry it."),
        group: str = typer.Option("frontdoor-outbound", help="Consumer group; senders in one group share "
                                  "the outbound partitions."),
        topic_prefix: str = typer.Option("", hidden=True, help="Prefix every topic and group (tests)."),
    ) -> None:
        """The sender stage: publishes outbox rows to frontdoor.outbound and sends each once."""
        from frontdoor import wiring
        from frontdoor.metrics import outbound_figures, serve_stage_metrics
        from ingest.bus import KafkaProducerClient
        from ingest.consumer import ConsumerLoop
        from ingest.intake_store import IntakeStore
        from outbound.bounces import BounceWatcher
        from outbound.rendering import TemplateSet
        from outbound.stage import OutboxRelay, OutboxSender
        from schemas.topics import INBOUND, OUTBOUND

        settings = load_settings()
        templates = TemplateSet(settings.templates_dir)
        templates.check()  # a broken template refuses the start, not the send
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from tickets.db import make_engine, require_current

        url = settings.effective_database_url
        engine = make_engine(url)
        require_current(engine)
        email, sms = build_senders(settings)
        opt_outs = IntakeStore.from_url(url)
        address = wiring.connect(settings)
        serve_stage_metrics("outbound", settings.outbound_metrics_port, collect=outbound_figures(engine))
        sender = OutboxSender(engine, templates, email=email, sms=sms, opted_out=opt_outs.is_opted_out,
                              lease_s=lease)
        relay = OutboxRelay(engine, KafkaProducerClient(address, client_id="frontdoor-outbound-relay"),
                            topic=topic_prefix + OUTBOUND)
        loop = ConsumerLoop(address, [topic_prefix + OUTBOUND], topic_prefix + group, sender.handle,
                            stage="outbound")
        watcher = BounceWatcher(engine, wiring.blob_store(settings))
        bounces = ConsumerLoop(address, [topic_prefix + INBOUND], f"{topic_prefix}{group}-bounces",
                               watcher.handle, stage="outbound-bounces", auto_offset_reset="latest")
        stopping = threading.Event()

        def _stop(*_: object) -> None:
            stopping.set()
            loop.stop()
            bounces.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        threads = [threading.Thread(target=relay.run, args=(stopping,), name="outbox-relay", daemon=True),
                   threading.Thread(target=bounces.run, name="bounces", daemon=True)]
        for thread in threads:
            thread.start()
        log.info("outbound: sending through %s / %s", getattr(email, "name", "-"), getattr(sms, "name", "-"))
        try:
            loop.run()
        finally:
            _stop()
            for thread in threads:
                thread.join(timeout=15)
            relay.client.close()
            if email is not None and hasattr(email, "close"):
                email.close()
            opt_outs.dispose()
            engine.dispose()

    @bench_app.command("outbound")
    def bench_outbound(
        messages: int = typer.Option(500, "--messages", "-n", min=1, help="Acknowledgements per channel."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Acknowledgements/s to a local SMTP relay and a recording Twilio server, beside raw smtplib."""
        from outbound.bench import run_outbound_bench

        print_figures(run_outbound_bench(messages), as_json)
