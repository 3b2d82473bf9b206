"""``frontdoor db upgrade``, ``frontdoor tickets`` (the ticket stage) and its operator commands."""

from __future__ import annotations

import typer

from frontdoor import cli_tickets_rules
from frontdoor.settings import load_settings


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    db_app = typer.Typer(help="The tickets database.", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    tickets_app = typer.Typer(help="The ticket stage (no subcommand: run one consumer-group member), "
                              "and commands for operators.")
    app.add_typer(tickets_app, name="tickets")
    cli_tickets_rules.register(tickets_app)  # export-resident, retention, sweep-clocks, corrections

    @tickets_app.callback(invoke_without_command=True)
    def tickets(
        ctx: typer.Context,
        group: str = typer.Option("frontdoor-tickets", help="Consumer group; members share the partitions."),
        batch: int = typer.Option(500, min=1, max=10_000, help="Most records in one database transaction."),
        topic_prefix: str = typer.Option("", hidden=True, help="Prefix every topic (tests, benchmarks)."),
        exit_when_idle: float = typer.Option(0.0, hidden=True, help="Leave after this many idle seconds."),
    ) -> None:
        """Merge every department topic and frontdoor.triage into tickets (one transaction per batch)."""
        if ctx.invoked_subcommand is not None:
            return
        import dataclasses
        import json

        from classifiers.taxonomy import load_taxonomy
        from frontdoor import wiring
        from tickets.consumer import StageTopics, run_stage
        from tickets.db import make_engine, require_current

        settings = load_settings()
        engine = make_engine(settings.effective_database_url, immediate=True)
        require_current(engine)  # a database behind the code: refuse, naming 'frontdoor db upgrade'
        taxonomy = load_taxonomy(settings.taxonomy)
        address = wiring.connect(settings)
        stats = run_stage(engine, address, StageTopics(taxonomy.ids, topic_prefix),
                          wiring.ticket_writer(settings), group_id=topic_prefix + group,
                          max_poll_records=batch, idle_timeout_s=exit_when_idle or None)
        engine.dispose()
        typer.echo(json.dumps(dataclasses.asdict(stats)))

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
