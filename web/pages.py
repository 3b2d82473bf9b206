"""The one Jinja2 environment of every page (public and console).

Templates live by area under ``web/templates/`` (``public/``, ``console/``, a shared
``layout.html``); GOV.UK Frontend's macros come from the ``govuk-frontend-jinja`` package
(paired with the ``govuk-frontend`` version in package.json), MOJ Frontend's from our own
``macros/moj.html`` (its macros are Nunjucks, so these emit the same classes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader, select_autoescape
from starlette.templating import Jinja2Templates

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
BUILT = STATIC / "dist"
"""Where ``npm run build`` writes the assets (ignored by git): served at ``/static/dist``."""

SERVICE_NAME = "Contact the council"


def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([
            FileSystemLoader(TEMPLATES),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(service_name=SERVICE_NAME, service_url="/contact", navigation=[],
                       error_for=error_for, error_list=error_list, select_items=select_items,
                       invalid=invalid)
    return env


def error_for(errors: Mapping[str, str], field: str) -> dict[str, str] | None:
    """GOV.UK Frontend's ``errorMessage`` for a field (None: no error, no markup)."""
    text = errors.get(field)
    return {"text": text} if text else None


def invalid(errors: Mapping[str, str], field: str) -> dict[str, str]:
    """``aria-invalid`` for a field with an error (screen readers announce it on focus)."""
    return {"aria-invalid": "true"} if errors.get(field) else {}


def error_list(errors: Mapping[str, str], form_anchor: str = "main-content") -> list[dict[str, str]]:
    """The error summary's links: each to its field; a whole-form error to the form itself."""
    return [{"text": text, "href": f"#{form_anchor if field == 'form' else field}"}
            for field, text in errors.items()]


def select_items(values: Iterable[str | tuple[str, str]], selected: str | None,
                 blank: str = "Any") -> list[dict[str, object]]:
    """GOV.UK select items from ids (shown capitalised) or (value, text) pairs; a blank first."""
    items: list[dict[str, object]] = [{"value": "", "text": blank}]
    for value in values:
        key, text = value if isinstance(value, tuple) else (value, value.replace("_", " ").capitalize())
        items.append({"value": key, "text": text, "selected": key == selected})
    return items


templates = Jinja2Templates(env=environment())
