"""How commands print their figures: one JSON line with ``--json``, aligned lines otherwise."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import typer


def print_figures(result: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    width = max((len(key) for key in result), default=0)
    for key, value in result.items():
        typer.echo(f"{key:>{width}}: {json.dumps(value) if isinstance(value, dict | list) else value}")
