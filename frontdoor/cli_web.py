"""Commands for this area; ``register`` adds them to the ``frontdoor`` app."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from frontdoor.output import print_figures
from frontdoor.settings import load_settings
from schemas.errors import OperatorError

log = logging.getLogger(__name__)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands (and its ``bench`` subcommands) to the CLI."""

    @app.command("web")
    def web(
        host: str = typer.Option(None, "--host", help="Address to listen on (default FRONTDOOR_WEB_HOST)."),
        port: int = typer.Option(None, "--port", min=1, max=65535,
                                 help="Port to listen on (default FRONTDOOR_WEB_PORT)."),
    ) -> None:
        """The HTTP app: Twilio webhooks, the contact form (/contact), the JSON API (/api/docs)."""
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
        except PublishError as exc:  # the app still starts: it answers 503 until the broker is back
            log.warning("%s; enquiries get 503 until it answers", exc)
        uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=True, log_level="info")

    @bench_app.command("web")
    def bench_web(
        enquiries: int = typer.Option(500, "--enquiries", "-n", help="Enquiries to post."),
        concurrency: int = typer.Option(8, "--concurrency", "-c", help="Clients posting at once."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """POST /api/enquiries end to end (uvicorn, store, Kafka's ack) beside the bare publisher."""
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

        Prints one JSON line of totals. Exit 0 when every row was ingested (now or by an
        earlier import), 1 when some rows were rejected, 2 when the file is refused whole
        (not an export, or a quote never closes): nothing of it is imported."""
        from connectors.call_notes import CsvFormatError
        from frontdoor import wiring
        from web.call_import import ingest_calls, load_calls
        from web.intake import IntakeService
        from web.store import IntakeStore

        try:  # the whole file is checked first: its mistakes are reported even with the broker away
            export = load_calls(file)
        except CsvFormatError as exc:
            raise OperatorError(f"{file}: {exc}") from None
        settings = load_settings()
        address = wiring.connect(settings)
        store = IntakeStore.from_url(settings.effective_database_url)
        publisher = wiring.publisher(settings, address)
        try:
            report = ingest_calls(export, IntakeService(store, publisher))
        finally:
            publisher.close()
            store.dispose()
        for bad in report.rejected:
            typer.echo(f"{file}: line {bad.line}: {bad.reason}", err=True)
        typer.echo(json.dumps(report.as_dict()))
        if report.rejected:
            raise typer.Exit(1)
