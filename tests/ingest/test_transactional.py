"""Exactly-once effect of consume-transform-produce on a real broker."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from ingest.admin import ensure_topics
from ingest.bus import KafkaProducerClient, Record, read_topic
from ingest.transactional import Output, TransactionalLoop
from schemas.topics import TopicSpec
from tests.conftest import ROOT, KafkaHandle

pytestmark = pytest.mark.kafka


def _run_worker(kafka: KafkaHandle, *args: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ingest.transform_worker", kafka.bootstrap, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    return proc.returncode


def test_kill_mid_batch_then_restart_leaves_each_output_exactly_once(
    kafka: KafkaHandle, fresh_topic: str
) -> None:
    out = fresh_topic + ".out"
    ensure_topics(kafka.bootstrap, [TopicSpec(out, 3, "test")])
    client = KafkaProducerClient(kafka.bootstrap)
    sent = [f"enquiry-{i:03d}".encode() for i in range(60)]
    for i, value in enumerate(sent):
        client.send(fresh_topic, value, key=str(i % 7).encode(), wait=False)
    client.flush()

    assert _run_worker(kafka, fresh_topic, out, "eo", "eo-router-1", "25") == 9  # kill -9 mid-batch
    committed_before = read_topic(kafka.bootstrap, out, timeout_s=3, isolation_level="read_committed")
    assert len(committed_before) < len(sent)

    assert _run_worker(kafka, fresh_topic, out, "eo", "eo-router-1") == 0
    committed = read_topic(kafka.bootstrap, out, expect=len(sent), timeout_s=20,
                           isolation_level="read_committed")
    counts = Counter(r.value for r in committed)
    assert set(counts) == {v.upper() for v in sent}  # nothing missing
    assert max(counts.values()) == 1  # nothing visible twice


def test_poison_is_dead_lettered_inside_the_transaction(kafka: KafkaHandle, fresh_topic: str) -> None:
    out, dlq = fresh_topic + ".out", fresh_topic + ".dlq"
    ensure_topics(kafka.bootstrap, [TopicSpec(out, 1, "test"), TopicSpec(dlq, 1, "test")])
    client = KafkaProducerClient(kafka.bootstrap)
    for value in (b"good-1", b"poison", b"good-2"):
        client.send(fresh_topic, value, key=b"k")

    def transform(record: Record) -> list[Output]:
        if record.value == b"poison":
            from ingest.errors import PoisonMessageError

            raise PoisonMessageError("unroutable", "no department for this")
        return [Output(out, record.value or b"", record.key)]

    loop = TransactionalLoop(kafka.bootstrap, [fresh_topic], "tx-poison", transform, stage="test",
                             dlq_topic=dlq)
    loop.run(max_records=3, idle_timeout_s=20)
    assert [r.value for r in read_topic(kafka.bootstrap, out, expect=2,
                                        isolation_level="read_committed")] == [b"good-1", b"good-2"]
    [dead] = read_topic(kafka.bootstrap, dlq, expect=1, isolation_level="read_committed")
    assert dead.value == b"poison" and dead.headers["x-error-reason"] == b"unroutable"


def test_a_record_kafka_refuses_for_good_is_dead_lettered_and_the_partition_flows_on(
    kafka: KafkaHandle, fresh_topic: str
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    out, dlq = fresh_topic + ".out", fresh_topic + ".dlq"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:  # an output topic whose record limit the big output exceeds, as a real 1 MiB limit would
        admin.create_topics([NewTopic(out, 1, 1, topic_configs={"max.message.bytes": "4000"})])
    finally:
        admin.close()
    ensure_topics(kafka.bootstrap, [TopicSpec(dlq, 1, "test")])
    client = KafkaProducerClient(kafka.bootstrap)
    for value in (b"small-1", b"huge", b"small-2", b"small-3"):
        client.send(fresh_topic, value, key=b"k")

    def transform(record: Record) -> list[Output]:
        value = record.value or b""
        return [Output(out, value * 2000 if value == b"huge" else value, record.key)]

    reasons: list[str] = []
    loop = TransactionalLoop(kafka.bootstrap, [fresh_topic], "tx-refused", transform, stage="test",
                             dlq_topic=dlq, backoff_s=0.1, on_dead_letter=reasons.append)
    loop.run(max_records=4, idle_timeout_s=30)
    flowed = read_topic(kafka.bootstrap, out, expect=3, isolation_level="read_committed")
    assert [r.value for r in flowed] == [b"small-1", b"small-2", b"small-3"]
    [dead] = read_topic(kafka.bootstrap, dlq, expect=1, isolation_level="read_committed")
    assert dead.value == b"huge"
    assert dead.headers["x-error-reason"] == b"refused_by_kafka"
    assert b"MessageSizeTooLarge" in dead.headers["x-error-type"]
    assert (loop.processed, loop.dead_lettered, loop.refused) == (3, 1, 1)
    assert reasons == ["refused_by_kafka"]
