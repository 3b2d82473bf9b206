"""What the console's routes need, built once by ``frontdoor/`` (explicit wiring, no globals)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.engine import Engine

from schemas.blobs import BlobStore
from tickets.accounts import AccountStore
from tickets.outbox import OutboxPolicy
from web.security import CsrfGuard


@dataclass
class ConsoleContext:
    """``engine`` is the tickets database; ``scoping`` limits officers to their departments;
    ``departments`` is the taxonomy (ids and names) for moves and filters; ``ready_checks``
    answer /readyz (name → raises or returns False when not ready)."""

    accounts: AccountStore
    engine: Engine
    blobs: BlobStore
    csrf: CsrfGuard
    departments: Mapping[str, str] = field(default_factory=dict)
    scoping: bool = True
    secure_cookies: bool = False
    ready_checks: Mapping[str, Callable[[], bool]] = field(default_factory=dict)
    outbox: OutboxPolicy | None = None
    counts_memo: dict[Any, tuple[float, dict[str, int]]] = field(default_factory=dict)  # queues' counts
    client_address: Callable[[Request], str] = field(
        default=lambda request: request.client.host if request.client else "unknown")

    def client(self, request: Request) -> str:
        return self.client_address(request)

    def department_name(self, department: str | None) -> str:
        if not department:
            return "Triage"
        return self.departments.get(department) or department.replace("_", " ").capitalize()


def console_context(request: Request) -> ConsoleContext:
    console: ConsoleContext = request.app.state.console
    return console
