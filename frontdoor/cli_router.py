"""``frontdoor route``, ``frontdoor replay`` and ``frontdoor bench route``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import typer

from frontdoor.output import print_figures
from frontdoor.settings import load_settings
from schemas.errors import OperatorError

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, *, now: datetime | None = None) -> int:
    """Epoch milliseconds from ISO 8601 (``2026-11-20``, ``2026-11-20T09:30``; UTC unless it
    says otherwise), ``now``, or an age such as ``90m``, ``6h``, ``3d``, ``2w``."""
    now = now or datetime.now(UTC)
    text = value.strip().lower()
    if text == "now":
        return int(now.timestamp() * 1000)
    relative = _RELATIVE.match(text)
    try:
        if relative:
            moment = now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        else:
            moment = datetime.fromisoformat(value.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        millis = int(moment.timestamp() * 1000)
    except ValueError:
        raise OperatorError(f"cannot read the time {value!r}: use ISO 8601 (2026-11-20T09:30) "
                            "or an age like 6h or 3d") from None
    except OverflowError:
        millis = -1
    if millis < 0:
        raise OperatorError(f"cannot read the time {value!r}: out of range, it must be after 1970 "
                            "(ISO 8601 like 2026-11-20T09:30, or an age like 6h or 3d)")
    return millis


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command("route")
    def route(
        group: str = typer.Option("frontdoor-router", help="Consumer group; routers in one group share "
                                  "the inbound partitions."),
        instance: str = typer.Option("", help="Stable instance name (transactional id); default: unique "
                                     "per process."),
        model: str = typer.Option("", "--model", help="Pin a model version; default: the registry's "
                                  "current one, reloaded when it changes."),
        metrics_port: int = typer.Option(None, min=0, max=65535,
                                         help="Prometheus metrics port, 0: off (FRONTDOOR_METRICS_PORT)."),
        metrics_host: str = typer.Option("127.0.0.1", help="Address the metrics endpoint listens on."),
        reload_interval: float = typer.Option(10.0, help="Seconds between checks for a new current model."),
        topic_prefix: str = typer.Option("", hidden=True, help="Prefix every topic (tests, benchmarks)."),
        exit_when_idle: float = typer.Option(0.0, hidden=True, help="Leave after this many idle seconds."),
    ) -> None:
        """Route frontdoor.inbound to department topics and triage (exactly-once, by transactions)."""
        import dataclasses

        from threadpoolctl import threadpool_limits

        from classifiers.taxonomy import load_taxonomy
        from frontdoor import wiring
        from router.runner import RouterProcess
        from router.service import RouterTopics

        settings = load_settings()
        taxonomy = load_taxonomy(settings.taxonomy)
        if model:
            wiring.model_registry(settings).path_for(model)  # a mistyped version fails before Kafka is asked
        address = wiring.connect(settings)
        process = RouterProcess(
            address, wiring.model_source(settings), wiring.routing_policy(taxonomy), taxonomy.ids,
            topics=RouterTopics.prefixed(topic_prefix), group_id=topic_prefix + group,
            transactional_id=f"{topic_prefix}{group}-{instance}" if instance else None,
            pinned_version=model or None, reload_interval_s=reload_interval,
        )
        process.install_signal_handlers()
        port = settings.metrics_port if metrics_port is None else metrics_port
        # one router is one core's work (the inbound partitions spread the load over routers): NumPy's
        # BLAS threads would fight the broker and the other routers for the cores (measured: 92 / 122
        # routed per second with one / two routers on 2 cores, 67 / 66 without the limit)
        with threadpool_limits(1):
            stats = process.run(idle_timeout_s=exit_when_idle or None, metrics_port=port or None,
                                metrics_host=metrics_host)
        typer.echo(json.dumps(dataclasses.asdict(stats)))

    @app.command("replay")
    def replay_command(
        start: str = typer.Option(..., "--from", help="Start of the window: ISO 8601 or an age (6h, 3d)."),
        end: str = typer.Option("", "--to", help="End of the window (default: now)."),
        model: str = typer.Option(..., "--model", help="The model version to route with."),
        shadow: bool = typer.Option(False, "--shadow", help="Compare only: write to frontdoor.shadow, "
                                    "touch nothing downstream."),
        topic_prefix: str = typer.Option("", hidden=True, help="Prefix every topic (tests)."),
    ) -> None:
        """Re-run routing over the retained inbound stream; report agreement with the live decisions."""
        from classifiers.taxonomy import load_taxonomy
        from frontdoor import wiring
        from router.replay import replay
        from router.service import Router, RouterTopics

        settings = load_settings()
        start_ms = parse_time(start)
        end_ms = parse_time(end) if end else None
        if end_ms is not None and end_ms < start_ms:
            raise OperatorError("--to is before --from")
        if start_ms > parse_time("now"):
            raise OperatorError("--from is in the future: nothing has arrived there yet")
        router = Router(wiring.model_source(settings).load(model),
                        wiring.routing_policy(load_taxonomy(settings.taxonomy)),
                        RouterTopics.prefixed(topic_prefix))
        address = wiring.connect(settings)
        report = replay(address, router, start_ms=start_ms, end_ms=end_ms, shadow=shadow)
        typer.echo(json.dumps(report.as_dict()))

    @bench_app.command("route")
    def bench_route(
        messages: int = typer.Option(3000, "--messages", "-n", help="Inbound messages to route."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    ) -> None:
        """Routed messages per second with one and two router processes, beside the classifier's
        own documents per second in the same run."""
        from frontdoor import wiring
        from frontdoor.bench_route import run_route_bench

        settings = load_settings()
        address = wiring.connect(settings, start_local=True)
        result = run_route_bench(address, settings, messages)
        print_figures(result, as_json)
