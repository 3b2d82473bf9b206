"""A test double for the ``Classifier`` port: keyword rules, deterministic, instant.

Router tests are about delivery (transactions, crashes, rebalances, replay); they use this
so that they do not depend on the shipped model's exact scores. One test routes with the
real shipped model too (tests/router/test_route_command.py).
"""

from __future__ import annotations

from classifiers.base import Prediction
from schemas.inbound import InboundMessage

DEPARTMENTS = ("waste", "highways", "parking", "housing", "customer_services")
KEYWORDS = {"bin": "waste", "pothole": "highways", "parked": "parking", "damp": "housing"}


class KeywordClassifier:
    def __init__(self, version: str = "kw-1", keywords: dict[str, str] | None = None) -> None:
        self.version = version
        self.keywords = KEYWORDS if keywords is None else keywords

    def classify(self, message: InboundMessage) -> Prediction:
        return self.classify_text(message.text_for_routing)

    def classify_text(self, text: str) -> Prediction:
        lowered = text.lower()
        hits = [dept for word, dept in self.keywords.items() if word in lowered]
        if hits:
            top = hits[0]
            rest = (1 - 0.9) / (len(DEPARTMENTS) - 1)
            scores = {d: (0.9 if d == top else rest) for d in DEPARTMENTS}
        else:
            scores = {d: 1 / len(DEPARTMENTS) for d in DEPARTMENTS}
            top = "customer_services"
        flags = ("safeguarding",) if "scared" in lowered else ()
        kind = "foi" if "freedom of information" in lowered else (
            "member_enquiry" if "councillor" in lowered else "service_request")
        return Prediction(department=top, confidence=scores[top], scores=scores, enquiry_type=kind,
                          flags=flags, model_version=self.version, explanation=tuple(hits),
                          threshold=0.5, also=tuple(dict.fromkeys(hits[1:])))
