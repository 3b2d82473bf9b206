"""Commands for this area; ``register`` adds them to the ``frontdoor`` app."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands (and its ``bench`` subcommands) to the CLI."""
