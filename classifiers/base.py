"""The port the router sees: ``Classifier.classify(message) -> Prediction``.

The router never imports spaCy; it only knows this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from schemas.inbound import InboundMessage


@dataclass(frozen=True, slots=True)
class Entity:
    """Something a rule found in the text: POSTCODE, PHONE, EMAIL, REFERENCE, DATE, VEHICLE_REG."""

    label: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the classifier thinks of one enquiry.

    ``scores`` are calibrated probabilities over every department in the taxonomy (they sum
    to 1, less the share of any department the model knows but the taxonomy lacks, which is
    never named); ``confidence`` is the top one. ``threshold`` is that department's threshold from
    the taxonomy config: below it the enquiry is for triage. ``also`` names other departments
    the text clearly involves too (several topics in one message).
    """

    department: str
    confidence: float
    scores: Mapping[str, float]
    enquiry_type: str
    flags: tuple[str, ...] = ()
    entities: tuple[Entity, ...] = ()
    model_version: str = ""
    explanation: tuple[str, ...] = ()
    threshold: float = 0.5
    also: tuple[str, ...] = field(default_factory=tuple)

    @property
    def needs_triage(self) -> bool:
        return self.confidence < self.threshold


class Classifier(Protocol):
    """Routes an enquiry. ``version`` names the model (registry version) that answered."""

    version: str

    def classify(self, message: InboundMessage) -> Prediction: ...

    def classify_text(self, text: str) -> Prediction: ...
