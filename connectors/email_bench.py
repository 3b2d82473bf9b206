"""``frontdoor bench email``: parse + produce against raw produce of the same bytes, and the
peak memory of parsing a mail with a 25 MB attachment."""

from __future__ import annotations

import gc
import os
import random
import shutil
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from connectors.email_parser import EmailParseError, parse_email
from ingest.admin import delete_topics, ensure_topics
from ingest.bus import KafkaProducerClient, KafkaPublisher
from schemas.blobs import FilesystemBlobStore
from schemas.topics import TopicSpec

DEFAULT_CORPUS = Path("/work/shared/corpora/email/mikel-mail")

_STREETS = ["Acacia Avenue", "Mill Lane", "Station Road", "Church Street", "Victoria Road", "Park Close"]
_TOPICS = [
    ("Missed bin collection", "My green bin was not emptied on {day} again. It is the third time."),
    ("Pothole", "There is a deep pothole outside number {n} {street}; a cyclist nearly came off."),
    ("Council tax band", "I moved into {n} {street} last month and want to check my council tax band."),
    ("Noise from neighbours", "Loud music from the flat above every night until 3am since {day}."),
    ("Street light out", "The street light opposite {n} {street} has been out for two weeks."),
    ("Fly-tipping", "Someone dumped a mattress and bags of rubble at the end of {street}."),
]


def generated_mailbox(count: int, seed: int = 7) -> list[bytes]:
    """A realistic mix: plain, HTML-only, alternative, Latin-1, replies, small attachments."""
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    out: list[bytes] = []
    for i in range(count):
        subject, template = rng.choice(_TOPICS)
        text = template.format(day=rng.choice(["Monday", "Tuesday", "Friday"]), n=rng.randint(1, 200),
                               street=rng.choice(_STREETS))
        body = f"Dear Sir or Madam,\n\n{text}\n\nKind regards,\nResident {i}\n"
        msg = EmailMessage()
        msg["From"] = f"Resident {i} <resident{i % 1500}@example.org>"
        msg["To"] = rng.choice(["waste", "highways", "council.tax", "env.health"]) + "@council.example.gov.uk"
        msg["Subject"] = subject if rng.random() > 0.2 else f"Re: {subject}"
        msg["Date"] = format_datetime(start + timedelta(minutes=i))
        msg["Message-ID"] = make_msgid(f"bench{i}", "example.org")
        kind = i % 5
        if kind == 0:
            msg.set_content(body)
        elif kind == 1:
            html = body.replace("\n", "<br>")
            msg.set_content(f"<html><body><p>{html}</p></body></html>", subtype="html")
        elif kind == 2:
            msg.set_content(body)
            msg.add_alternative(f"<html><body><p>{body}</p></body></html>", subtype="html")
        elif kind == 3:
            msg.set_content(body.replace("Sir", "Sír") + "\nOn Mon, someone wrote:\n> old text\n> more\n",
                            charset="iso-8859-1")
        else:
            msg.set_content(body)
            msg.add_attachment(os.urandom(rng.randint(2_000, 40_000)), maintype="image", subtype="jpeg",
                               filename=f"photo{i}.jpg")
        out.append(msg.as_bytes())
    return out


def corpus_messages(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(root.rglob("*.eml"))]


def _timed(run: Callable[[], int]) -> tuple[int, float]:
    gc.collect()
    start = time.perf_counter()
    count = run()
    return count, time.perf_counter() - start


def bench_dataset(address: str, blob_dir: Path, raws: list[bytes]) -> dict[str, float | int]:
    """Three passes over the same bytes: parse only, parse + produce (acks=all, pipelined,
    flushed before the clock stops), and raw produce of the MIME bytes themselves. Each
    parsing pass starts with an empty blob store, so every blob is a new synced write."""
    topic = f"frontdoor.bench.{uuid.uuid4().hex[:8]}"
    ensure_topics(address, [TopicSpec(topic, 3, "bench")])
    parse_blobs = FilesystemBlobStore(blob_dir / f"{topic}-parse")
    produce_blobs = FilesystemBlobStore(blob_dir / f"{topic}-produce")
    publisher = KafkaPublisher(address, produce_blobs, topic=topic)
    raw_client = KafkaProducerClient(address, client_id="frontdoor-bench-raw",
                                     max_request_size=64 * 1024 * 1024)
    try:
        def parse_only() -> int:
            done = 0
            for raw in raws:
                try:
                    parse_email(raw, blobs=parse_blobs, mailbox="bench@council.example.gov.uk")
                    done += 1
                except EmailParseError:
                    pass
            return done

        def parse_and_produce() -> int:
            done = 0
            for raw in raws:
                try:
                    message = parse_email(raw, blobs=produce_blobs, mailbox="bench@council.example.gov.uk")
                except EmailParseError:
                    continue
                publisher.publish_nowait(message)
                done += 1
            publisher.flush()
            return done

        def raw_produce() -> int:
            for index, raw in enumerate(raws):
                raw_client.send(topic, raw, str(index).encode(), wait=False)
            raw_client.flush()
            return len(raws)

        raw_count, raw_s = _timed(raw_produce)  # also warms the connection for the others
        parsed, parse_s = _timed(parse_only)
        produced, produce_s = _timed(parse_and_produce)
    finally:
        publisher.close()
        raw_client.close()
        delete_topics(address, [topic])
        shutil.rmtree(parse_blobs.root, ignore_errors=True)
        shutil.rmtree(produce_blobs.root, ignore_errors=True)
    rate = produced / produce_s
    raw_rate = raw_count / raw_s
    return {
        "messages": len(raws),
        "parsed": parsed,
        "typed_errors": len(raws) - parsed,
        "avg_bytes": round(sum(len(r) for r in raws) / max(len(raws), 1)),
        "parse_msgs_per_s": round(parsed / parse_s, 1),
        "parse_produce_msgs_per_s": round(rate, 1),
        "raw_produce_msgs_per_s": round(raw_rate, 1),
        "ratio_to_raw": round(rate / raw_rate, 3),
    }


def big_attachment_mail(size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Resident <resident@example.org>"
    msg["To"] = "planning@council.example.gov.uk"
    msg["Subject"] = "Drawings for my planning application"
    msg["Message-ID"] = make_msgid("big", "example.org")
    msg.set_content("Please find the drawings attached.\n")
    msg.add_attachment(os.urandom(size), maintype="application", subtype="pdf", filename="drawings.pdf")
    return msg.as_bytes()


def peak_memory(size: int = 25 * 1024 * 1024) -> dict[str, float | int]:
    """tracemalloc peak of ``parse_email`` on a mail with one ``size``-byte attachment, the
    raw bytes (which the caller holds anyway) not counted."""
    raw = big_attachment_mail(size)
    with tempfile.TemporaryDirectory() as tmp:
        blobs = FilesystemBlobStore(tmp)
        gc.collect()
        tracemalloc.start()
        try:
            start = time.perf_counter()
            message = parse_email(raw, blobs=blobs)
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert message.attachments[0].blob.size == size  # noqa: S101 - a bench that lies is worse
    return {
        "attachment_bytes": size,
        "mime_bytes": len(raw),
        "parse_peak_bytes": peak,
        "peak_to_attachment": round(peak / size, 3),
        "parse_s": round(elapsed, 3),
    }


def run_email_bench(address: str, blob_dir: Path, corpus: Path | None, generated: int,
                    corpus_rounds: int) -> dict[str, object]:
    """Blob stores for the runs are made (and removed) under ``blob_dir``."""
    result: dict[str, object] = {}
    if corpus is not None and corpus.is_dir():
        raws = corpus_messages(corpus) * corpus_rounds
        figures = bench_dataset(address, blob_dir, raws)
        result["corpus"] = {"dir": str(corpus), "rounds": corpus_rounds, **figures}
    if generated:
        result["generated"] = bench_dataset(address, blob_dir, generated_mailbox(generated))
    result["memory_25mb_attachment"] = peak_memory()
    return result
