"""The stored-offset consumer loop on a real broker: a record the handler can never apply is
dead-lettered as handler_error (after the batch is split to find it) while the rest are applied
once, and the store holds the last offset. Resuming from the store is tested with the ticket
stage itself (tests/tickets/test_consumer.py: kill -9 and restart, replay with a new group)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

import pytest

from ingest.admin import ensure_topics
from ingest.bus import DeadLetterWriter, KafkaProducerClient, read_topic
from ingest.stored_offsets import Batch, StoredOffsetLoop
from schemas.topics import TopicSpec
from tests.conftest import KafkaHandle

pytestmark = pytest.mark.kafka


class MemoryHandler:
    """A handler whose 'database' is a dict: applied values and offsets change together."""

    def __init__(self, poison: bytes) -> None:
        self.poison = poison
        self.applied: list[bytes] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.calls = 0

    def load_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {p: self.offsets[p] for p in partitions if p in self.offsets}

    def __call__(self, batch: Batch) -> None:
        self.calls += 1
        applied = []
        for record in batch.records:
            if (record.topic, record.partition, record.offset) in batch.skip:
                continue
            if record.value == self.poison:
                raise RuntimeError("cannot apply this one")  # the whole batch rolls back
            applied.append(record.value or b"")
        self.applied += applied  # "commit"
        for record in batch.records:
            self.offsets[(record.topic, record.partition)] = record.offset


def run_bounded(loop: StoredOffsetLoop, limit_s: float = 120, idle_s: float = 8) -> None:
    """Until idle for ``idle_s`` once partitions are assigned; never longer than ``limit_s`` (a busy
    machine can be slow to assign a new group its partitions: fail the assertions, not hang)."""
    guard = threading.Timer(limit_s, loop.stop)
    guard.start()
    try:
        loop.run(idle_timeout_s=idle_s)
    finally:
        guard.cancel()


def test_a_record_that_always_fails_is_dead_lettered_and_the_rest_applied_once(
        kafka: KafkaHandle) -> None:
    topic, dlq = f"test.so.{uuid.uuid4().hex[:8]}", f"test.dlq.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.bootstrap, [TopicSpec(topic, 1, "test"), TopicSpec(dlq, 1, "test")])
    client = KafkaProducerClient(kafka.bootstrap, client_id="stored-offsets-test")
    for i in range(10):
        client.send(topic, str(i).encode(), b"k")
    client.flush()
    handler = MemoryHandler(poison=b"5")
    group = f"g-{uuid.uuid4().hex[:8]}"
    loop = StoredOffsetLoop(kafka.bootstrap, [topic], group, handler, stage="test",
                            dead_letters=DeadLetterWriter(client, dlq), max_attempts=2, backoff_s=0.01)
    run_bounded(loop)
    assert handler.applied == [str(i).encode() for i in range(10) if i != 5]
    assert handler.offsets == {(topic, 0): 9}
    dead = read_topic(kafka.bootstrap, dlq, expect=1, timeout_s=10)
    assert [(r.value, r.headers["x-error-reason"], r.headers["x-origin-offset"]) for r in dead] == \
        [(b"5", b"handler_error", b"5")]
    client.close()
