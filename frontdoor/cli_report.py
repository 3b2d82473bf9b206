"""``frontdoor report --month YYYY-MM [--json] [--out FILE]``: the committee report of a month."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from frontdoor.settings import load_settings
from schemas.errors import OperatorError


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        month: str = typer.Option(..., "--month", help="The month, as YYYY-MM (e.g. 2026-11)."),
        as_json: bool = typer.Option(False, "--json", help="The figures as JSON instead of the HTML page."),
        out: Path = typer.Option(None, "--out", help="Write to this file instead of standard output."),  # noqa: B008
    ) -> None:
        """The month's enquiries by channel and department, FOI and member enquiries answered on
        time, complaints by stage, satisfaction per department and routing accuracy, each beside
        the previous month: a printable HTML page (or --json)."""
        from tickets import reporting
        from tickets.db import make_engine, require_current

        try:
            reporting.month_bounds(month)
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        settings = load_settings()
        engine = make_engine(settings.effective_database_url)
        try:
            require_current(engine)
            figures = reporting.month_report(engine, month)
        finally:
            engine.dispose()
        if as_json:
            text = json.dumps(reporting.as_json(figures), indent=2, ensure_ascii=False)
        else:
            from classifiers.taxonomy import load_taxonomy
            from web.console.report import render_standalone

            taxonomy = load_taxonomy(settings.taxonomy)
            text = render_standalone(figures, {d.id: d.id.replace("_", " ").capitalize()
                                               for d in taxonomy.departments})
        if out is None:
            typer.echo(text)
            return
        try:
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise OperatorError(f"cannot write {out}: {exc.strerror or exc}") from None
        typer.echo(f"report for {month} written to {out}", err=True)
