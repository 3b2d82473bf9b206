"""Admin calls: is the broker there, and do our topics exist."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ingest.errors import BrokerUnavailableError
from schemas.topics import TopicSpec, topic_configs

log = logging.getLogger(__name__)


def _admin(bootstrap: str, timeout_s: float) -> KafkaAdminClient:
    ms = max(int(timeout_s * 1000), 500)
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="frontdoor-admin",
        bootstrap_timeout_ms=ms,
        request_timeout_ms=max(ms, 5000),
        reconnect_backoff_max_ms=1000,
    )


def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """True when an admin call to the cluster succeeds."""
    try:
        admin = _admin(bootstrap, timeout_s)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def describe_cluster_id(bootstrap: str, timeout_s: float = 3.0) -> str | None:
    """The cluster id of whatever answers at ``bootstrap``, or None when nothing does."""
    try:
        admin = _admin(bootstrap, timeout_s)
    except (KafkaError, OSError, ValueError):
        return None
    try:
        cluster = admin.describe_cluster()
        value = cluster.get("cluster_id") if isinstance(cluster, dict) else None
        return str(value) if value else None
    except (KafkaError, OSError):
        return None
    finally:
        admin.close()


def wait_for_broker(bootstrap: str, retries: int = 5, first_delay_s: float = 0.5, *,
                    remedy: str = "start one with 'frontdoor kafka start' or set FRONTDOOR_KAFKA_BOOTSTRAP "
                                  "to a running cluster") -> None:
    """Retry with exponential backoff, then fail with a message that says what to do."""
    delay = first_delay_s
    for attempt in range(1, retries + 1):
        if broker_answers(bootstrap):
            return
        if attempt < retries:
            log.warning("Kafka at %s is not answering (try %d/%d); retrying in %.1fs",
                        bootstrap, attempt, retries, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise BrokerUnavailableError(f"no Kafka broker answers at {bootstrap} after {retries} tries: {remedy}")


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 15.0) -> list[str]:
    """Create whichever of ``specs`` do not exist yet; return the names created."""
    wanted = {spec.name: spec for spec in specs}
    admin = _admin(bootstrap, timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in existing]
        if not missing:
            return []
        request = create_requests(missing, 1 if _single_node(admin) else 3)
        try:
            admin.create_topics(request, timeout_ms=int(timeout_s * 1000), wait_for_metadata=True)
        except TopicAlreadyExistsError:
            pass  # another process created them first: that is what we wanted
        return [spec.name for spec in missing]
    finally:
        admin.close()


def create_requests(specs: Iterable[TopicSpec], replication_factor: int) -> dict[str, dict[str, Any]]:
    """What ``create_topics`` is asked for: partitions, replication and the durability
    configs that go with it (``min.insync.replicas`` from the replication factor)."""
    return {
        spec.name: {
            "num_partitions": spec.partitions,
            "replication_factor": replication_factor,
            "configs": topic_configs(spec, replication_factor),
        }
        for spec in specs
    }


def _single_node(admin: KafkaAdminClient) -> bool:
    cluster = admin.describe_cluster()
    brokers = cluster.get("brokers", []) if isinstance(cluster, dict) else []
    return len(brokers) < 3


def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = _admin(bootstrap, 10.0)
    try:
        admin.delete_topics(names)
    except KafkaError as exc:
        log.warning("could not delete topics %s: %s", names, exc)
    finally:
        admin.close()
