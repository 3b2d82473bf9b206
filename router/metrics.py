"""Prometheus metrics of the router (``frontdoor route --metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROUTED = Counter("frontdoor_routed_total", "Enquiries routed, per department topic", ["department"])
TRIAGED = Counter("frontdoor_triaged_total", "Enquiries sent to triage (below threshold)")
PRIORITY = Counter("frontdoor_priority_total", "Enquiries flagged safeguarding / risk to life")
DEAD_LETTERS = Counter("frontdoor_router_dead_letters_total", "Inbound records dead-lettered", ["reason"])
CLASSIFY_SECONDS = Histogram(
    "frontdoor_classify_seconds", "Time to classify one enquiry",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
CONSUMER_LAG = Gauge("frontdoor_router_consumer_lag", "Inbound records not yet routed", ["partition"])
MODEL_INFO = Gauge("frontdoor_router_model", "The model version routing now (value 1)", ["version"])
