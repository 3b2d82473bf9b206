"""The staff console: queues, the ticket page, search, sign-in; one module per area.

:func:`mount` adds its routers, error pages and health checks to the app ``web.app`` builds;
``frontdoor/`` passes a ready :class:`ConsoleContext` (no settings are read here).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from web.console import auth, health
from web.console.context import ConsoleContext

__all__ = ["ConsoleContext", "mount"]


def mount(app: FastAPI, console: ConsoleContext) -> None:
    app.state.console = console
    app.include_router(auth.router)
    app.include_router(health.router)
    for area in _areas():
        app.include_router(area)
    for exc_class, handler in auth.error_handlers().items():
        app.add_exception_handler(exc_class, handler)


def _areas() -> list[APIRouter]:
    from web.console import dashboard, queues, report, residents, tickets

    return [queues.router, tickets.router, residents.router, dashboard.router, report.router]
