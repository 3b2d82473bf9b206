"""The intake relay against the real broker: commit order kept, one relay at a time, a row Kafka
can never take set aside after a bounded number of tries (the rows behind it still go), and
``frontdoor relay`` publishing what another process committed while the broker was away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest.bus import KafkaPublisher, read_topic
from ingest.intake import IntakeService
from ingest.intake_relay import IntakeRelay
from ingest.intake_store import IntakeStore
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Channel, InboundMessage, Party, Source
from schemas.topics import INBOUND
from tests.conftest import ROOT
from tests.processes import stop

pytestmark = pytest.mark.kafka


def enquiry(key: str, sender: str, text: str, **extra: str) -> Any:
    return lambda ref: InboundMessage(channel=Channel.WEBFORM, sender=Party(email=sender), body_text=text,
                                      reference=ref, dedupe_key=key, source=Source(extra=extra))


def test_rows_go_in_commit_order_once_and_a_poison_row_is_set_aside(kafka: Any, fresh_topic: str,
                                                                     tmp_path: Path) -> None:
    store = IntakeStore.from_url(f"sqlite:///{tmp_path / 'intake.db'}")
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    publisher = KafkaPublisher(kafka.bootstrap, blobs, topic=fresh_topic, max_record_bytes=64 * 1024)
    intake = IntakeService(store)
    keys = []
    for i in range(12):
        key = f"webform:relay:{uuid.uuid4().hex}"
        keys.append(key)
        if i == 3:  # 200 KB outside the body: too large for a record even with the body in the blob store
            intake.submit(key, enquiry(key, "a@example.com", "big", padding="x" * 200_000))
        else:
            intake.submit(key, enquiry(key, "a@example.com" if i % 2 else "b@example.com", f"message {i}"))
    relays = [IntakeRelay(store, publisher, max_attempts=3, poll_s=0.05, retry_s=0.1) for _ in range(2)]
    try:
        for relay in relays:  # two relays, one store: the lease lets one publish at a time
            relay.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (store.backlog()[0] > 1 or not store.failures(3)):
            time.sleep(0.1)
    finally:
        for relay in relays:
            relay.stop()
        publisher.close()
    records = read_topic(kafka.bootstrap, fresh_topic, expect=11, timeout_s=20)
    published = [InboundMessage.model_validate_json(r.value or b"") for r in records]
    assert sorted(m.dedupe_key for m in published) == sorted(k for i, k in enumerate(keys) if i != 3)
    for sender in ("a@example.com", "b@example.com"):  # one sender, one partition, commit order
        ours = [m.dedupe_key for m in published if m.sender.email == sender]
        assert ours == [k for k in keys if k in ours]
    [(key, attempts, error)] = store.failures()
    assert (key, attempts) == (keys[3], 3) and "too large" in error
    assert store.backlog()[0] == 1 and store.get_intake(keys[3]) is not None  # kept for an operator
    store.dispose()


@pytest.mark.slow
def test_frontdoor_relay_publishes_what_was_committed_while_the_broker_was_away(kafka: Any,
                                                                                 tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fd.db'}"
    store = IntakeStore.from_url(url)
    run = uuid.uuid4().hex
    keys = [f"webform:api:relay-cli-{run}-{i}" for i in range(3)]
    for key in keys:  # as frontdoor web does while the broker is away: committed, not published
        IntakeService(store).submit(key, enquiry(key, "c@example.com", f"relay {key}"))
    env = {**os.environ, "FRONTDOOR_VAR_DIR": str(tmp_path), "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "FRONTDOOR_DATABASE_URL": url, "FRONTDOOR_INTAKE_RELAY_METRICS_PORT": "0"}
    process = subprocess.Popen([sys.executable, "-m", "frontdoor", "relay"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while store.backlog()[0] and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert store.backlog()[0] == 0
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            stop(process)
            raise
    assert process.returncode == 0, stderr
    records = read_topic(kafka.bootstrap, INBOUND)
    on_stream = [InboundMessage.model_validate_json(r.value or b"") for r in records]
    assert [m.dedupe_key for m in on_stream if m.dedupe_key in keys] == keys
    store.dispose()
