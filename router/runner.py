"""Runs a router process: a member of the router consumer group, routing with Kafka
transactions, exposing metrics, and loading a new model version without dropping messages."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import start_http_server

from classifiers.base import Classifier
from ingest.admin import ensure_topics
from ingest.transactional import TransactionalLoop
from router import metrics
from router.policy import RoutingPolicy
from router.service import Router, RouterTopics
from schemas.topics import CORE_TOPICS, TopicSpec, department_topics

log = logging.getLogger(__name__)

GROUP_ID = "frontdoor-router"


@dataclass(frozen=True)
class ModelSource:
    """Where models come from: ``current()`` names the version that should route now,
    ``load(version)`` loads it. The registry fills this; tests may pass their own."""

    current: Callable[[], str]
    load: Callable[[str], Classifier]


@dataclass
class RunStats:
    processed: int = 0
    dead_lettered: int = 0
    first_at: float | None = None  # wall-clock time of the first and last routed batch
    last_at: float | None = None
    model_version: str = ""
    reloads: int = 0


def router_topic_specs(topics: RouterTopics, departments: Sequence[str]) -> list[TopicSpec]:
    return [TopicSpec(topics.prefix + spec.name, spec.partitions, spec.key, spec.retention_ms, spec.purpose)
            for spec in (*CORE_TOPICS, *department_topics(tuple(departments)))]


class RouterProcess:
    def __init__(
        self,
        bootstrap: str,
        models: ModelSource,
        policy: RoutingPolicy,
        departments: Sequence[str],
        *,
        topics: RouterTopics | None = None,
        group_id: str = GROUP_ID,
        transactional_id: str | None = None,
        pinned_version: str | None = None,
        reload_interval_s: float = 10.0,
        max_poll_records: int = 200,
    ) -> None:
        self.topics = topics or RouterTopics()
        self.models = models
        self.policy = policy
        self.pinned_version = pinned_version
        self.reload_interval_s = reload_interval_s
        self.stats = RunStats()
        ensure_topics(bootstrap, router_topic_specs(self.topics, departments))
        version = pinned_version or models.current()
        self.router = Router(models.load(version), policy, self.topics)
        self.stats.model_version = self.router.classifier.version
        self.loop = TransactionalLoop(
            bootstrap, [self.topics.inbound], group_id, self.router.transform, stage="router",
            dlq_topic=self.topics.dlq, transactional_id=transactional_id,
            max_poll_records=max_poll_records, on_batch=self._on_batch,
            on_dead_letter=lambda reason: metrics.DEAD_LETTERS.labels(reason=reason).inc(),
        )
        self._stop = threading.Event()
        self._last_lag = 0.0

    def _on_batch(self, count: int, seconds: float) -> None:
        now = time.time()
        if self.stats.first_at is None:
            self.stats.first_at = now - seconds
        self.stats.last_at = now
        if now - self._last_lag > 5:
            self._last_lag = now
            for tp, lag in self.loop.lag().items():
                metrics.CONSUMER_LAG.labels(partition=str(tp.partition)).set(lag)

    def _watch_models(self) -> None:
        """Load a new current version in the background and swap it in between batches."""
        while not self._stop.wait(self.reload_interval_s):
            try:
                wanted = self.models.current()
                if wanted == self.router.classifier.version:
                    continue
                log.info("router: loading model %s (routing with %s meanwhile)", wanted,
                         self.router.classifier.version)
                self.reload(wanted)
            except Exception as exc:  # a broken model must not stop routing with the good one
                log.error("router: could not load the new model, keeping %s: %s",
                          self.router.classifier.version, exc)

    def reload(self, version: str) -> None:
        fresh = Router(self.models.load(version), self.policy, self.topics)
        metrics.MODEL_INFO.labels(version=self.router.classifier.version).set(0)
        self.router = fresh
        self.loop.set_transform(fresh.transform)
        self.stats.model_version = version
        self.stats.reloads += 1
        log.info("router: now routing with model %s", version)

    def run(self, *, idle_timeout_s: float | None = None, metrics_port: int | None = None,
            metrics_host: str = "127.0.0.1") -> RunStats:
        if metrics_port:
            start_http_server(metrics_port, addr=metrics_host)
            log.info("router: metrics on http://%s:%d/metrics", metrics_host, metrics_port)
        watcher = None
        if self.pinned_version is None and self.reload_interval_s > 0:
            watcher = threading.Thread(target=self._watch_models, name="model-watcher", daemon=True)
            watcher.start()
        log.info("router %s: routing %s with model %s", self.loop.transactional_id, self.topics.inbound,
                 self.router.classifier.version)
        try:
            self.loop.run(idle_timeout_s=idle_timeout_s)
        finally:
            self._stop.set()
        self.stats.processed = self.loop.processed
        self.stats.dead_lettered = self.loop.dead_lettered
        return self.stats

    def install_signal_handlers(self) -> None:
        self.loop.install_signal_handlers()
