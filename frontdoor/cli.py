"""The ``frontdoor`` command. Thin: it reads settings once and calls the stage it names."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import typer
from pydantic import ValidationError

from frontdoor import (
    cli_classifier,
    cli_console,
    cli_core,
    cli_email,
    cli_outbound,
    cli_report,
    cli_router,
    cli_tickets,
    cli_web,
)
from ingest.errors import BrokerSetupError, PublishError
from schemas.errors import OperatorError

app = typer.Typer(
    help="Frontdoor: one front door for every enquiry a resident sends to the council.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
kafka_app = typer.Typer(help="The local Kafka broker (skipped when FRONTDOOR_KAFKA_BOOTSTRAP is set).",
                        no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: figures as JSON beside a raw baseline from the same run.",
                        no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(bench_app, name="bench")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiosmtpd", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # we report its failures ourselves


cli_core.register(app, kafka_app, bench_app)
cli_email.register(app, bench_app)
cli_web.register(app, bench_app)
cli_classifier.register(app, bench_app)
cli_router.register(app, bench_app)
cli_outbound.register(app, bench_app)
cli_tickets.register(app, bench_app)
cli_console.register(app, bench_app)
cli_report.register(app)


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI, turning operator mistakes into one line instead of a traceback."""
    return guarded(lambda: app(args=argv, standalone_mode=True))


def guarded(run: Callable[[], Any]) -> Any:
    try:
        return run()
    except (OperatorError, BrokerSetupError) as exc:
        typer.echo(f"frontdoor: {exc}", err=True)
        raise SystemExit(2) from None
    except PublishError as exc:
        typer.echo(f"frontdoor: {exc}", err=True)
        raise SystemExit(3) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        typer.echo(f"frontdoor: bad configuration for {where}: {first['msg']}", err=True)
        raise SystemExit(2) from None
