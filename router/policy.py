"""Routing rules combined with the model: the decision for one enquiry.

The model's calibrated scores are the evidence; rules adjust and extend them rather than
replace them:

- the department mailbox a mail was sent to (or the web form's topic) is a prior: it
  multiplies that department's odds by ``hint_weight``, so a clear text still wins against
  a wrong inbox;
- below the department's threshold the enquiry goes to triage for a human;
- safeguarding / risk-to-life flags make it a priority: it goes to the department and to
  triage, however sure the model is (a misrouted safeguarding report must still reach someone
  who can act today), never only to triage;
- the other departments the text clearly involves get a copy;
- member enquiries are tracked for members' services; FOI requests and SARs start their
  statutory clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from classifiers.base import Prediction
from router.clocks import foi_due, sar_due
from schemas.inbound import InboundMessage
from schemas.routed import FoundEntity, Routing, StatutoryClock

LONDON = ZoneInfo("Europe/London")
PRIORITY_FLAGS = frozenset({"safeguarding", "risk_to_life"})


@dataclass(frozen=True)
class RoutingPolicy:
    thresholds: Mapping[str, float] = field(default_factory=dict)  # per department, from the taxonomy
    default_threshold: float = 0.5
    hint_weight: float = 4.0
    top_scores: int = 3

    def threshold(self, department: str) -> float:
        return self.thresholds.get(department, self.default_threshold)


def decide(message: InboundMessage, prediction: Prediction, policy: RoutingPolicy) -> Routing:
    rules: list[str] = []
    scores = dict(prediction.scores) or {prediction.department: prediction.confidence}
    hints = [h for h in _hints(message) if h in scores]
    if hints and policy.hint_weight != 1.0:
        scores = _with_prior(scores, hints, policy.hint_weight)
        rules.append(f"mailbox prior: sent to {', '.join(hints)}")
    department = max(scores, key=lambda d: (scores[d], d))
    confidence = scores[department]
    if department != prediction.department:
        rules.append(f"prior changed the model's {prediction.department} to {department}")

    threshold = policy.threshold(department)
    if department == prediction.department:
        # the classifier's own threshold for its department (the taxonomy's, raised where the
        # model card measured it needs more): what `classify` and `evaluate` report is what routes
        threshold = max(threshold, prediction.threshold)
    unsure = confidence < threshold
    priority = bool(PRIORITY_FLAGS & set(prediction.flags))
    # A safeguarding report the model put in the wrong department must still reach someone
    # who can act today: it goes to the department and to triage, however sure the model is.
    triage = unsure or priority
    departments: list[str] = []
    if unsure:
        rules.append(f"confidence {confidence:.2f} below {department}'s threshold {threshold:.2f}: triage")
    if not unsure or priority:
        departments.append(department)
    if priority:
        rules.append("safeguarding: priority, to the department and to triage")
    for other in prediction.also:
        if other != department and other not in departments and (not unsure or priority):
            departments.append(other)
            rules.append(f"also involves {other}")

    clock = _statutory_clock(message, prediction.enquiry_type)
    if clock is not None:
        rules.append(f"{clock.kind.upper()} clock started: due {clock.due.isoformat()}")
    if prediction.enquiry_type == "member_enquiry":
        rules.append("member enquiry: tracked for members' services")

    top = sorted(scores.items(), key=lambda item: -item[1])[: policy.top_scores]
    return Routing(
        department=department,
        departments=departments,
        triage=triage,
        priority=priority,
        confidence=round(confidence, 4),
        scores={d: round(p, 4) for d, p in top},
        enquiry_type=prediction.enquiry_type,
        flags=list(prediction.flags),
        entities=[FoundEntity(label=e.label, text=e.text, start=e.start, end=e.end)
                  for e in prediction.entities],
        model_version=prediction.model_version,
        explanation=list(prediction.explanation),
        rules=rules,
        statutory_clock=clock,
    )


def _hints(message: InboundMessage) -> list[str]:
    """The departments the resident addressed: the mailbox's configured department, the form's
    topic, or department mailboxes named after a department id (``waste@council…``)."""
    source = message.source
    if source.department_hint or source.topic_hint:
        return [source.department_hint or source.topic_hint or ""]
    local_parts = (box.split("@", 1)[0].strip().lower().replace("-", "_") for box in source.mailboxes)
    return list(dict.fromkeys(part for part in local_parts if part))


def _with_prior(scores: Mapping[str, float], hints: list[str], weight: float) -> dict[str, float]:
    weighted = {d: p * (weight if d in hints else 1.0) for d, p in scores.items()}
    # The share of departments the model knows but the taxonomy lacks stays in the total:
    # a prior sharpens the model's view, it must not hand that share to a hinted department.
    missing = max(0.0, 1.0 - sum(scores.values()))
    total = (sum(weighted.values()) + missing) or 1.0
    return {d: p / total for d, p in weighted.items()}


def _statutory_clock(message: InboundMessage, enquiry_type: str) -> StatutoryClock | None:
    received = message.received_at.astimezone(LONDON).date()  # the council's calendar day
    if enquiry_type == "foi":
        return StatutoryClock(kind="foi", started=received, due=foi_due(received))
    if enquiry_type == "sar":
        return StatutoryClock(kind="sar", started=received, due=sar_due(received))
    return None
