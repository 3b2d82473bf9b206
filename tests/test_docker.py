"""docker/ cannot run here (no container engine), so keep it honest: every command it runs
exists in the CLI, every FRONTDOOR_ setting it sets is a real setting, every path it copies exists."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from frontdoor.cli import app
from frontdoor.settings import Settings
from tests.conftest import ROOT

DOCKER = ROOT / "docker"


def _services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _frontdoor_services() -> list[str]:
    return [name for name, svc in _services().items() if "command" in svc and "build" in svc]


def test_compose_runs_kafka_postgres_and_every_stage() -> None:
    services = _services()
    assert {"kafka", "postgres"} <= services.keys()
    stages = {svc["command"][0] for name, svc in services.items() if name in _frontdoor_services()}
    assert {"web", "smtp", "imap", "route", "tickets"} <= stages
    # the ticket stage refuses a database behind the code: migrations run first, to completion
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["tickets"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", _frontdoor_services())
def test_every_command_compose_names_exists(service: str) -> None:
    command = _services()[service]["command"]
    words = next((command[:i] for i, arg in enumerate(command) if arg.startswith("--")), command)
    name = " ".join(words)  # the (sub)command, e.g. 'tickets sweep-clocks'
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"docker/compose.yaml runs 'frontdoor {name}', which does not exist"
    for option in (arg for arg in command if arg.startswith("--")):
        assert option in result.output, f"'frontdoor {name}' has no {option}"


def test_every_setting_compose_sets_is_a_real_setting() -> None:
    known = {f"FRONTDOOR_{name.upper()}" for name in Settings.model_fields}
    for name, svc in _services().items():
        for variable in svc.get("environment", {}):
            if variable.startswith("FRONTDOOR_"):
                assert variable in known, f"{name} sets {variable}, which Settings does not read"


def test_dockerfile_copies_every_package_and_nothing_missing() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, re.MULTILINE)
    sources = {src for line in copied for src in line.split()}
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the tree"
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r'^include = \[(.*)\]$', pyproject, re.MULTILINE)
    assert packages is not None
    for package in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert package in sources, f"the Dockerfile does not copy the {package} package"


def test_the_example_mailbox_config_is_what_the_poller_reads() -> None:
    from connectors.imap_poller import load_imap_config

    config = load_imap_config(DOCKER / "mailboxes.example.toml")
    assert [m.department for m in config.mailboxes] == ["waste", "housing"]
    assert "mailboxes.toml" in (DOCKER / "compose.yaml").read_text()
