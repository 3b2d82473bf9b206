"""``frontdoor route`` and ``frontdoor replay`` as an operator runs them, with the shipped model."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from ingest.bus import KafkaPublisher, read_topic
from router.service import RouterTopics
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import Channel, InboundMessage, Party, Source
from schemas.routed import RoutedMessage
from tests.conftest import KafkaHandle, frontdoor

pytestmark = pytest.mark.kafka

# Written for this test, in residents' words; not from the training corpus.
ENQUIRIES = {
    "Nobody has collected our recycling boxes for a fortnight and they're overflowing": "waste",
    "Someone has dumped an old mattress and a fridge in the alley behind Kings Road": "waste",
    "The street lamp outside 14 Orchard Close has been flickering and now it's out completely": "highways",
    "I'd like to register the death of my father who passed away at home on Sunday": "registrars",
    "Why has my council tax gone up when I live alone? I should get the single person discount":
        "council_tax",
}


def test_route_then_shadow_replay_with_the_shipped_model(kafka: KafkaHandle, tmp_path: Path) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}."
    topics = RouterTopics.prefixed(prefix)
    env = {**kafka.env, "FRONTDOOR_KAFKA_BOOTSTRAP": kafka.bootstrap, "FRONTDOOR_VAR_DIR": str(tmp_path)}
    # The router creates its topics; start it once with nothing to do so they exist.
    frontdoor("route", "--topic-prefix", prefix, "--exit-when-idle", "1", "--metrics-port", "0", env=env)
    publisher = KafkaPublisher(kafka.bootstrap, FilesystemBlobStore(tmp_path / "blobs"), topic=topics.inbound)
    for i, text in enumerate(ENQUIRIES):
        publisher.publish(InboundMessage(channel=Channel.EMAIL, sender=Party(email=f"r{i}@example.org"),
                                         body_text=text, source=Source(mailboxes=["enquiries"]),
                                         dedupe_key=f"email:<cmd-{i}@example.org>"))
    publisher.close()

    routed = frontdoor("route", "--topic-prefix", prefix, "--exit-when-idle", "4", "--metrics-port", "0",
                       env=env)
    stats = json.loads(routed.stdout.strip().splitlines()[-1])
    assert stats["processed"] == len(ENQUIRIES)
    for text, department in ENQUIRIES.items():
        records = read_topic(kafka.bootstrap, topics.department(department), timeout_s=15,
                             isolation_level="read_committed")
        texts = {RoutedMessage.model_validate_json(r.value or b"").message.body_text for r in records}
        assert text in texts, f"{text!r} was not routed to {department}"

    report = frontdoor("replay", "--from", "1h", "--model", stats["model_version"], "--shadow",
                       "--topic-prefix", prefix, env=env)
    result = json.loads(report.stdout.strip().splitlines()[-1])
    assert (result["messages"], result["compared"]) == (len(ENQUIRIES), len(ENQUIRIES))
    assert result["agreement"] == 1.0

    bad = frontdoor("replay", "--from", "last tuesday", "--model", "x", env=env, check=False)
    assert bad.returncode == 2 and "cannot read the time" in bad.stderr and "Traceback" not in bad.stderr
    future = frontdoor("replay", "--from", "2099-01-01", "--model", "x", env=env, check=False)
    assert future.returncode == 2 and "in the future" in future.stderr


@pytest.mark.parametrize("command", [["route", "--model", "20990101-typo"],
                                     ["replay", "--from", "1h", "--model", "20990101-typo"]])
def test_a_mistyped_model_version_is_named_before_any_broker_is_asked(
    command: list[str], tmp_path: Path
) -> None:
    # Nothing listens on port 1: had the command gone to Kafka first, it would name the broker.
    env = {**os.environ, "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1", "FRONTDOOR_CONNECT_RETRIES": "1",
           "FRONTDOOR_VAR_DIR": str(tmp_path)}
    result = frontdoor(*command, env=env, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no model version '20990101-typo'" in result.stderr and "Kafka" not in result.stderr


@pytest.mark.parametrize("value", ["99999999d", "1000000000d", "99999999999999999999w", "1900-01-01",
                                   "0001-01-01T00:00+01:00"])
def test_parse_time_out_of_range_is_an_operator_error(value: str) -> None:
    from frontdoor.cli_router import parse_time
    from schemas.errors import OperatorError

    with pytest.raises(OperatorError, match="cannot read the time .* out of range"):
        parse_time(value)
