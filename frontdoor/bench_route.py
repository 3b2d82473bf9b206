"""``frontdoor bench route``: real ``frontdoor route`` processes (one, then two in one group)
on a fresh set of topics, beside the classifier's raw documents per second in the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from frontdoor import wiring
from frontdoor.settings import Settings
from ingest.admin import delete_topics, ensure_topics
from ingest.bus import KafkaPublisher
from router.runner import router_topic_specs
from router.service import RouterTopics
from schemas.inbound import Channel, InboundMessage, Party, Source

ENQUIRIES = (
    "Bins not emptied on Elm Road again, third week running",
    "There is a pothole outside number 4 Mill Lane that has burst two of my tyres",
    "A car with no tax has been parked on the green for a month",
    "Black mould in my child's bedroom, the landlord will not do anything",
    "I want to challenge my council tax band, the house next door is the same and pays less",
    "How do I apply for a blue badge for my mum?",
    "My neighbour plays loud music every night until 3am",
    "Can I get a copy of my daughter's birth certificate?",
    "The swings in Victoria Park are broken and a child cut her hand",
    "Under the Freedom of Information Act please send me your spend on agency staff in 2025",
)


def _messages(count: int) -> list[InboundMessage]:
    return [
        InboundMessage(channel=Channel.EMAIL, sender=Party(email=f"resident{i % 211}@example.org"),
                       subject=None, body_text=f"{ENQUIRIES[i % len(ENQUIRIES)]}. (message {i})",
                       source=Source(mailboxes=["enquiries"]), dedupe_key=f"email:<bench-route-{i}>")
        for i in range(count)
    ]


def _route_with(address: str, settings: Settings, processes: int, messages: list[InboundMessage],
                departments: tuple[str, ...]) -> float:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    topics = RouterTopics.prefixed(prefix)
    specs = router_topic_specs(topics, departments)
    ensure_topics(address, specs)
    try:
        publisher = KafkaPublisher(address, wiring.blob_store(settings), topic=topics.inbound)
        for message in messages:
            publisher.publish_nowait(message)
        publisher.flush()
        publisher.close()
        env = {**os.environ, "FRONTDOOR_KAFKA_BOOTSTRAP": address}
        argv = [sys.executable, "-m", "frontdoor", "route", "--topic-prefix", prefix,
                "--exit-when-idle", "5", "--metrics-port", "0", "--reload-interval", "0"]
        routers = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,  # noqa: S603
                                    text=True) for _ in range(processes)]
        stats = []
        for router in routers:
            out, _ = router.communicate(timeout=1800)
            if router.returncode != 0:
                raise RuntimeError(f"a router process failed with exit code {router.returncode}")
            stats.append(json.loads(out.strip().splitlines()[-1]))
        routed = sum(s["processed"] for s in stats)
        if routed != len(messages):
            raise RuntimeError(f"routed {routed} of {len(messages)} messages")
        first = min(s["first_at"] for s in stats if s["first_at"])
        last = max(s["last_at"] for s in stats if s["last_at"])
        print(f"route ×{processes}: {routed} messages in {last - first:.1f} s", file=sys.stderr)
        return len(messages) / (last - first)
    finally:
        delete_topics(address, [spec.name for spec in specs])


def run_route_bench(address: str, settings: Settings, count: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from classifiers.taxonomy import load_taxonomy

    messages = _messages(count)
    source = wiring.model_source(settings)
    classifier = source.load(source.current())
    classifier.classify(messages[0])  # warm up
    with threadpool_limits(1):  # one core, as a router classifies
        started = time.perf_counter()
        for message in messages:
            classifier.classify(message)
        classify_rate = count / (time.perf_counter() - started)
    print(f"classify: {classify_rate:.0f} docs/s", file=sys.stderr)
    departments = load_taxonomy(settings.taxonomy).ids
    one = _route_with(address, settings, 1, messages, departments)
    two = _route_with(address, settings, 2, messages, departments)
    return {
        "messages": count,
        "model_version": classifier.version,
        "classifier_encoder": settings.classifier_encoder,
        "route_msgs_per_s_1_process": round(one, 1),
        "route_msgs_per_s_2_processes": round(two, 1),
        "classify_docs_per_s": round(classify_rate, 1),
        "route_to_classify_ratio": round(one / classify_rate, 3),
    }
