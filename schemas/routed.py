"""What the router puts on ``frontdoor.dept.<id>`` and ``frontdoor.triage``, and the events
it puts on ``frontdoor.events``: the inbound message untouched, plus the routing decision."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from pydantic import Field

from schemas.inbound import InboundMessage, _Wire

ROUTED_SCHEMA_VERSION = 1
EVENT_SCHEMA_VERSION = 1


class FoundEntity(_Wire):
    label: str  # POSTCODE, PHONE, EMAIL, REFERENCE, DATE, VEHICLE_REG
    text: str
    start: int
    end: int


class StatutoryClock(_Wire):
    kind: Literal["foi", "sar"]
    started: date
    due: date  # in UK (England and Wales) working days where the law counts them


class Routing(_Wire):
    """Where an enquiry went and why."""

    department: str  # the main department
    departments: list[str]  # every department topic it was sent to (may be empty: triage only)
    triage: bool  # also (or only) on frontdoor.triage for a human
    priority: bool = False  # safeguarding / risk to life: a human sees it first
    confidence: float = Field(ge=0.0, le=1.0)
    scores: dict[str, float] = Field(default_factory=dict)  # the top departments, calibrated
    enquiry_type: str = "general"
    flags: list[str] = Field(default_factory=list)
    entities: list[FoundEntity] = Field(default_factory=list)
    model_version: str
    explanation: list[str] = Field(default_factory=list)  # what in the text decided it
    rules: list[str] = Field(default_factory=list)  # the routing rules that fired
    statutory_clock: StatutoryClock | None = None
    routed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    replayed: bool = False


class RoutedMessage(_Wire):
    schema_version: int = ROUTED_SCHEMA_VERSION
    message: InboundMessage
    routing: Routing


EventKind = Literal["routed", "rerouted", "member_enquiry", "statutory_clock_started"]


class RoutingEvent(_Wire):
    """One line of the routing audit trail on ``frontdoor.events``.

    ``routed`` records every live decision (replay compares against it); ``rerouted`` says a
    replay with another model changed a decision, so ticket consumers can move open tickets.
    """

    schema_version: int = EVENT_SCHEMA_VERSION
    kind: EventKind
    message_id: str
    dedupe_key: str
    reference: str | None = None
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    departments: list[str] = Field(default_factory=list)
    triage: bool = False
    previous_departments: list[str] | None = None
    model_version: str = ""
    reason: str = ""
    statutory_clock: StatutoryClock | None = None
