"""``frontdoor bench web``: enquiries through the whole HTTP path (uvicorn, validation, the
durable commit in the intake outbox, which is when the API answers) beside the bare publisher
(``KafkaPublisher.publish`` of like messages from as many threads, each waiting for its ack),
same broker, same run; and the relay's end-to-end delay (commit to Kafka's ack) for the same
enquiries, measured until every one of them is on the stream."""

from __future__ import annotations

import socket
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

from ingest.admin import delete_topics, ensure_topics
from ingest.bus import KafkaPublisher
from ingest.intake_relay import IntakeRelay
from ingest.intake_store import IntakeStore
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Channel, InboundMessage, Party
from schemas.topics import TopicSpec
from web.app import create_app
from web.config import WebConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _payload(i: int) -> dict[str, str]:
    return {"name": f"Resident {i}", "email": f"resident{i % 997}@example.org", "postcode": "LS1 4AP",
            "message": f"Bench enquiry {i}: the street light outside number {i % 200} is out again."}


def run_web_bench(address: str, count: int, concurrency: int) -> dict[str, float | int | None]:
    topic = f"bench.web.{uuid.uuid4().hex[:8]}"
    ensure_topics(address, [TopicSpec(topic, 6, "bench")])
    with tempfile.TemporaryDirectory(prefix="fd-bench-web-") as tmp:
        root = Path(tmp)
        blobs = FilesystemBlobStore(root / "blobs")
        raw_rate = _bench_publisher(address, blobs, topic, count, concurrency)
        port = _free_port()
        config = WebConfig(public_url=f"http://127.0.0.1:{port}", api_rate_limit=10 * count + 10)
        store = IntakeStore.from_url(f"sqlite:///{root / 'bench.db'}")
        publisher = KafkaPublisher(address, blobs, topic=topic)
        relay = IntakeRelay(store, publisher)
        app = create_app(config, store=store, blobs=blobs, relay=relay)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            latencies, elapsed, replay_same = _bench_http(f"http://127.0.0.1:{port}", count, concurrency)
            deadline = time.monotonic() + 120
            while store.backlog()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
            left = store.backlog()[0]
            delays = sorted(relay.delays)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            publisher.close()
            store.dispose()
    delete_topics(address, [topic])
    web_rate = count / elapsed
    ordered = sorted(latencies)
    return {
        "enquiries": count,
        "concurrency": concurrency,
        "web_enquiries_per_s": round(web_rate, 1),
        "web_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "web_p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
        "raw_publish_per_s": round(raw_rate, 1),
        "ratio_to_raw": round(web_rate / raw_rate, 3),
        "relay_delay_p50_ms": _ms(delays, 0.50),
        "relay_delay_p99_ms": _ms(delays, 0.99),
        "relay_unpublished_after_120s": left,
        "replays_same_reference": replay_same,
    }


def _ms(ordered: list[float], quantile: float) -> float | None:
    return round(ordered[max(0, int(len(ordered) * quantile) - 1)] * 1000, 1) if ordered else None


def _bench_publisher(address: str, blobs: FilesystemBlobStore, topic: str, count: int,
                     concurrency: int) -> float:
    publisher = KafkaPublisher(address, blobs, topic=topic)
    messages = [InboundMessage(channel=Channel.WEBFORM, sender=Party(email=p["email"], name=p["name"]),
                               body_text=p["message"], dedupe_key=f"webform:raw:{i}:{uuid.uuid4().hex}")
                for i, p in enumerate(_payload(i) for i in range(count))]
    try:
        publisher.publish(messages[0])  # connect before timing
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(publisher.publish, messages))
        return count / (time.perf_counter() - start)
    finally:
        publisher.close()


def _bench_http(base_url: str, count: int, concurrency: int) -> tuple[list[float], float, bool]:
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    references: dict[int, str] = {}
    with httpx.Client(base_url=base_url, timeout=60,
                      limits=httpx.Limits(max_connections=concurrency)) as client:
        client.post("/api/enquiries", json=_payload(0), headers={"Idempotency-Key": f"warm-{run}"})

        def one(i: int) -> None:
            started = time.perf_counter()
            response = client.post("/api/enquiries", json=_payload(i),
                                   headers={"Idempotency-Key": f"bench-{run}-{i}"})
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            references[i] = response.json()["reference"]

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - start
        replay = client.post("/api/enquiries", json=_payload(7 % count),
                             headers={"Idempotency-Key": f"bench-{run}-{7 % count}"})
    return latencies, elapsed, replay.json()["reference"] == references[7 % count]
