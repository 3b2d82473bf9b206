"""Commands for this area; ``register`` adds them to the ``frontdoor`` app.

``frontdoor web``, ``frontdoor relay``, ``frontdoor twilio reconcile``, ``frontdoor import-calls``
and ``frontdoor bench web``. This module is where the settings become the explicit arguments of
web/ and of the intake (web/ never reads them itself).
"""

from __future__ import annotations

import json
import logging
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from frontdoor.output import print_figures
from frontdoor.settings import Settings, load_settings
from schemas.errors import OperatorError

if TYPE_CHECKING:
    from ingest.intake_store import IntakeStore
    from web.config import WebConfig

log = logging.getLogger(__name__)

DRAIN_S = 60.0  # how long a one-shot command publishes what it committed before leaving it to the relay


def web_config(settings: Settings) -> WebConfig:
    """The HTTP app's configuration, from the one settings object."""
    from web.config import WebConfig, parse_networks

    return WebConfig(
        public_url=settings.public_url,
        twilio_auth_token=settings.twilio_auth_token.get_secret_value(),
        twilio_account_sid=settings.twilio_account_sid,
        notify_callback_token=settings.notify_callback_token.get_secret_value(),
        web_secret=settings.web_secret.get_secret_value(),
        agent_tokens=settings.agent_tokens.get_secret_value(),
        form_rate_limit=settings.form_rate_limit,
        form_rate_window_s=settings.form_rate_window_s,
        api_rate_limit=settings.api_rate_limit,
        api_rate_window_s=settings.api_rate_window_s,
        upload_max_bytes=settings.upload_max_bytes,
        upload_max_files=settings.upload_max_files,
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )


def intake_store(settings: Settings) -> IntakeStore:
    from ingest.intake_store import IntakeStore

    return IntakeStore.from_url(settings.effective_database_url)


def publish_committed(settings: Settings, store: IntakeStore, timeout_s: float = DRAIN_S) -> int:
    """For one-shot commands: publish what is committed now, if the broker answers within
    ``timeout_s``; the rows left (returned) wait for ``frontdoor web`` / ``frontdoor relay``."""
    from frontdoor import wiring
    from ingest.errors import PublishError
    from ingest.intake_relay import IntakeRelay

    try:
        address = wiring.connect(settings)
    except PublishError as exc:
        log.warning("%s", exc)
        return store.backlog()[0]
    publisher = wiring.publisher(settings, address)
    try:
        IntakeRelay(store, publisher).drain(timeout_s)
    finally:
        publisher.close()
    return store.backlog()[0]


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``2026-12-06``, ``2026-12-06T09:30`` (UTC unless an offset is given) or a span back from
    now: ``90m``, ``6h``, ``2d``."""
    now = now or datetime.now(UTC)
    span = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", value)
    if span:
        amount, unit = int(span.group(1)), span.group(2)
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise OperatorError(f"--since {value!r} is not a time: give 2026-12-06, 2026-12-06T09:30 or a span "
                            "such as 6h or 2d") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when > now:
        raise OperatorError(f"--since {value} is in the future")
    return when


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands (and its ``bench`` subcommands) to the CLI."""
    twilio_app = typer.Typer(help="Twilio SMS: recover what never reached us.", no_args_is_help=True)
    app.add_typer(twilio_app, name="twilio")

    @app.command("web")
    def web(
        host: str = typer.Option(None, "--host", help="Address to listen on (default FRONTDOOR_WEB_HOST)."),
        port: int = typer.Option(None, "--port", min=1, max=65535,
                                 help="Port to listen on (default FRONTDOOR_WEB_PORT)."),
    ) -> None:
        """The HTTP app: Twilio webhooks, the contact form (/contact), the JSON API (/api/docs).

        Runs the intake relay in a thread: what the app takes reaches Kafka as soon as it answers."""
        import socket

        import uvicorn

        from frontdoor import wiring
        from ingest.errors import PublishError
        from web.app import create_app

        settings = load_settings()
        host, port = host or settings.web_host, port or settings.web_port
        try:  # bind as uvicorn will, so a bad address is one line here rather than uvicorn's shutdown
            for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                     flags=socket.AI_PASSIVE):
                with socket.socket(family, kind, proto) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    probe.bind(address)
        except OSError as exc:
            raise OperatorError(f"cannot listen on {host}:{port}: {exc.strerror}: choose another "
                                "FRONTDOOR_WEB_HOST / FRONTDOOR_WEB_PORT (or --host / --port)") from None
        try:
            wiring.connect(settings)
        except PublishError as exc:  # the app still starts: it takes enquiries, the relay publishes later
            log.warning("%s; enquiries are taken and published when it answers", exc)
        store = intake_store(settings)
        blobs = wiring.blob_store(settings)
        from frontdoor.cli_console import build_console

        console = build_console(settings)
        app_ = create_app(web_config(settings), store=store, blobs=blobs,
                          publisher=wiring.publisher(settings), console=console,
                          allocator=wiring.reference_allocator(settings))
        app_.state.ingest_probe = wiring.ingest_probe(settings, console.engine)  # the dashboard's Kafka view
        # proxy_headers off: X-Forwarded-For is believed only from FRONTDOOR_TRUSTED_PROXIES (web/limits.py)
        uvicorn.run(app_, host=host, port=port, proxy_headers=False, log_level="info")

    @app.command("relay")
    def relay(
        metrics_port: int = typer.Option(None, "--metrics-port", min=0, max=65535,
                                         help="Prometheus metrics port (default "
                                              "FRONTDOOR_INTAKE_RELAY_METRICS_PORT; 0: off)."),
    ) -> None:
        """Publish the intake outbox to Kafka until stopped (``frontdoor web`` runs one too;
        several may run, one publishes at a time)."""
        from prometheus_client import start_http_server

        from frontdoor import wiring
        from ingest.errors import PublishError
        from ingest.intake_relay import IntakeRelay

        settings = load_settings()
        port = settings.intake_relay_metrics_port if metrics_port is None else metrics_port
        try:
            wiring.connect(settings)
        except PublishError as exc:
            log.warning("%s; the relay publishes when it answers", exc)
        store = intake_store(settings)
        publisher = wiring.publisher(settings)
        relay_ = IntakeRelay(store, publisher)
        if port:
            start_http_server(port, addr="127.0.0.1")
            log.info("relay: metrics on http://127.0.0.1:%d/metrics", port)

        def stop(_signum: int, _frame: Any) -> None:
            relay_.stop(timeout_s=0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("relay: publishing the intake outbox (%d rows waiting)", store.backlog()[0])
        try:
            relay_.run()
        finally:
            publisher.close()
            store.dispose()

    @twilio_app.command("reconcile")
    def twilio_reconcile(
        since: str = typer.Option(..., "--since",
                                  help="From when: 2026-12-06, 2026-12-06T09:30 (UTC), 6h, 2d."),
        to: str = typer.Option(None, "--to", help="Only messages to this number of ours (E.164)."),
    ) -> None:
        """Ingest inbound SMS that Twilio holds and the intake never saw (the web app was down).

        Idempotent on MessageSid: run it as often as you like. Prints one JSON line of totals."""
        from frontdoor import wiring
        from ingest.intake import IntakeService
        from ingest.intake_twilio import TWILIO_API, reconcile, twilio_client

        start = parse_since(since)
        settings = load_settings()
        token = settings.twilio_auth_token.get_secret_value()
        if not settings.twilio_account_sid or not token:
            raise OperatorError("twilio reconcile needs FRONTDOOR_TWILIO_ACCOUNT_SID and "
                                "FRONTDOOR_TWILIO_AUTH_TOKEN (the account the SMS number belongs to)")
        api_base = str(getattr(settings, "twilio_api_base", None) or TWILIO_API)
        client = twilio_client(settings.twilio_account_sid, token, api_base)
        allocator = wiring.reference_allocator(settings)
        store = intake_store(settings)
        try:
            from twilio.base.exceptions import TwilioException

            try:
                report = reconcile(client, IntakeService(store, allocator), since=start, to=to)
            except TwilioException as exc:
                reason = str(exc).strip().splitlines()[-1]
                raise OperatorError(f"Twilio refused the listing: {reason}") from None
            except OSError as exc:
                raise OperatorError(f"cannot reach Twilio at {api_base}: {exc}") from None
            waiting = publish_committed(settings, store) if report.ingested else store.backlog()[0]
        finally:
            store.dispose()
        typer.echo(json.dumps({**report.as_dict(), "waiting_for_broker": waiting}))

    @bench_app.command("web")
    def bench_web(
        enquiries: int = typer.Option(500, "--enquiries", "-n", help="Enquiries to post."),
        concurrency: int = typer.Option(8, "--concurrency", "-c", help="Clients posting at once."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """POST /api/enquiries end to end (uvicorn, the durable commit) beside the bare publisher,
        and the relay's delay from commit to Kafka's ack."""
        from frontdoor import wiring
        from web.bench import run_web_bench

        settings = load_settings()
        address = wiring.connect(settings, start_local=True)
        result = run_web_bench(address, enquiries, concurrency)
        print_figures(result, as_json)

    @app.command("import-calls")
    def import_calls(
        file: Path = typer.Argument(..., help="CSV export of the telephony system (see docs/web.md)."),  # noqa: B008
    ) -> None:
        """Ingest a contact-centre call export; bad rows are listed with line numbers.

        Prints one JSON line of totals. Exit 0 when every row was taken (now or by an earlier
        import), 1 when some rows were rejected, 2 when the file is refused whole (not an export,
        or a quote never closes): nothing of it is imported. Rows are committed to the intake
        outbox first; they are published now if the broker answers, else by the relay later."""
        from connectors.call_notes import CsvFormatError
        from frontdoor import wiring
        from ingest.intake import IntakeService
        from web.call_import import ingest_calls, load_calls

        try:  # the whole file is checked first: its mistakes are reported even with the broker away
            export = load_calls(file)
        except CsvFormatError as exc:
            raise OperatorError(f"{file}: {exc}") from None
        settings = load_settings()
        allocator = wiring.reference_allocator(settings)
        store = intake_store(settings)
        try:
            report = ingest_calls(export, IntakeService(store, allocator))
            waiting = publish_committed(settings, store) if report.ingested else store.backlog()[0]
        finally:
            store.dispose()
        for bad in report.rejected:
            typer.echo(f"{file}: line {bad.line}: {bad.reason}", err=True)
        if waiting:
            typer.echo(f"{file}: {waiting} messages wait for the broker; 'frontdoor web' or "
                       "'frontdoor relay' publishes them when it answers", err=True)
        typer.echo(json.dumps({**report.as_dict(), "waiting_for_broker": waiting}))
        if report.rejected:
            raise typer.Exit(1)
