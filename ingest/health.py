"""What the ops dashboard asks the stream: consumer lag per stage, the dead letters, and the
replay of one dead letter to the topic it came from.

A stage's position is where it resumes: Kafka's committed offsets for a group that commits
there (the router, in its transactions), or the offsets a stage keeps in its own database
with the work (the ticket stage: ``stored`` gives them, last applied per partition). Lag is
the records between that position and each partition's end.

A replay sends the dead letter's original bytes and key back to its ``x-origin-topic`` with
headers saying from where, by whom and when (``x-replayed-from``, ``x-replayed-by``,
``x-replayed-at``), so the stream itself records who replayed what; ``audit`` (given by
``frontdoor/``) records it too. The lag is exported on the process's /metrics as
``frontdoor_<stage>_consumer_lag`` each time it is read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import Gauge

from ingest.bus import KafkaProducerClient, Record, to_record
from schemas.topics import DLQ

log = logging.getLogger(__name__)

LAG = Gauge("frontdoor_stage_consumer_lag", "Records not yet consumed, per stage (as the dashboard read it)",
            ["stage"])
PREVIEW_BYTES = 4000

Stored = Callable[[], Mapping[tuple[str, int], int]]  # (topic, partition) -> last offset applied


@dataclass(frozen=True)
class StageInput:
    """A stage's consumer group and topics; ``stored`` when it keeps its offsets itself."""

    group: str
    topics: Sequence[str]
    stored: Stored | None = None


@dataclass(frozen=True)
class DeadLetterRecord:
    partition: int
    offset: int
    reason: str
    stage: str
    detail: str
    origin: str  # topic/partition/offset
    at: datetime | None
    preview: str


class KafkaIngestProbe:
    def __init__(self, bootstrap: str, stages: Mapping[str, StageInput], *, dlq_topic: str = DLQ,
                 producer: KafkaProducerClient | None = None,
                 audit: Callable[[dict[str, str]], None] | None = None, timeout_s: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.stages = dict(stages)
        self.dlq_topic = dlq_topic
        self.producer = producer or KafkaProducerClient(bootstrap, client_id="frontdoor-dashboard-replay")
        self.audit = audit
        self.timeout_ms = int(timeout_s * 1000)

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                             request_timeout_ms=max(self.timeout_ms, 1000) + 500,
                             consumer_timeout_ms=self.timeout_ms)

    def lag(self) -> dict[str, int]:
        consumer = self._consumer()
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=self.timeout_ms + 500)
        try:
            result: dict[str, int] = {}
            for stage, spec in self.stages.items():
                tps = [TopicPartition(t, p) for t in spec.topics
                       for p in sorted(consumer.partitions_for_topic(t) or ())]
                if not tps:
                    continue
                ends = consumer.end_offsets(tps)
                starts = consumer.beginning_offsets(tps)
                if spec.stored is not None:
                    position = {TopicPartition(t, p): o + 1 for (t, p), o in spec.stored().items()}
                else:
                    committed = _committed(admin, spec.group, tps)
                    position = {tp: meta.offset for tp, meta in committed.items()
                                if meta.offset is not None and meta.offset >= 0}
                result[stage] = sum(max(0, ends[tp] - max(position.get(tp, starts[tp]), starts[tp]))
                                    for tp in tps)
                LAG.labels(stage).set(result[stage])
            return result
        finally:
            admin.close()
            consumer.close()

    def _read(self, limit: int, only: tuple[int, int] | None = None) -> list[Record]:
        consumer = self._consumer()
        try:
            partitions = sorted(consumer.partitions_for_topic(self.dlq_topic) or ())
            tps = [TopicPartition(self.dlq_topic, p) for p in partitions]
            if only is not None:
                tps = [tp for tp in tps if tp.partition == only[0]]
            if not tps:
                return []
            consumer.assign(tps)
            ends = consumer.end_offsets(tps)
            starts = consumer.beginning_offsets(tps)
            pending = set()
            for tp in tps:
                first = only[1] if only is not None else max(starts[tp], ends[tp] - limit)
                if first < ends[tp] and first >= starts[tp]:
                    consumer.seek(tp, first)
                    pending.add(tp)
            found: list[Record] = []
            while pending:
                batch = consumer.poll(timeout_ms=self.timeout_ms)
                if not batch:
                    break
                for tp, rows in batch.items():
                    found.extend(to_record(r) for r in rows if r.offset < ends[tp])
                    if only is not None:
                        pending.discard(tp)
                for tp in list(pending):
                    if consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            if only is not None:
                return [r for r in found if r.offset == only[1]]
            found.sort(key=lambda r: r.timestamp_ms, reverse=True)
            return found[:limit]
        finally:
            consumer.close()

    def dead_letters(self, limit: int) -> list[DeadLetterRecord]:
        return [_letter(r) for r in self._read(limit)]

    def replay(self, partition: int, offset: int, actor: str) -> str:
        """Send the dead letter at ``partition``/``offset`` back to its origin topic; its name."""
        records = self._read(1, only=(partition, offset))
        if not records:
            raise LookupError(f"no dead letter at {partition}/{offset}")
        record = records[0]
        origin = record.headers.get("x-origin-topic", b"").decode("utf-8", "replace")
        if not origin or origin == self.dlq_topic:
            raise LookupError(f"the dead letter at {partition}/{offset} does not say where it came from")
        now = datetime.now(UTC).isoformat()
        headers = {k: v for k, v in record.headers.items() if not k.startswith("x-error-")}
        headers.update({"x-replayed-from": f"{self.dlq_topic}/{partition}/{offset}".encode(),
                        "x-replayed-by": actor.encode("utf-8"), "x-replayed-at": now.encode()})
        self.producer.send(origin, record.value or b"", record.key, headers)
        entry = {"action": "dead_letter_replayed", "from": f"{self.dlq_topic}/{partition}/{offset}",
                 "to": origin, "by": actor, "at": now}
        log.info("dead letter %s/%d replayed to %s by %s", self.dlq_topic, offset, origin, actor)
        if self.audit is not None:
            self.audit(entry)
        return origin

    def close(self) -> None:
        self.producer.close()


def _committed(admin: KafkaAdminClient, group: str, tps: list[TopicPartition], attempts: int = 10) -> Any:
    """The group's committed offsets; a coordinator still being elected (a new cluster's first
    group lookup creates ``__consumer_offsets``) is waited for briefly."""
    for attempt in range(attempts):
        try:
            return admin.list_group_offsets({group: tps}).get(group, {})
        except KafkaError as exc:  # coordinator not available or loading: retriable
            if not exc.retriable or attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return {}


def _letter(record: Record) -> DeadLetterRecord:
    def header(name: str) -> str:
        return record.headers.get(name, b"").decode("utf-8", "replace")

    at = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC) if record.timestamp_ms else None
    origin = "/".join(filter(None, (header("x-origin-topic"), header("x-origin-partition"),
                                    header("x-origin-offset"))))
    return DeadLetterRecord(
        partition=record.partition, offset=record.offset, reason=header("x-error-reason") or "unknown",
        stage=header("x-error-stage") or "unknown", detail=header("x-error-detail"),
        origin=origin or "unknown",
        at=at, preview=(record.value or b"")[:PREVIEW_BYTES].decode("utf-8", "replace"))
