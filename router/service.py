"""The router: ``frontdoor.inbound`` → ``frontdoor.dept.<id>`` / ``frontdoor.triage``.

``Router.transform`` turns one inbound record into its outputs; ``TransactionalLoop`` (in
ingest/) runs it so that outputs and the consumed offset commit in one Kafka transaction.
A record that is not a readable canonical message raises ``PoisonMessageError`` and goes to
the dead-letter topic inside the same transaction, so the partition keeps flowing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from classifiers.base import Classifier
from ingest.bus import Record
from ingest.errors import PoisonMessageError
from ingest.serde import decode_inbound
from ingest.transactional import Output
from router import metrics
from router.policy import RoutingPolicy, decide
from schemas.inbound import InboundMessage
from schemas.routed import RoutedMessage, Routing, RoutingEvent
from schemas.topics import DEPARTMENT_PREFIX, DLQ, EVENTS, INBOUND, SHADOW, TRIAGE


@dataclass(frozen=True)
class RouterTopics:
    """The topics the router reads and writes; a prefix keeps tests and benchmarks apart."""

    inbound: str = INBOUND
    triage: str = TRIAGE
    dlq: str = DLQ
    events: str = EVENTS
    shadow: str = SHADOW
    department_prefix: str = DEPARTMENT_PREFIX
    prefix: str = ""  # what every name above starts with

    @classmethod
    def prefixed(cls, prefix: str) -> RouterTopics:
        return cls(inbound=prefix + INBOUND, triage=prefix + TRIAGE, dlq=prefix + DLQ, events=prefix + EVENTS,
                   shadow=prefix + SHADOW, department_prefix=prefix + DEPARTMENT_PREFIX, prefix=prefix)

    def department(self, department_id: str) -> str:
        return self.department_prefix + department_id


class Router:
    """Classifies an enquiry and says where it goes. Pure apart from the metrics."""

    def __init__(self, classifier: Classifier, policy: RoutingPolicy, topics: RouterTopics) -> None:
        self.classifier = classifier
        self.policy = policy
        self.topics = topics
        metrics.MODEL_INFO.labels(version=classifier.version).set(1)

    def route(self, message: InboundMessage) -> Routing:
        started = time.perf_counter()
        prediction = self.classifier.classify(message)
        metrics.CLASSIFY_SECONDS.observe(time.perf_counter() - started)
        return decide(message, prediction, self.policy)

    def transform(self, record: Record) -> list[Output]:
        try:
            message = decode_inbound(record.value)
        except PoisonMessageError as exc:
            metrics.DEAD_LETTERS.labels(reason=exc.reason).inc()
            raise
        if message.automation != "none":
            # Out-of-office replies and bounces never open tickets: audit only.
            return [self.event_output(record, message, _automation_routing(message, self.classifier.version))]
        routing = self.route(message)
        return self.outputs(record, message, routing)

    def outputs(self, record: Record, message: InboundMessage, routing: Routing,
                *, kind: str = "routed", previous: list[str] | None = None, reason: str = "") -> list[Output]:
        value = RoutedMessage(message=message, routing=routing).model_dump_json(exclude_none=True).encode()
        headers = {
            "x-model-version": routing.model_version.encode(),
            "x-enquiry-type": routing.enquiry_type.encode(),
            "x-priority": b"1" if routing.priority else b"0",
        }
        outputs = [Output(self.topics.department(d), value, record.key, headers) for d in routing.departments]
        if routing.triage:
            outputs.append(Output(self.topics.triage, value, record.key, headers))
        outputs.append(self.event_output(record, message, routing, kind=kind, previous=previous,
                                         reason=reason))
        if routing.enquiry_type == "member_enquiry":
            outputs.append(self.event_output(record, message, routing, kind="member_enquiry"))
        if routing.statutory_clock is not None:
            outputs.append(self.event_output(record, message, routing, kind="statutory_clock_started"))
        for department in routing.departments:
            metrics.ROUTED.labels(department=department).inc()
        if routing.triage:
            metrics.TRIAGED.inc()
        if routing.priority:
            metrics.PRIORITY.inc()
        return outputs

    def event_output(self, record: Record, message: InboundMessage, routing: Routing, *,
                     kind: str = "routed", previous: list[str] | None = None, reason: str = "") -> Output:
        event = RoutingEvent(
            kind=kind,  # type: ignore[arg-type]
            message_id=message.id,
            dedupe_key=message.dedupe_key,
            reference=message.reference,
            departments=routing.departments,
            triage=routing.triage,
            previous_departments=previous,
            model_version=routing.model_version,
            reason=reason or "; ".join(routing.rules),
            statutory_clock=routing.statutory_clock if kind == "statutory_clock_started" else None,
        )
        key = (message.reference or message.id).encode()
        return Output(self.topics.events, event.model_dump_json(exclude_none=True).encode(), key)


def _automation_routing(message: InboundMessage, version: str) -> Routing:
    return Routing(department="", departments=[], triage=False, confidence=1.0, model_version=version,
                   rules=[f"{message.automation.value}: never opens a ticket"])
