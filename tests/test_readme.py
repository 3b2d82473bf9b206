"""The README is the operator's manual: it must match the code it describes."""

from __future__ import annotations

import re

from typer.main import get_command

from frontdoor.cli import app
from frontdoor.settings import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = set(re.findall(r"^\| `(FRONTDOOR_[A-Z0-9_]+)` \|", README, re.MULTILINE))
    fields = {f"FRONTDOOR_{name.upper()}" for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from the README's configuration table"
    assert documented - fields == set(), "the README documents settings the code does not read"


def test_every_command_is_in_the_readme() -> None:
    group = get_command(app)
    names = getattr(group, "commands", {})
    assert names, "the CLI has no commands"
    for name in names:
        assert f"frontdoor {name}" in README, f"'frontdoor {name}' is not described in the README"
