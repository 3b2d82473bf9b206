"""Email commands: ``parse-email``, ``imap``, ``smtp`` and ``bench email``."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from frontdoor.output import print_figures
from frontdoor.settings import load_settings
from schemas.errors import OperatorError

log = logging.getLogger(__name__)
DEFAULT_CORPUS = Path("/work/shared/corpora/email/mikel-mail")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands (and its ``bench`` subcommands) to the CLI."""

    @app.command("parse-email")
    def parse_email_command(
        files: Annotated[list[Path], typer.Argument(help="Raw RFC 5322 messages (.eml files).")],
    ) -> None:
        """Print one JSON line per file: the canonical message, or {"file", "error"}.

        Attachments and the raw MIME go to the blob store (FRONTDOOR_BLOB_DIR). Exit 0 when
        every file was handled, either way.
        """
        from connectors.email_parser import EmailParseError, parse_email
        from frontdoor import wiring
        from ingest.serde import encode_inbound

        blobs = wiring.blob_store(load_settings())
        for path in files:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                typer.echo(json.dumps({"file": str(path), "error": "unreadable", "detail": exc.strerror}))
                continue
            try:
                message = parse_email(raw, blobs=blobs)
            except EmailParseError as exc:
                typer.echo(json.dumps({"file": str(path), "error": exc.reason, "detail": exc.detail}))
                continue
            typer.echo(encode_inbound(message).decode("utf-8"))

    @app.command("imap")
    def imap_command(
        once: bool = typer.Option(False, "--once", help="Run one poll cycle and exit."),
    ) -> None:
        """Poll the department mailboxes named in FRONTDOOR_IMAP_CONFIG into frontdoor.inbound."""
        from connectors.email_state import ImapStateStore
        from connectors.imap_poller import ImapConfigError, ImapPoller, load_imap_config
        from frontdoor import wiring
        from frontdoor.metrics import serve_stage_metrics

        settings = load_settings()
        if settings.imap_config is None:
            raise OperatorError("FRONTDOOR_IMAP_CONFIG is not set: point it at a TOML file listing the "
                                "department mailboxes (see docs/email.md)")
        try:
            config = load_imap_config(settings.imap_config)
        except ImapConfigError as exc:
            raise OperatorError(str(exc)) from None
        address = wiring.connect(settings)
        if not once:
            serve_stage_metrics("imap", settings.imap_metrics_port)
        publisher = wiring.publisher(settings, address)
        state = ImapStateStore(settings.var_dir / "imap-state.sqlite")
        poller = ImapPoller(config, publisher, wiring.blob_store(settings), state)
        _stop_on_signals(poller)
        try:
            if once:
                published = poller.poll_once()
                typer.echo(f"published {published} message(s)")
            else:
                poller.run()
        except ImapConfigError as exc:
            raise OperatorError(str(exc)) from None
        finally:
            poller.close()
            publisher.close()
            state.close()

    @app.command("smtp")
    def smtp_command(
        host: str = typer.Option(None, "--host", help="Listen address (default FRONTDOOR_SMTP_HOST)."),
        port: int = typer.Option(None, "--port", min=1, max=65535,
                                 help="Listen port (default FRONTDOOR_SMTP_PORT)."),
    ) -> None:
        """Receive mail for FRONTDOOR_SMTP_DOMAINS; 250 only after Kafka's ack, 451 while it is away."""
        from connectors.smtp_server import SmtpHandler, SmtpServer, tls_context
        from frontdoor import wiring
        from frontdoor.metrics import serve_stage_metrics

        settings = load_settings()
        try:
            context = tls_context(settings.smtp_tls_cert, settings.smtp_tls_key)
        except (ValueError, OSError) as exc:
            raise OperatorError(f"cannot offer STARTTLS: {exc}") from None
        address = wiring.connect(settings)
        serve_stage_metrics("smtp", settings.smtp_metrics_port)
        publisher = wiring.publisher(settings, address)
        handler = SmtpHandler(publisher, wiring.blob_store(settings), settings.smtp_domains,
                              settings.smtp_max_bytes)
        server = SmtpServer(handler, host or settings.smtp_host, port or settings.smtp_port, tls=context,
                            max_sessions=settings.smtp_max_sessions)
        _stop_on_signals(server)
        try:
            server.run()
        except OSError as exc:
            raise OperatorError(f"cannot listen on {host or settings.smtp_host}:"
                                f"{port or settings.smtp_port}: {exc.strerror}") from None
        finally:
            publisher.close()

    @bench_app.command("email")
    def bench_email(
        corpus: Annotated[Path, typer.Option("--corpus", help="Directory of .eml files (recursive).")]
        = DEFAULT_CORPUS,
        rounds: int = typer.Option(20, "--rounds", help="Times the corpus is replayed."),
        generated: int = typer.Option(10_000, "--generated", "-n", help="Generated messages."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Parse + produce vs raw produce of the same bytes; peak memory with a 25 MB attachment."""
        from connectors.email_bench import run_email_bench
        from frontdoor import wiring

        settings = load_settings()
        address = wiring.connect(settings, start_local=True)
        result = run_email_bench(address, settings.blobs_path / "bench",
                                 corpus if corpus.is_dir() else None, generated, rounds)
        print_figures(result, as_json)


def _stop_on_signals(connector: Any) -> None:
    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        connector.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
