"""The ticket stage on a real broker and both databases: exactly-once effect through kill -9,
two consumers at once, a replay from the start, and dead letters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from ingest.admin import ensure_topics
from ingest.bus import KafkaProducerClient, read_topic
from schemas.routed import RoutedMessage
from schemas.topics import CORE_TOPICS, TopicSpec, department_topics
from tests.conftest import KafkaHandle
from tests.processes import Processes
from tests.tickets.factory import email, form, later, routed, sms
from tests.tickets.ticket_worker import DEPARTMENTS
from tickets.db import make_engine
from tickets.events import decode_events

pytestmark = pytest.mark.kafka


def worker(processes: Processes, url: str, kafka: KafkaHandle, prefix: str, group: str,
           crash_after: int | None = None, idle_s: float = 5.0) -> subprocess.Popen[str]:
    # The group is the test's own (its prefix): a member another test killed with -9 would hold up
    # this one's first rebalance until its session expired.
    args = [sys.executable, "-m", "tests.tickets.ticket_worker", url, kafka.bootstrap, prefix, prefix + group]
    if crash_after is not None:
        args.append(str(crash_after))
    env = {**os.environ, "WORKER_IDLE_S": str(idle_s), "WORKER_BATCH": "20"}
    return processes.start(args, env=env)


def finish(processes: Processes, proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    done = processes.finish(proc, timeout, "ticket worker")
    return done.returncode, done.out, done.err


def make_topics(kafka: KafkaHandle, prefix: str) -> None:
    specs = [TopicSpec(prefix + s.name, s.partitions, s.key)
             for s in (*CORE_TOPICS, *department_topics(DEPARTMENTS))]
    ensure_topics(kafka.bootstrap, specs)


def produce(kafka: KafkaHandle, prefix: str, items: list[tuple[str, RoutedMessage | bytes, bytes]]) -> None:
    client = KafkaProducerClient(kafka.bootstrap, client_id="tickets-test")
    try:
        for topic, value, key in items:
            data = value if isinstance(value, bytes) else value.model_dump_json().encode()
            client.send(prefix + topic, data, key, wait=False)
        client.flush()
    finally:
        client.close()


def traffic(n: int) -> tuple[list[tuple[str, RoutedMessage | bytes, bytes]], set[str]]:
    """n residents: an email (a fifth of them to both departments), a reply, and an SMS each."""
    items: list[tuple[str, RoutedMessage | bytes, bytes]] = []
    keys: set[str] = set()
    for i in range(n):
        who = f"res{i}@example.org"
        first = email(who, f"Problem {i}", f"Details of problem {i}", message_id=f"<p{i}@example.org>")
        both = i % 5 == 0
        r = routed(first, "waste", departments=["waste", "highways"] if both else ["waste"])
        items.append(("frontdoor.dept.waste", r, who.encode()))
        if both:
            items.append(("frontdoor.dept.highways", r, who.encode()))
        reply = email(who, f"Re: Problem {i}", "More details", message_id=f"<p{i}r@example.org>",
                      in_reply_to=f"<p{i}@example.org>", at=later(10))
        items.append(("frontdoor.dept.waste", routed(reply), who.encode()))
        phone = f"+4477009{i:05d}"
        text_message = sms(phone, f"Pothole number {i}", sid=f"SMk{i}")
        items.append(("frontdoor.dept.highways", routed(text_message, "highways"), phone.encode()))
        keys |= {first.dedupe_key, reply.dedupe_key, text_message.dedupe_key}
    return items, keys


def snapshot(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = ("tickets", "ticket_messages", "ticket_departments", "residents", "resident_identities",
                      "ticket_participants", "ticket_events", "ticket_references")
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}  # noqa: S608
    finally:
        engine.dispose()


def audit_ids(url: str) -> set[int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT id FROM ticket_events")).scalars())
    finally:
        engine.dispose()


def check_exactly_once(url: str, keys: set[str]) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            held = conn.execute(text("SELECT dedupe_key FROM ticket_messages")).scalars().all()
            assert sorted(held) == sorted(keys)  # nothing lost, nothing doubled
            empty = conn.execute(text(
                "SELECT count(*) FROM tickets t WHERE NOT EXISTS "
                "(SELECT 1 FROM ticket_messages m WHERE m.ticket_id = t.id)")).scalar_one()
            assert empty == 0
            replies_apart = conn.execute(text(
                "SELECT count(*) FROM ticket_messages r JOIN ticket_messages o "
                "ON o.email_message_id = substr(r.in_reply_to, 2, length(r.in_reply_to) - 2) "
                "WHERE r.ticket_id <> o.ticket_id")).scalar_one()
            assert replies_apart == 0
    finally:
        engine.dispose()


def test_kill_9_mid_batch_then_restart_then_replay_from_the_start(kafka: KafkaHandle, upgraded_url: str,
                                                                   processes: Processes) -> None:
    prefix = f"tk{uuid.uuid4().hex[:8]}."
    make_topics(kafka, prefix)
    items, keys = traffic(60)
    poison = ("frontdoor.dept.waste", b'{"message": "not a routed record"}', b"x")
    produce(kafka, prefix, [*items[:100], poison, *items[100:]])

    crashed = worker(processes, upgraded_url, kafka, prefix, "tickets-a", crash_after=3)
    code, _, err = finish(processes, crashed)
    assert code == 9, err[-2000:]
    code, out, err = finish(processes, worker(processes, upgraded_url, kafka, prefix, "tickets-a"))
    assert code == 0, err[-2000:]
    check_exactly_once(upgraded_url, keys)
    before = snapshot(upgraded_url)
    assert before["tickets"] == 120  # an email thread and an SMS ticket per resident

    # A dead letter is sent before its batch commits, so a crash may send it again: readers
    # tell repeats apart by the origin headers (the same record).
    dead = read_topic(kafka.bootstrap, prefix + "frontdoor.dlq", timeout_s=20)
    assert {r.headers["x-error-reason"] for r in dead} == {b"invalid_routed_record"}
    assert len({(r.headers["x-origin-topic"], r.headers["x-origin-offset"]) for r in dead}) == 1

    # Every audit row is on frontdoor.events, keyed by its ticket's reference (the worker drains
    # the relay before it leaves).
    published = read_topic(kafka.bootstrap, prefix + "frontdoor.events", timeout_s=30)
    events = decode_events([r.value or b"" for r in published])
    assert {e.event_id for e in events} >= audit_ids(upgraded_url)
    assert all(r.key == e.reference.encode() for r, e in zip(published, events, strict=True))
    assert {e.kind for e in events} >= {"created", "routed", "threaded"}

    # Replaying the department topics from the start (a new group) changes nothing.
    code, out, err = finish(processes, worker(processes, upgraded_url, kafka, prefix, "tickets-replay"))
    assert code == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["applied"] == 0
    assert snapshot(upgraded_url) == before


def test_two_consumers_at_once_one_resident_writing_by_sms_and_form(kafka: KafkaHandle, upgraded_url: str,
                                                                    processes: Processes) -> None:
    prefix = f"tk{uuid.uuid4().hex[:8]}."
    make_topics(kafka, prefix)
    items: list[tuple[str, RoutedMessage | bytes, bytes]] = []
    keys: set[str] = set()
    for i in range(40):
        phone = f"+4477008{i:05d}"
        address = f"both{i}@example.org"
        text_message = sms(phone, f"Bin {i} not collected", sid=f"SMb{i}")
        submitted = form(address, phone, f"Bin {i} not collected, third time", key=f"fb{i}", reference=None)
        items.append(("frontdoor.dept.waste", routed(text_message), phone.encode()))
        items.append(("frontdoor.dept.waste", routed(submitted), address.encode()))
        keys |= {text_message.dedupe_key, submitted.dedupe_key}
    produce(kafka, prefix, items)
    workers = [worker(processes, upgraded_url, kafka, prefix, "tickets-b", idle_s=6) for _ in range(2)]
    results = [finish(processes, w) for w in workers]
    assert all(code == 0 for code, _, _ in results), [err[-1500:] for _, _, err in results]
    stats = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
    assert sum(s["applied"] for s in stats) >= len(keys)
    check_exactly_once(upgraded_url, keys)
    engine = make_engine(upgraded_url)
    try:
        with engine.connect() as conn:
            per_phone = conn.execute(text(
                "SELECT value, count(DISTINCT resident_id) FROM resident_identities WHERE kind = 'phone' "
                "GROUP BY value")).all()
            assert len(per_phone) == 40 and all(n == 1 for _, n in per_phone)  # one resident each
            assert conn.execute(text("SELECT count(*) FROM residents")).scalar_one() == 40
    finally:
        engine.dispose()


def test_the_stage_refuses_a_database_behind_the_code(kafka: KafkaHandle, tmp_path: Path) -> None:
    from tests.conftest import frontdoor

    env = {**kafka.env, "FRONTDOOR_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = frontdoor("tickets", env=env, check=False, timeout=60)
    assert result.returncode == 2
    assert "frontdoor db upgrade" in result.stderr
