"""Topic creation on a real cluster: durability configs follow the replication factor.

One local broker cannot host replication factor 3, so these check what ``ensure_topics``
would send, with the admin client replaced by a recorder.
"""

from __future__ import annotations

from typing import Any

import pytest

from ingest import admin as admin_module
from ingest.admin import create_requests, ensure_topics
from schemas.topics import CORE_TOPICS, DLQ, INBOUND, TopicSpec, min_insync_replicas


class _RecordingAdmin:
    def __init__(self, brokers: int) -> None:
        self.brokers = brokers
        self.requests: list[dict[str, Any]] = []

    def list_topics(self) -> list[str]:
        return []

    def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"node_id": i} for i in range(self.brokers)]}

    def create_topics(self, request: dict[str, Any], **_: Any) -> None:
        self.requests.append(request)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("brokers", "replication", "min_isr"), [(3, 3, "2"), (5, 3, "2"), (1, 1, None)])
def test_ensure_topics_sends_min_insync_replicas_from_the_replication_factor(
    monkeypatch: pytest.MonkeyPatch, brokers: int, replication: int, min_isr: str | None
) -> None:
    fake = _RecordingAdmin(brokers)
    monkeypatch.setattr(admin_module, "_admin", lambda *_a, **_k: fake)
    created = ensure_topics("127.0.0.1:1", CORE_TOPICS)
    assert set(created) == {spec.name for spec in CORE_TOPICS}
    (request,) = fake.requests
    for name, spec in request.items():
        assert spec["replication_factor"] == replication
        assert spec["configs"].get("min.insync.replicas") == min_isr, name
    assert request[INBOUND]["configs"]["retention.ms"] == str(30 * 24 * 3600 * 1000)
    assert request[DLQ]["num_partitions"] == 1


def test_min_insync_replicas_is_a_majority_and_one_on_a_single_node() -> None:
    assert [min_insync_replicas(rf) for rf in (1, 2, 3, 4, 5)] == [1, 1, 2, 3, 3]
    plain = create_requests([TopicSpec("t", 3, "k")], 1)
    assert plain == {"t": {"num_partitions": 3, "replication_factor": 1, "configs": {}}}
