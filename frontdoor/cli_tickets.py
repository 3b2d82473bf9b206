"""``frontdoor db upgrade``, ``frontdoor tickets`` (the ticket stage) and its operator commands."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from frontdoor import cli_tickets_rules
from frontdoor.settings import load_settings

if TYPE_CHECKING:
    from tickets.repository import TicketRepository


def _repository() -> TicketRepository:
    """The repository on the configured database, refusing one behind the code."""
    from tickets.db import make_engine, require_current
    from tickets.repository import TicketRepository

    engine = make_engine(load_settings().effective_database_url)
    require_current(engine)
    return TicketRepository(engine)


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

        from classifiers.taxonomy import load_taxonomy
        from frontdoor import wiring
        from frontdoor.metrics import serve_stage_metrics, tickets_figures
        from tickets.consumer import StageTopics, run_stage
        from tickets.db import make_engine, require_current

        settings = load_settings()
        engine = make_engine(settings.effective_database_url, immediate=True)
        require_current(engine)  # a database behind the code: refuse, naming 'frontdoor db upgrade'
        taxonomy = load_taxonomy(settings.taxonomy)
        address = wiring.connect(settings)
        serve_stage_metrics("tickets", settings.tickets_metrics_port,
                            collect=tickets_figures(engine, topic_prefix + group))
        stats = run_stage(engine, address, StageTopics(taxonomy.ids, topic_prefix),
                          wiring.ticket_writer(settings), group_id=topic_prefix + group,
                          max_poll_records=batch, idle_timeout_s=exit_when_idle or None)
        engine.dispose()
        typer.echo(json.dumps(dataclasses.asdict(stats)))

    @tickets_app.command("show")
    def tickets_show(
        reference: str = typer.Argument(..., help="Any reference told to the resident (own or alias)."),
        as_json: bool = typer.Option(False, "--json", help="Print the ticket as JSON."),
    ) -> None:
        """The ticket, its participants, messages, departments, clocks and history."""
        from tickets.repository import to_jsonable

        repository = _repository()
        detail = repository.ticket(reference)
        repository.engine.dispose()
        if detail is None:
            typer.echo(f"frontdoor: no ticket has the reference {reference!r}", err=True)
            raise typer.Exit(1)
        data = to_jsonable(detail)
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        ticket = data["ticket"]
        typer.echo(f"{ticket['reference']}  {ticket['status']}  {ticket['primary_department']}  "
                   f"{ticket['subject'] or ''}")
        typer.echo(f"  references: {', '.join(data['references'])}")
        for message in data["messages"]:
            who = message["sender_email"] or message["sender_phone"] or message["sender_name"] or "?"
            typer.echo(f"  {message['received_at']}  {message['channel']:<8} {who}: "
                       f"{(message['body_trimmed'] or message['body_text'])[:100]!r}  "
                       f"[{message['thread_rule']}]")

    @tickets_app.command("find")
    def tickets_find(
        email: str = typer.Option(None, "--email", help="A resident's email address."),
        phone: str = typer.Option(None, "--phone", help="A resident's phone number (any UK format)."),
        words: str = typer.Option(None, "--text", help="Words in any of their messages."),
        name: str = typer.Option(None, "--name", help="The start of a resident's name."),
        postcode: str = typer.Option(None, "--postcode", help="A resident's postcode."),
        as_json: bool = typer.Option(False, "--json", help="Print the residents as JSON."),
    ) -> None:
        """The matching residents with their tickets."""
        from schemas.errors import OperatorError
        from tickets.repository import to_jsonable

        if all(v is None for v in (email, phone, words, name, postcode)):
            raise OperatorError("say what to find: --email E, --phone P, --text WORDS, --name N "
                                "or --postcode P")
        repository = _repository()
        found = repository.find_residents(email=email, phone=phone, words=words, name=name,
                                          postcode=postcode)
        repository.engine.dispose()
        data = [to_jsonable(r) for r in found]
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        for resident in data:
            held = ", ".join(v for _, v in resident["identities"])
            typer.echo(f"resident {resident['id']}: {resident['name'] or '(no name)'}  {held}")
            for ticket in resident["tickets"]:
                typer.echo(f"  {ticket['reference']}  {ticket['status']:<17} {ticket['channel']:<8} "
                           f"{ticket['subject'] or ''}")
        if not data:
            typer.echo("no resident matches", err=True)

    @bench_app.command("tickets")
    def bench_tickets(
        messages: int = typer.Option(20_000, "--messages", "-n", min=10, help="Routed records to merge."),
        search_messages: int = typer.Option(1_000_000, "--search-messages", min=100,
                                            help="Messages the search corpus holds (bulk-seeded)."),
        batch: int = typer.Option(500, min=1, help="Records per transaction."),
        postgres_url: str = typer.Option("", help="A PostgreSQL server to create the bench databases on; "
                                         "default: a throw-away cluster from Debian's packages."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Routed records merged into tickets per second on SQLite and PostgreSQL, beside raw batched
        inserts of the same rows, and search p95 over a large corpus."""
        from frontdoor.output import print_figures
        from tickets.bench import run_tickets_bench

        print_figures(run_tickets_bench(messages, search_messages, batch=batch,
                                        postgres_url=postgres_url or None), as_json)

    @db_app.command("upgrade")
    def db_upgrade(
        revision: str = typer.Option("head", help="Target revision (default: the code's head)."),
    ) -> None:
        """Apply the database migrations (every stage refuses a database behind the code)."""
        from ingest.database import shown_url
        from tickets.db import upgrade

        url = load_settings().effective_database_url
        before, after = upgrade(url, revision)
        if before == after:
            typer.echo(f"{shown_url(url)} is at {after}: nothing to do")
        else:
            typer.echo(f"{shown_url(url)} upgraded from {before or 'empty'} to {after}")
