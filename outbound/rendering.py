"""Templates a council can edit: Jinja2 files, plain text + HTML for email, text for SMS.

Files are looked up first in ``FRONTDOOR_TEMPLATES_DIR`` (a council's own), then among the
defaults shipped in ``outbound/templates/``, so a council overrides only what it wants:

=====================================  ==========================================================
file                                   variables
=====================================  ==========================================================
``acknowledgement_email_subject.txt``  ``reference``, ``subject`` (the resident's), ``resident_name``
``acknowledgement_email.txt`` / .html  ``reference``, ``tracking_url``, ``resident_name``,
                                       ``subject``, ``channel`` (email, webform, sms)
``acknowledgement_sms.txt``            the same
``reply_email_subject.txt``            ``reference``, ``subject``, ``author``
``reply_email.txt`` / ``.html``        ``reference``, ``subject``, ``author``, ``body``
``reply_sms.txt``                      ``reference``, ``author``, ``body``
=====================================  ==========================================================

Every template is rendered with sample values at start-up (:meth:`TemplateSet.check`): a
syntax error, an unknown variable (undefined variables are errors) or a subject without the
reference refuses the start with one line, rather than failing at send time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from schemas.errors import OperatorError

SHIPPED = Path(__file__).resolve().parent / "templates"
NAMES = (
    "acknowledgement_email_subject.txt", "acknowledgement_email.txt", "acknowledgement_email.html",
    "acknowledgement_sms.txt", "reply_email_subject.txt", "reply_email.txt", "reply_email.html",
    "reply_sms.txt",
)
SAMPLE: dict[str, dict[str, Any]] = {
    "acknowledgement": {
        "reference": "FD-ABCD-EFGH", "tracking_url": "https://example.gov.uk/track?ref=FD-ABCD-EFGH&secret=x",
        "resident_name": "Sam Resident", "subject": "Bins not collected", "channel": "email",
    },
    "reply": {"reference": "FD-ABCD-EFGH", "subject": "Bins not collected", "author": "A. Officer",
              "body": "Thank you.\n\nWe will collect on Tuesday."},
}


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class TemplateSet:
    """The templates of one deployment (a council's directory over the shipped defaults)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        search = [str(directory)] if directory is not None else []
        loader = jinja2.FileSystemLoader([*search, str(SHIPPED)])
        self._env = jinja2.Environment(  # noqa: S701 - autoescape is chosen per file below
            loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        )

    def _render(self, name: str, variables: dict[str, Any]) -> str:
        return self._env.get_template(name).render(**variables)

    def email(self, kind: str, variables: dict[str, Any]) -> RenderedEmail:
        subject = " ".join(self._render(f"{kind}_email_subject.txt", variables).split())
        text = self._render(f"{kind}_email.txt", variables).strip() + "\n"
        return RenderedEmail(subject=subject, text=text, html=self._render(f"{kind}_email.html", variables))

    def sms(self, kind: str, variables: dict[str, Any]) -> str:
        return " ".join(self._render(f"{kind}_sms.txt", variables).split(" ")).strip()

    def check(self) -> None:
        """Render every template with sample values; refuse a broken one with one line."""
        if self.directory is not None and not self.directory.is_dir():
            raise OperatorError(f"FRONTDOOR_TEMPLATES_DIR={self.directory} is not a directory: "
                                "name the folder holding the council's outbound templates")
        for name in NAMES:
            kind = name.split("_", 1)[0]
            where = self._where(name)
            try:
                rendered = self._render(name, SAMPLE[kind])
            except jinja2.TemplateSyntaxError as exc:
                raise OperatorError(f"template {where} line {exc.lineno}: {(exc.message or '').rstrip('.')}: "
                                    "fix it or remove "
                                    "it to use the shipped default") from None
            except jinja2.TemplateError as exc:
                raise OperatorError(f"template {where} does not render: {exc}: the variables it may "
                                    "use are listed in docs/outbound.md") from None
            if name.endswith("_subject.txt") and SAMPLE[kind]["reference"] not in rendered:
                raise OperatorError(f"template {where} leaves out {{{{ reference }}}}: the subject must "
                                    "carry it, or a resident's reply cannot join their enquiry")

    def _where(self, name: str) -> Path:
        if self.directory is not None and (self.directory / name).is_file():
            return self.directory / name
        return SHIPPED / name
