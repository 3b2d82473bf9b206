"""Every topic Frontdoor uses, declared once with its key and partition count."""

from __future__ import annotations

from dataclasses import dataclass

INBOUND = "frontdoor.inbound"
TRIAGE = "frontdoor.triage"
DLQ = "frontdoor.dlq"
EVENTS = "frontdoor.events"
OUTBOUND = "frontdoor.outbound"
SHADOW = "frontdoor.shadow"
DEPARTMENT_PREFIX = "frontdoor.dept."


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str  # what the record key is, so ordering holds where it matters
    retention_ms: int | None = None  # None: the broker's default
    purpose: str = ""


WEEK_MS = 7 * 24 * 3600 * 1000

CORE_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(INBOUND, 6, "sender identity (email or E.164 phone)", 30 * 24 * 3600 * 1000,
              "every channel's canonical messages; retained for replay"),
    TopicSpec(TRIAGE, 3, "sender identity", None, "below the confidence threshold: for a human"),
    TopicSpec(DLQ, 1, "original key", 90 * 24 * 3600 * 1000,
              "records that could not be processed, with x-error-* headers"),
    TopicSpec(EVENTS, 3, "ticket reference", None, "corrections, status changes, re-routes"),
    TopicSpec(OUTBOUND, 3, "recipient", None, "replies and acknowledgements to send"),
    TopicSpec(SHADOW, 1, "message id", WEEK_MS,
              "shadow replays: a candidate model's decisions beside the live ones; read by no stage"),
)


def min_insync_replicas(replication_factor: int) -> int:
    """A majority of the replicas must hold a record before ``acks=all`` is satisfied.

    With replication factor 3 that is 2: one broker may be down and writes go on, yet an
    acknowledged record is always on two disks. Below 3 (the local single node) it stays 1,
    or a single broker could never accept a write.
    """
    return 1 if replication_factor < 3 else replication_factor // 2 + 1


def topic_configs(spec: TopicSpec, replication_factor: int) -> dict[str, str]:
    """The topic-level configs a topic is created with on a cluster of this replication."""
    configs: dict[str, str] = {}
    if spec.retention_ms:
        configs["retention.ms"] = str(spec.retention_ms)
    if replication_factor >= 3:
        configs["min.insync.replicas"] = str(min_insync_replicas(replication_factor))
    return configs


def department_topic(department_id: str) -> str:
    return f"{DEPARTMENT_PREFIX}{department_id}"


def department_topics(department_ids: list[str] | tuple[str, ...]) -> tuple[TopicSpec, ...]:
    """Department topics come from the taxonomy in configuration, never from code."""
    return tuple(
        TopicSpec(department_topic(d), 3, "sender identity", None, f"routed to {d}")
        for d in department_ids
    )
