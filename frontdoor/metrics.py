"""The Prometheus endpoint of every stage, named ``frontdoor_<stage>_…``.

``frontdoor web`` serves ``/metrics`` on its own port (the app mounts it); ``route`` and
``relay`` have their own ``--metrics-port`` (FRONTDOOR_METRICS_PORT, 9464, and
FRONTDOOR_INTAKE_RELAY_METRICS_PORT, 9465). The other stages start theirs here, on
``FRONTDOOR_<STAGE>_METRICS_PORT`` (a setting, passed in; 0: off) with these defaults:

=========  ====  =========================================================
stage      port  its own figures
=========  ====  =========================================================
smtp       9466  up, start time, mails answered by outcome
imap       9467  up, start time, mails per mailbox by outcome, connections lost
tickets    9468  up, start time, stored offset per partition (read at scrape)
outbound   9469  up, start time, outbox rows per status (read at scrape)
=========  ====  =========================================================

Every one also carries the client library's process and Python collectors. A port already in
use (a second ticket stage on one host) is a warning, never a reason not to run the stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_STARTED: set[str] = set()


def serve_stage_metrics(stage: str, port: int, *, host: str = "127.0.0.1",
                        collect: Callable[[], Iterable[GaugeMetricFamily]] | None = None) -> int | None:
    """Start the stage's exporter on ``port`` (its setting; 0: off); the port, or None when off
    or the port is taken."""
    if stage not in _STARTED:  # once per process (a test may run a stage's command twice)
        Gauge(f"frontdoor_{stage}_up", f"1 while this {stage} process runs").set(1)
        started = Gauge(f"frontdoor_{stage}_start_time_seconds", f"When this {stage} process started")
        started.set(time.time())
        _STARTED.add(stage)
        if collect is not None:
            REGISTRY.register(_Collected(collect))
    if not port:
        return None
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("%s: metrics not served on %s:%d (%s): set FRONTDOOR_%s_METRICS_PORT", stage, host, port,
                    exc.strerror or exc, stage.upper())
        return None
    log.info("%s: metrics on http://%s:%d/metrics", stage, host, port)
    return port


class _Collected(Collector):
    def __init__(self, collect: Callable[[], Iterable[GaugeMetricFamily]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except Exception as exc:  # a database away must not break the scrape of the rest
            log.warning("metrics collection failed: %s", exc.__class__.__name__)


def tickets_figures(engine: Engine, group: str) -> Callable[[], Iterable[GaugeMetricFamily]]:
    """The ticket stage's stored offsets (the database is its source of truth for them)."""
    def collect() -> Iterable[GaugeMetricFamily]:
        from sqlalchemy import select

        from tickets.models import ConsumerOffset

        family = GaugeMetricFamily("frontdoor_tickets_stored_offset",
                                   "Last offset applied per partition, stored with the work",
                                   labels=["topic", "partition"])
        with engine.connect() as conn:
            for topic, partition, offset in conn.execute(
                    select(ConsumerOffset.topic, ConsumerOffset.partition, ConsumerOffset.offset)
                    .where(ConsumerOffset.group_id == group)):
                family.add_metric([str(topic), str(partition)], float(offset))
        yield family
    return collect


def outbound_figures(engine: Engine) -> Callable[[], Iterable[GaugeMetricFamily]]:
    """Outbox rows per status: ``created`` growing means the sender is behind or stuck."""
    def collect() -> Iterable[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from tickets.outbox import outbox

        family = GaugeMetricFamily("frontdoor_outbound_outbox_rows", "Outbox rows per status",
                                   labels=["status"])
        with engine.connect() as conn:
            rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
            for status, count in rows:
                family.add_metric([str(status)], float(count))
        yield family
    return collect
