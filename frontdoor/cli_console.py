"""The console's accounts (``frontdoor users add|role|disable|list``) and ``frontdoor demo``."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import typer

from frontdoor.settings import Settings, load_settings
from schemas.errors import OperatorError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tickets.accounts import AccountStore
    from web.console import ConsoleContext

PASSWORD_ENV = "FRONTDOOR_USER_PASSWORD"  # noqa: S105  (the variable's name, not a password)
ROLES_HELP = "agent (all departments), officer (--department), supervisor, ops, admin"


def account_store(settings: Settings) -> AccountStore:
    from tickets.accounts import AccountStore
    from tickets.db import make_engine, require_current

    engine = make_engine(settings.effective_database_url)
    require_current(engine)
    return AccountStore(engine)


def build_console(settings: Settings,
                  ready_checks: dict[str, Callable[[], bool]] | None = None) -> ConsoleContext:
    """The console's dependencies from the settings (``frontdoor web`` passes it to create_app)."""
    from datetime import timedelta

    from classifiers.taxonomy import load_taxonomy
    from frontdoor import wiring
    from ingest.admin import broker_answers
    from tickets.accounts import AccountStore, SessionPolicy
    from tickets.db import make_engine, require_current
    from web.console import ConsoleContext
    from web.security import CsrfGuard

    engine = make_engine(settings.effective_database_url)
    require_current(engine)
    taxonomy = load_taxonomy(settings.taxonomy)
    sessions = SessionPolicy(idle=timedelta(minutes=settings.console_session_idle_minutes),
                             absolute=timedelta(hours=settings.console_session_hours))
    return ConsoleContext(
        accounts=AccountStore(engine, sessions=sessions), engine=engine, blobs=wiring.blob_store(settings),
        csrf=CsrfGuard(settings.web_secret.get_secret_value()),
        departments={d.id: _department_name(d.id) for d in taxonomy.departments},
        scoping=settings.console_scoping, secure_cookies=settings.public_url.startswith("https://"),
        ready_checks=ready_checks or {"broker": lambda: broker_answers(wiring.bootstrap(settings))},
        outbox=wiring.outbox_policy(settings))


def _department_name(department: str) -> str:
    return department.replace("_", " ").capitalize()


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    users_app = typer.Typer(help="Console accounts: sign-in, role and departments.", no_args_is_help=True)
    app.add_typer(users_app, name="users")

    @users_app.command("add")
    def add(
        email: str = typer.Argument(..., help="The person's email address: their sign-in name."),
        role: str = typer.Option(..., "--role", help=ROLES_HELP),
        department: list[str] = typer.Option(  # noqa: B008
            [], "--department", help="A department id (repeat for several)."),
        name: str = typer.Option(None, "--name", help="Their name, as colleagues see it."),
    ) -> None:
        """Add an account. The password comes from FRONTDOOR_USER_PASSWORD, else a prompt."""
        password = os.environ.get(PASSWORD_ENV) or typer.prompt("Password (at least 10 characters)",
                                                               hide_input=True, confirmation_prompt=True)
        settings = load_settings()
        _known_departments(settings, department)
        account = account_store(settings).add_user(email, password, role, department, name=name)
        typer.echo(json.dumps({"email": account.email, "role": account.role.value,
                               "departments": list(account.departments)}))

    @users_app.command("role")
    def role(
        email: str = typer.Argument(...),
        role: str = typer.Option(..., "--role", help=ROLES_HELP),
        department: list[str] = typer.Option(None, "--department", help="Replaces the departments if given."),  # noqa: B008
    ) -> None:
        """Change an account's role (and departments); it signs in again."""
        settings = load_settings()
        _known_departments(settings, department or [])
        account = account_store(settings).set_role(email, role, department or None)
        typer.echo(json.dumps({"email": account.email, "role": account.role.value,
                               "departments": list(account.departments)}))

    @users_app.command("disable")
    def disable(email: str = typer.Argument(...)) -> None:
        """Disable an account: its sessions end at once and it cannot sign in."""
        account = account_store(load_settings()).disable(email)
        typer.echo(json.dumps({"email": account.email, "disabled": account.disabled}))

    @app.command("demo")
    def demo() -> None:
        """Local only: a demo supervisor account, then realistic enquiries on every channel.

        Run it while 'make run' (frontdoor up) is running; it prints the console's address and
        the demo account's password, then what it sent."""
        import secrets

        from frontdoor.demo import DEMO_EMAIL, check_local, send_traffic, wait_for_services, web_base

        settings = load_settings()
        check_local(settings)
        wait_for_services(settings)
        store = account_store(settings)
        password = secrets.token_urlsafe(12)
        if store.get(DEMO_EMAIL) is None:
            store.add_user(DEMO_EMAIL, password, "supervisor", name="Demo supervisor")
        else:
            store.reset_password(DEMO_EMAIL, password)
        typer.echo(f"Console: {web_base(settings)}/console")
        typer.echo(f"Sign in as {DEMO_EMAIL} with password {password}")
        report = send_traffic(settings, lambda line: typer.echo(f"  {line}"))
        for line in report.skipped:
            typer.echo(f"  skipped {line}", err=True)
        typer.echo(f"{len(report.sent)} enquiries sent; they reach the queues as the router and the "
                   "ticket stage take them (seconds)")

    @bench_app.command("console")
    def bench_console(
        tickets: int = typer.Option(200_000, "--tickets", min=100, help="Tickets to seed (bulk inserts)."),
        messages: int = typer.Option(1_000_000, "--messages", min=100, help="Messages to seed."),
        requests: int = typer.Option(40, "--requests", min=20, help="Requests timed per page."),
        postgres_url: str = typer.Option("", help="A PostgreSQL server for the bench database; default: a "
                                         "throw-away cluster from Debian's packages."),
        sqlite_only: bool = typer.Option(False, "--sqlite-only", help="Skip PostgreSQL."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Server time (p50/p95) of the triage queue, a filtered and sorted department queue, a
        ticket page with 50 messages and a search, on a bulk-seeded database (SQLite and PostgreSQL)."""
        from frontdoor.output import print_figures
        from web.console.bench import run_console_bench

        print_figures(run_console_bench(tickets, messages, postgres_url=postgres_url or None,
                                        requests=requests, postgres=not sqlite_only), as_json)

    @users_app.command("list")
    def list_users() -> None:
        """One JSON line per account."""
        for account in account_store(load_settings()).list_users():
            typer.echo(json.dumps({"email": account.email, "role": account.role.value,
                                   "departments": list(account.departments), "disabled": account.disabled}))


def _known_departments(settings: Settings, departments: list[str]) -> None:
    if not departments:
        return
    from classifiers.taxonomy import load_taxonomy

    known = set(load_taxonomy(settings.taxonomy).ids)
    unknown = [d for d in departments if d not in known]
    if unknown:
        raise OperatorError(f"--department {', '.join(unknown)}: not in the taxonomy "
                            f"(known: {', '.join(sorted(known))})")
