"""``frontdoor db upgrade``, ``frontdoor tickets`` (the ticket stage) and its operator commands."""

from __future__ import annotations

import typer

from frontdoor.settings import load_settings


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    db_app = typer.Typer(help="The tickets database.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def db_upgrade(
        revision: str = typer.Option("head", help="Target revision (default: the code's head)."),
    ) -> None:
        """Apply the database migrations (every stage refuses a database behind the code)."""
        from tickets.db import shown_url, upgrade

        url = load_settings().effective_database_url
        before, after = upgrade(url, revision)
        if before == after:
            typer.echo(f"{shown_url(url)} is at {after}: nothing to do")
        else:
            typer.echo(f"{shown_url(url)} upgraded from {before or 'empty'} to {after}")
