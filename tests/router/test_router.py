"""The router on a real broker: exactly-once effect through kill -9 and rebalances, poison
records dead-lettered without stopping the partition, hot reload, metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ingest.admin import ensure_topics
from ingest.bus import KafkaProducerClient, KafkaPublisher, Record, read_topic
from router.policy import RoutingPolicy
from router.runner import ModelSource, RouterProcess, router_topic_specs
from router.service import RouterTopics
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Channel, InboundMessage, Party
from schemas.routed import RoutedMessage, RoutingEvent
from tests.conftest import KafkaHandle
from tests.processes import Processes
from tests.router.keyword_classifier import DEPARTMENTS, KeywordClassifier

pytestmark = pytest.mark.kafka

TEXTS = ("The bin was not emptied", "Huge pothole on Mill Lane", "Van parked on the verge for weeks",
         "Damp and mould in the bedroom", "What time do you open?")
EXPECTED = {TEXTS[0]: "waste", TEXTS[1]: "highways", TEXTS[2]: "parking", TEXTS[3]: "housing"}


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


def _publish(kafka: KafkaHandle, topics: RouterTopics, blobs: FilesystemBlobStore, count: int) -> list[str]:
    """``count`` enquiries from 13 residents; returns their ids."""
    ensure_topics(kafka.bootstrap, router_topic_specs(topics, DEPARTMENTS))
    publisher = KafkaPublisher(kafka.bootstrap, blobs, topic=topics.inbound)
    ids = []
    for i in range(count):
        message = InboundMessage(channel=Channel.SMS, sender=Party(phone=f"+4477009000{i % 13:02d}"),
                                 body_text=f"{TEXTS[i % len(TEXTS)]} ({i})", dedupe_key=f"sms:SM{i}")
        publisher.publish_nowait(message)
        ids.append(message.id)
    publisher.flush()
    publisher.close()
    return ids


def _routed(kafka: KafkaHandle, topics: RouterTopics, timeout_s: float = 15) -> list[RoutedMessage]:
    # Reading stops at each topic's end; the timeout only bounds a read that cannot get there
    # (a killed router's transaction still open), so a slow machine gets a generous one.
    found: list[Record] = []
    for topic in [topics.department(d) for d in DEPARTMENTS] + [topics.triage]:
        found += read_topic(kafka.bootstrap, topic, timeout_s=timeout_s, isolation_level="read_committed")
    return [RoutedMessage.model_validate_json(r.value or b"") for r in found]


def _worker(processes: Processes, kafka: KafkaHandle, prefix: str, txn_id: str, *extra: str,
            idle_s: str = "6") -> subprocess.Popen[str]:
    return processes.start(
        [sys.executable, "-m", "tests.router.router_worker", kafka.bootstrap, prefix, txn_id, *extra],
        env={**kafka.env, "WORKER_IDLE_S": idle_s, "WORKER_BATCH": "10"},
    )


def _assert_exactly_once(kafka: KafkaHandle, topics: RouterTopics, ids: list[str]) -> None:
    routed = _routed(kafka, topics)
    counts = Counter(r.message.id for r in routed)
    assert set(counts) == set(ids), f"{len(set(ids) - set(counts))} routed messages missing"
    assert max(counts.values()) == 1, "a routed message is visible twice"
    for r in routed:
        text = r.message.body_text.rsplit(" (", 1)[0]
        assert r.routing.departments == ([EXPECTED[text]] if text in EXPECTED else [])
        assert r.routing.triage == (text not in EXPECTED)


def test_kill_9_mid_batch_then_restart_routes_each_message_exactly_once(
    kafka: KafkaHandle, tmp_path: Path, processes: Processes
) -> None:
    topics = RouterTopics.prefixed(_prefix())
    prefix = topics.prefix
    crashed = _worker(processes, kafka, prefix, "router-a", "37")
    time.sleep(0.5)
    ids = _publish(kafka, topics, FilesystemBlobStore(tmp_path), 100)
    assert processes.finish(crashed, 120, "router worker").returncode == 9
    visible = _routed(kafka, topics, timeout_s=3)
    assert len(visible) < 100  # the crash really was mid-stream
    restarted = processes.finish(_worker(processes, kafka, prefix, "router-a"), 180, "router worker")
    assert restarted.returncode == 0, restarted.err[-2000:]
    _assert_exactly_once(kafka, topics, ids)


def test_a_router_dying_in_a_rebalance_loses_and_doubles_nothing(kafka: KafkaHandle, tmp_path: Path,
                                                                  processes: Processes) -> None:
    topics = RouterTopics.prefixed(_prefix())
    prefix = topics.prefix
    ids = _publish(kafka, topics, FilesystemBlobStore(tmp_path), 240)
    survivor = _worker(processes, kafka, prefix, "router-b1", idle_s="15")
    dying = _worker(processes, kafka, prefix, "router-b2", "50")  # joins, takes partitions, dies mid-batch
    assert processes.finish(dying, 120, "router worker").returncode == 9
    survived = processes.finish(survivor, 240, "router worker")
    assert survived.returncode == 0, survived.err[-2000:]
    stats = json.loads(survived.out.strip().splitlines()[-1])
    assert stats["processed"] >= 240 - 50
    _assert_exactly_once(kafka, topics, ids)


def test_poison_goes_to_the_dead_letter_topic_and_the_partition_keeps_flowing(
    kafka: KafkaHandle, tmp_path: Path
) -> None:
    topics = RouterTopics.prefixed(_prefix())
    raw = KafkaProducerClient(kafka.bootstrap)
    good = InboundMessage(channel=Channel.SMS, sender=Party(phone="+447700900001"),
                          body_text="Bin not emptied", dedupe_key="sms:SMgood")
    process = RouterProcess(kafka.bootstrap, ModelSource(lambda: "kw-1", lambda v: KeywordClassifier(v)),
                            RoutingPolicy(), DEPARTMENTS, topics=topics, reload_interval_s=0)
    for value in (b"{oops", b'{"schema_version": 7, "channel": "sms"}', good.model_dump_json().encode()):
        raw.send(topics.inbound, value, key=b"same-resident")  # one partition, poison first
    stats = process.run(idle_timeout_s=4)
    assert (stats.processed, stats.dead_lettered) == (1, 2)
    dead = read_topic(kafka.bootstrap, topics.dlq, expect=2, timeout_s=10, isolation_level="read_committed")
    assert sorted(r.headers["x-error-reason"] for r in dead) == [b"malformed_json", b"unknown_schema_version"]
    assert {r.headers["x-error-stage"] for r in dead} == {b"router"}
    routed = read_topic(kafka.bootstrap, topics.department("waste"), expect=1, timeout_s=10,
                        isolation_level="read_committed")
    assert RoutedMessage.model_validate_json(routed[0].value or b"").message.id == good.id
    assert REGISTRY.get_sample_value("frontdoor_router_dead_letters_total",
                                     {"reason": "malformed_json"}) >= 1
    assert REGISTRY.get_sample_value("frontdoor_routed_total", {"department": "waste"}) >= 1


def test_a_new_model_version_is_loaded_without_dropping_messages(kafka: KafkaHandle, tmp_path: Path) -> None:
    topics = RouterTopics.prefixed(_prefix())
    blobs = FilesystemBlobStore(tmp_path)
    wanted = {"version": "kw-1"}
    # kw-2 sends bins to customer_services: a visible change of behaviour.
    models = ModelSource(
        current=lambda: wanted["version"],
        load=lambda v: KeywordClassifier(v, None if v == "kw-1" else {"bin": "customer_services"}),
    )
    process = RouterProcess(kafka.bootstrap, models, RoutingPolicy(), DEPARTMENTS, topics=topics,
                            reload_interval_s=0.3)
    runner = threading.Thread(target=process.run, kwargs={"idle_timeout_s": 25})
    runner.start()
    try:
        first = _publish(kafka, topics, blobs, 20)
        _wait_for_events(kafka, topics, 20)
        wanted["version"] = "kw-2"
        deadline = time.monotonic() + 20
        while process.stats.model_version != "kw-2" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.stats.model_version == "kw-2"
        second = _publish(kafka, topics, blobs, 20)
        events = _wait_for_events(kafka, topics, 40)
    finally:
        process.loop.stop()
        runner.join(timeout=60)
    versions = {e.message_id: e.model_version for e in events if e.kind == "routed"}
    assert set(versions) == set(first) | set(second)  # nothing dropped across the swap
    assert {versions[i] for i in first} == {"kw-1"}
    assert {versions[i] for i in second} == {"kw-2"}


def _wait_for_events(kafka: KafkaHandle, topics: RouterTopics, count: int) -> list[RoutingEvent]:
    deadline = time.monotonic() + 60
    while True:
        records = read_topic(kafka.bootstrap, topics.events, timeout_s=2, isolation_level="read_committed")
        events = [RoutingEvent.model_validate_json(r.value or b"") for r in records]
        if sum(e.kind == "routed" for e in events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.3)


def test_a_routed_record_kafka_refuses_is_dead_lettered_and_the_partition_keeps_flowing(
    kafka: KafkaHandle, tmp_path: Path
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    topics = RouterTopics.prefixed(_prefix())
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:  # the waste topic takes records up to 4 kB: a long enquiry's routed record is over it
        admin.create_topics([NewTopic(topics.department("waste"), 3, 1,
                                      topic_configs={"max.message.bytes": "4000"})])
    finally:
        admin.close()
    refused = {"reason": "refused_by_kafka"}
    before = REGISTRY.get_sample_value("frontdoor_router_dead_letters_total", refused) or 0
    process = RouterProcess(kafka.bootstrap, ModelSource(lambda: "kw-1", lambda v: KeywordClassifier(v)),
                            RoutingPolicy(), DEPARTMENTS, topics=topics, reload_interval_s=0)
    huge = InboundMessage(channel=Channel.SMS, sender=Party(phone="+447700900001"),
                          body_text="Bin not emptied. " * 400, dedupe_key="sms:SMhuge")
    small = InboundMessage(channel=Channel.SMS, sender=Party(phone="+447700900001"),
                           body_text="Bin not emptied again", dedupe_key="sms:SMsmall")
    raw = KafkaProducerClient(kafka.bootstrap)
    for message in (huge, small):
        raw.send(topics.inbound, message.model_dump_json().encode(), key=b"same-resident")  # one partition
    raw.close()
    stats = process.run(idle_timeout_s=6)
    assert (stats.processed, stats.dead_lettered) == (1, 1)
    (dead,) = read_topic(kafka.bootstrap, topics.dlq, expect=1, timeout_s=10,
                         isolation_level="read_committed")
    assert dead.headers["x-error-reason"] == b"refused_by_kafka"
    assert InboundMessage.model_validate_json(dead.value or b"").id == huge.id  # replayable as it came in
    routed = read_topic(kafka.bootstrap, topics.department("waste"), expect=1, timeout_s=10,
                        isolation_level="read_committed")
    assert [RoutedMessage.model_validate_json(r.value or b"").message.id for r in routed] == [small.id]
    assert REGISTRY.get_sample_value("frontdoor_router_dead_letters_total", refused) == before + 1
