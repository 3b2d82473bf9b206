"""``frontdoor replay``: re-run routing over the retained inbound stream with another model.

The live decisions are the ``routed`` / ``rerouted`` events on ``frontdoor.events`` (the
router writes one per message in the same transaction as the routed records). In shadow
mode the candidate's decisions go to ``frontdoor.shadow`` beside the live ones and nothing
downstream is touched; the report says how often the two agree, per department. Without
shadow, each changed decision is routed again (marked ``replayed``) with a ``rerouted``
event saying why, so ticket consumers can move open tickets; a second replay of the same
window with the same model then changes nothing.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ingest.bus import KafkaProducerClient, read_window
from ingest.errors import PoisonMessageError
from ingest.serde import decode_inbound
from router.service import Router
from schemas.routed import RoutingEvent

LiveDecision = tuple[tuple[str, ...], bool, str]  # departments, triage, model version


@dataclass
class ReplayReport:
    model_version: str
    shadow: bool
    messages: int = 0
    compared: int = 0  # messages with a live decision to compare against
    agreed: int = 0
    changed: int = 0
    republished: int = 0
    unreadable: int = 0
    automated: int = 0
    per_department: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def agreement(self) -> float | None:
        return round(self.agreed / self.compared, 4) if self.compared else None

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "per_department"}
        data["agreement"] = self.agreement
        data["per_department"] = self.per_department
        return data


def live_decisions(bootstrap: str, events_topic: str, start_ms: int) -> dict[str, LiveDecision]:
    """The latest routing decision per message id, from the audit events since ``start_ms``."""
    decisions: dict[str, LiveDecision] = {}
    for record in read_window(bootstrap, events_topic, start_ms=start_ms):
        try:
            event = RoutingEvent.model_validate_json(record.value or b"")
        except ValueError:
            continue
        if event.kind in ("routed", "rerouted"):
            decisions[event.message_id] = (tuple(event.departments), event.triage, event.model_version)
    return decisions


def replay(bootstrap: str, router: Router, *, start_ms: int, end_ms: int | None, shadow: bool,
           progress: bool = True) -> ReplayReport:
    topics = router.topics
    report = ReplayReport(model_version=router.classifier.version, shadow=shadow)
    live = live_decisions(bootstrap, topics.events, start_ms)
    producer = KafkaProducerClient(bootstrap)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # live department -> [n, agreed]
    try:
        for record in read_window(bootstrap, topics.inbound, start_ms=start_ms, end_ms=end_ms):
            report.messages += 1
            if progress and report.messages % 500 == 0:
                print(f"replay: {report.messages} messages", file=sys.stderr)
            try:
                message = decode_inbound(record.value)
            except PoisonMessageError:
                report.unreadable += 1  # already in the dead-letter topic from the live run
                continue
            if message.automation != "none":
                report.automated += 1
                continue
            routing = router.route(message).model_copy(update={"replayed": True})
            candidate = (tuple(routing.departments), routing.triage)
            before = live.get(message.id)
            agrees = before is not None and before[:2] == candidate
            if before is not None:
                report.compared += 1
                report.agreed += agrees
                counts = tally[before[0][0] if before[0] else "triage"]
                counts[0] += 1
                counts[1] += agrees
            if shadow:
                report.changed += before is not None and not agrees
                row = {"message_id": message.id, "live": _describe(before), "candidate": {
                    "departments": list(candidate[0]), "triage": candidate[1],
                    "model_version": routing.model_version}, "agree": agrees}
                producer.send(topics.shadow, json.dumps(row).encode(), message.id.encode(), wait=False)
                continue
            if before is not None and agrees:
                continue
            report.changed += 1
            reason = (f"replay with model {routing.model_version}: "
                      f"{_describe(before)['departments'] if before else 'never routed'} → "
                      f"{list(candidate[0]) or ['triage']}")
            for out in router.outputs(record, message, routing, kind="rerouted",
                                      previous=list(before[0]) if before else None, reason=reason):
                producer.send(out.topic, out.value, out.key, out.headers, wait=False)
                report.republished += 1
        producer.flush()
    finally:
        producer.close()
    report.per_department = {
        dept: {"n": n, "agreed": agreed, "agreement": round(agreed / n, 4)}
        for dept, (n, agreed) in sorted(tally.items())
    }
    return report


def _describe(decision: LiveDecision | None) -> dict[str, Any]:
    if decision is None:
        return {"departments": None, "triage": None, "model_version": None}
    return {"departments": list(decision[0]), "triage": decision[1], "model_version": decision[2]}
