"""``/healthz`` (the process answers) and ``/readyz`` (its database and broker answer)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from tickets.accounts import Permission
from web.console.auth import requires
from web.console.context import ConsoleContext, console_context

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up", dependencies=[requires(Permission.PUBLIC)])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the broker answer",
            dependencies=[requires(Permission.PUBLIC)])
async def readyz(console: ConsoleContext = Depends(console_context)) -> JSONResponse:  # noqa: B008
    def check() -> dict[str, str]:
        results: dict[str, str] = {}
        try:
            with console.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            results["database"] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            results["database"] = f"failing: {exc.__class__.__name__}"
        for name, probe in console.ready_checks.items():
            try:
                results[name] = "ok" if probe() else "failing"
            except Exception as exc:  # a probe that raises is a probe that failed
                results[name] = f"failing: {exc.__class__.__name__}"
        return results

    results = await run_in_threadpool(check)
    ready = all(v == "ok" for v in results.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": results},
                        status_code=200 if ready else 503)
