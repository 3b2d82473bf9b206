"""Replay and shadow models over the retained inbound stream, on a real broker."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from ingest.bus import read_topic
from router.policy import RoutingPolicy
from router.replay import replay
from router.runner import ModelSource, RouterProcess
from router.service import Router, RouterTopics
from schemas.blobs import FilesystemBlobStore
from schemas.routed import RoutedMessage, RoutingEvent
from tests.conftest import KafkaHandle
from tests.router.keyword_classifier import DEPARTMENTS, KEYWORDS, KeywordClassifier
from tests.router.test_router import _publish

pytestmark = pytest.mark.kafka

# The candidate model sends bins to customer services: 1 enquiry in 5 changes department.
CANDIDATE = {**KEYWORDS, "bin": "customer_services"}


def test_shadow_then_live_replay(kafka: KafkaHandle, tmp_path: Path) -> None:
    topics = RouterTopics.prefixed(f"r{uuid.uuid4().hex[:8]}.")
    blobs = FilesystemBlobStore(tmp_path)
    start_ms = int(time.time() * 1000) - 1000
    ids = _publish(kafka, topics, blobs, 50)
    live = RouterProcess(kafka.bootstrap, ModelSource(lambda: "kw-1", lambda v: KeywordClassifier(v)),
                         RoutingPolicy(), DEPARTMENTS, topics=topics, reload_interval_s=0)
    assert live.run(idle_timeout_s=4).processed == 50
    time.sleep(1.1)
    end_ms = int(time.time() * 1000)
    later = _publish(kafka, topics, blobs, 5)  # outside the window

    candidate = Router(KeywordClassifier("kw-2", CANDIDATE), RoutingPolicy(), topics)
    first = replay(kafka.bootstrap, candidate, start_ms=start_ms, end_ms=end_ms, shadow=True, progress=False)
    second = replay(kafka.bootstrap, candidate, start_ms=start_ms, end_ms=end_ms, shadow=True, progress=False)
    assert first.as_dict() == second.as_dict()  # the same window twice: the same decisions
    assert (first.messages, first.compared, first.agreed) == (50, 50, 40)
    assert first.per_department["waste"] == {"n": 10, "agreed": 0, "agreement": 0.0}
    assert first.per_department["highways"]["agreement"] == 1.0
    shadow_rows = read_topic(kafka.bootstrap, topics.shadow, expect=100, timeout_s=10)
    assert len(shadow_rows) == 100
    routed_before = _routed_ids(kafka, topics)
    assert routed_before["customer_services"] == 0  # shadow touched nothing downstream

    applied = replay(kafka.bootstrap, candidate, start_ms=start_ms, end_ms=end_ms, shadow=False,
                     progress=False)
    assert applied.changed == 10
    moved = read_topic(kafka.bootstrap, topics.department("customer_services"), expect=10, timeout_s=10)
    routed = [RoutedMessage.model_validate_json(r.value or b"") for r in moved]
    assert {r.message.id for r in routed} <= set(ids) and not {r.message.id for r in routed} & set(later)
    assert all(r.routing.replayed and r.routing.model_version == "kw-2" for r in routed)
    events = [RoutingEvent.model_validate_json(r.value or b"")
              for r in read_topic(kafka.bootstrap, topics.events, timeout_s=15)]
    rerouted = [e for e in events if e.kind == "rerouted"]
    assert len(rerouted) == 10
    assert all(e.previous_departments == ["waste"] and e.departments == ["customer_services"]
               for e in rerouted)
    assert "kw-2" in rerouted[0].reason

    again = replay(kafka.bootstrap, candidate, start_ms=start_ms, end_ms=end_ms, shadow=False,
                   progress=False)
    assert (again.changed, again.agreed) == (0, 50)  # a second replay changes nothing


def _routed_ids(kafka: KafkaHandle, topics: RouterTopics) -> Counter[str]:
    counts: Counter[str] = Counter()
    for department in DEPARTMENTS:
        counts[department] = len(read_topic(kafka.bootstrap, topics.department(department), timeout_s=15))
    return counts
