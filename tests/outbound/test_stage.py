"""``frontdoor outbound`` as a real process on the real broker: the relay publishes outbox rows,
the stage sends each once to a real aiosmtpd relay, survives kill -9 mid-batch, and replies
queued while the broker is away wait in the outbox and go when it is back.

The broker-outage test stops and restarts the session's broker; it restarts it whatever
happens, and it is the last test in this file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ingest.admin import ensure_topics
from outbound.bench import RecordingRelay
from schemas.topics import INBOUND, OUTBOUND, TopicSpec
from tests.conftest import ROOT, KafkaHandle
from tests.outbound.conftest import POLICY, email_in, new_ticket
from tickets import outbox
from tickets.outbox import (
    OutboxChannel,
    OutboxStatus,
    ReplyTarget,
    Thread,
    queue_acknowledgement,
    queue_reply,
)

pytestmark = pytest.mark.kafka


class Stage:
    """One ``frontdoor outbound`` process on its own topics and group."""

    def __init__(self, kafka: KafkaHandle, db_url: str, relay: RecordingRelay, tmp: Path) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:8]}."
        ensure_topics(kafka.bootstrap, [TopicSpec(self.prefix + OUTBOUND, 3, "recipient"),
                                        TopicSpec(self.prefix + INBOUND, 1, "sender")])
        self.env = {**kafka.env, "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap,
                    "FRONTDOOR_DATABASE_URL": db_url,
                    "FRONTDOOR_RELAY_HOST": "127.0.0.1", "FRONTDOOR_RELAY_PORT": str(relay.port),
                    "FRONTDOOR_RELAY_STARTTLS": "false", "FRONTDOOR_MAIL_FROM": POLICY.mail_from,
                    "FRONTDOOR_VAR_DIR": str(tmp / "var"), "FRONTDOOR_OUTBOUND_METRICS_PORT": "0"}
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: list[subprocess.Popen[bytes]] = []

    def start(self, lease_s: float = 60.0) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"outbound-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "frontdoor", "outbound", "--lease", str(lease_s),
                                 "--topic-prefix", self.prefix], env=self.env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no clean shutdown, no commit."""
        self.killed.append(proc)
        proc.kill()
        proc.wait()

    def died(self) -> list[int]:
        """Exit codes of stage processes that ended without being told to (a stage must ride
        out a killed peer or a broker restart, not exit: nothing would send any more)."""
        return [p.returncode for p in self.procs if p not in self.killed and p.poll() is not None]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("outbound-*.log")))


@pytest.fixture
def stage_for(kafka: KafkaHandle, tmp_path: Path) -> Iterator[Callable[[Engine, RecordingRelay], Stage]]:
    stages: list[Stage] = []

    def make(engine: Engine, relay: RecordingRelay) -> Stage:
        stage = Stage(kafka, engine.url.render_as_string(hide_password=False), relay, tmp_path)
        stages.append(stage)
        return stage

    yield make
    for stage in stages:
        stage.stop_all()


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, stage: Stage) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if stage.died():
            pytest.fail(f"the stage exited ({stage.died()}) while waiting for {what}\n{stage.logs()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n{stage.logs()[-4000:]}")


def message_ids(relay: RecordingRelay) -> Counter[str]:
    with relay.lock:
        return Counter(str(message_from_bytes(m.data)["Message-ID"]) for m in relay.mails)


def queue_acks(engine: Engine, n: int) -> dict[int, str]:
    queued: dict[int, str] = {}
    for i in range(n):
        ticket = new_ticket(engine)
        with engine.begin() as conn:
            row = queue_acknowledgement(conn, ticket, email_in(sender=f"resident{i}@example.org",
                                                               message_id=f"<m{i}@example.org>"),
                                        secret="s", policy=POLICY)
        assert row is not None and row.message_id
        queued[row.id] = row.message_id
    return queued


def test_the_stage_sends_every_queued_acknowledgement_once(
        engine: Engine, plain_relay: RecordingRelay,
        stage_for: Callable[[Engine, RecordingRelay], Stage]) -> None:
    queued = queue_acks(engine, 10)
    stage = stage_for(engine, plain_relay)
    stage.start()
    wait_for(lambda: len(message_ids(plain_relay)) == 10, 180, "10 acknowledgements", stage)
    time.sleep(1.0)  # anything doubled would arrive now
    assert message_ids(plain_relay) == Counter(queued.values())
    with engine.connect() as conn:
        assert {outbox.get(conn, i).status for i in queued} == {OutboxStatus.SENT}  # type: ignore[union-attr]


@pytest.mark.slow
def test_kill_9_mid_batch_then_restart_sends_each_once(
        engine: Engine, stage_for: Callable[[Engine, RecordingRelay], Stage]) -> None:
    """The relay is slow (0.3 s before each 250), so the kill lands mid-batch, most likely while a
    mail is accepted but not yet recorded as sent: that one message, and only that one, may come
    twice, with the same Message-ID, after its lease runs out."""
    queued = queue_acks(engine, 20)
    with RecordingRelay(delay_s=0.3) as relay:
        stage = stage_for(engine, relay)
        first = stage.start(lease_s=3)
        wait_for(lambda: len(message_ids(relay)) >= 5, 180, "the first mails", stage)
        stage.kill(first)
        stage.start(lease_s=3)
        wait_for(lambda: set(message_ids(relay)) == set(queued.values()), 90, "every acknowledgement",
                 stage)
        time.sleep(4.0)  # past a lease: a second copy of anything would arrive now
        counts = message_ids(relay)
    assert set(counts) == set(queued.values())
    doubled = [mid for mid, n in counts.items() if n > 1]
    assert len(doubled) <= 1 and all(counts[mid] == 2 for mid in doubled), counts
    with engine.connect() as conn:
        assert {outbox.get(conn, i).status for i in queued} == {OutboxStatus.SENT}  # type: ignore[union-attr]


@pytest.mark.slow
def test_broker_away_replies_wait_in_the_outbox_and_go_when_it_is_back(
        kafka: KafkaHandle, engine: Engine, plain_relay: RecordingRelay,
        stage_for: Callable[[Engine, RecordingRelay], Stage]) -> None:
    if kafka.external:
        pytest.skip("broker is external (FRONTDOOR_KAFKA_BOOTSTRAP): cannot stop it")
    stage = stage_for(engine, plain_relay)
    stage.start()
    queue_acks(engine, 1)
    # a fresh process joining a new group on a busy 2-core machine: give it as long as the rejoin below
    wait_for(lambda: len(message_ids(plain_relay)) == 1, 180, "the stage to run", stage)
    ticket = new_ticket(engine)
    kafka.stop()
    try:
        with engine.begin() as conn:
            row = queue_reply(conn, ticket, "A. Officer", "We will collect on Tuesday.", OutboxChannel.EMAIL,
                              target=ReplyTarget("resident@example.org", thread=Thread("<m0@example.org>")),
                              policy=POLICY)
        time.sleep(3.0)
        with engine.connect() as conn:
            waiting = outbox.get(conn, row.id)
        assert waiting is not None and waiting.status is OutboxStatus.CREATED and waiting.published_at is None
        assert len(message_ids(plain_relay)) == 1
        assert not stage.died(), f"the stage exited when the broker went away\n{stage.logs()[-4000:]}"
    finally:
        kafka.start()
    # The relay publishes as soon as the broker answers; the consumer group takes longer to come
    # back on a restarted broker (coordinator rediscovery, rejoin) on a busy 2-core machine.
    wait_for(lambda: row.message_id in message_ids(plain_relay), 180, "the reply after the broker came back",
             stage)
    with engine.connect() as conn:
        sent = outbox.get(conn, row.id)
    assert sent is not None and sent.status is OutboxStatus.SENT
